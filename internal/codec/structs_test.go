package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/codec"
)

// fixedFields nests structs of the kinds a struct's program handles in its
// loop, around one it hands to the field's coder (the array).
type fixedFields struct {
	I8  int8
	U8  uint8
	In  fixedInner
	I32 int32
	U32 uint32
	Arr [2]int16
	F32 float32
	B   bool
	S   string
}

type fixedInner struct {
	I16  int16
	U16  uint16
	Deep struct {
		I   int
		U64 uint64
	}
	I64 int64
	F64 float64
}

// TestStructFieldsEncoding checks that a struct encodes as its fields'
// encodings one after the other, and decodes back, for values at the
// edges of the fields' ranges and of varint lengths, whether the input
// ends right after the value (where the loop cannot read eight bytes at
// once) or goes on.
func TestStructFieldsEncoding(t *testing.T) {
	var u64s []uint64
	for bits := 0; bits <= 64; bits += 7 {
		if bits < 64 {
			u64s = append(u64s, 1<<bits-1, 1<<bits)
		}
	}
	u64s = append(u64s, math.MaxUint64)
	c := must(codec.For[fixedFields]())
	for _, u := range u64s {
		i := int64(u)
		v := fixedFields{
			I8: int8(i), U8: uint8(u), I32: int32(i), U32: uint32(u),
			Arr: [2]int16{int16(i), -int16(i)}, F32: float32(i), B: u&1 == 1,
			S:  strings.Repeat("s", int(u%300)),
			In: fixedInner{I16: int16(-i), U16: uint16(u), I64: i, F64: float64(u)},
		}
		v.In.Deep.I, v.In.Deep.U64 = int(-i), u
		var want []byte
		want = append(want, enc(v.I8)...)
		want = append(want, enc(v.U8)...)
		want = append(want, enc(v.In.I16)...)
		want = append(want, enc(v.In.U16)...)
		want = append(want, enc(v.In.Deep.I)...)
		want = append(want, enc(v.In.Deep.U64)...)
		want = append(want, enc(v.In.I64)...)
		want = append(want, enc(v.In.F64)...)
		want = append(want, enc(v.I32)...)
		want = append(want, enc(v.U32)...)
		want = append(want, enc(v.Arr)...)
		want = append(want, enc(v.F32)...)
		want = append(want, enc(v.B)...)
		want = append(want, enc(v.S)...)
		got := c.Append(nil, v)
		if !bytes.Equal(got, want) {
			t.Fatalf("%+v encoded as\n%x, want\n%x", v, got, want)
		}
		for _, tail := range []int{0, 1, 16} {
			in := append(bytes.Clone(got), make([]byte, tail)...)
			back, rest, err := c.Decode(in[: len(got)+tail : len(got)+tail])
			if err != nil || len(rest) != tail {
				t.Fatalf("Decode of %+v with %d bytes after: rest %d, %v", v, tail, len(rest), err)
			}
			if d := diff(v, back); d != "" {
				t.Fatalf("round trip of %+v with %d bytes after: %s", v, tail, d)
			}
		}
	}
}

// TestStructFieldErrors decodes bad values into struct fields: the error
// names the field and says what is wrong, as for the field's own type,
// whether or not eight bytes are left.
func TestStructFieldErrors(t *testing.T) {
	type narrow struct {
		A  int64
		In struct {
			I8  int8
			U16 uint16
			B   bool
		}
	}
	uv := func(u uint64) []byte { return binary.AppendUvarint(nil, u) }
	tests := []struct {
		name string
		in   []byte
		want string
		eof  bool // truncated: only at the end of the input
	}{
		{"int8 out of range", cat(uv(0), uv(256)), "codec_test.narrow.In.I8: decode int8: value 128 out of range", false},
		{"uint16 out of range", cat(uv(0), uv(0), uv(1<<16)), "codec_test.narrow.In.U16: decode uint16: value 65536 out of range", false},
		{"bad bool", cat(uv(0), uv(0), uv(0), []byte{2}), "codec_test.narrow.In.B: decode bool: invalid byte 0x2", false},
		{"truncated varint", []byte{0x80, 0x80}, "codec_test.narrow.A: decode int64: unexpected EOF", true},
		{"varint overflow", bytes.Repeat([]byte{0xff}, 11), "codec_test.narrow.A: decode int64: varint overflows 64 bits", false},
		{"long varint", cat([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, uv(256)), "codec_test.narrow.In.I8: decode int8: value 128 out of range", false},
	}
	c := must(codec.For[narrow]())
	for _, tt := range tests {
		for _, tail := range []int{0, 16} {
			if tt.eof && tail > 0 {
				continue
			}
			in := append(bytes.Clone(tt.in), make([]byte, tail)...)
			_, _, err := c.Decode(in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s, %d bytes after: %v, want %q in it", tt.name, tail, err, tt.want)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) != tt.eof {
				t.Errorf("%s: errors.Is(%v, io.ErrUnexpectedEOF) != %v", tt.name, err, tt.eof)
			}
		}
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
