package codec_test

import (
	"math"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/codec"
)

// FuzzRec is representative of the records crossing the network: strings,
// slices, maps, pointers (recursive), times and fixed-size numbers.
type FuzzRec struct {
	Name  string
	Tags  []string
	Attrs map[string]int64
	Next  *FuzzRec
	Blob  []byte
	F     float64
	T     time.Time
	U     uint16
	Arr   [3]int8
	Ok    bool
	V     *Vec
	hid   *count
}

func seedRecs() []FuzzRec {
	return []FuzzRec{
		{},
		{Name: "a", Tags: []string{"x", ""}, Attrs: map[string]int64{"k": -1}, Blob: []byte{0},
			F: math.Inf(-1), T: time.Unix(5, 6).In(time.FixedZone("", 3600)), U: 300, Arr: [3]int8{-1, 0, 1},
			Ok: true, V: &Vec{1, 2}, hid: &count{"w", 3}},
		{Name: "chain", Next: &FuzzRec{Name: "second", Next: &FuzzRec{Tags: []string{}}}},
	}
}

// fuzzDecode feeds data to Decode of T: it must not panic, and what it
// accepts must encode and decode to the same value.
func fuzzDecode[T any](t *testing.T, data []byte) {
	c, err := codec.For[T]()
	if err != nil {
		t.Fatal(err)
	}
	v, rest, err := c.Decode(data)
	if err != nil {
		return
	}
	if len(rest) > len(data) {
		t.Fatalf("rest longer than input")
	}
	again, rest2, err := c.Decode(c.Append(nil, v))
	if err != nil || len(rest2) != 0 {
		t.Fatalf("re-decode of %#v: %v (rest %x)", v, err, rest2)
	}
	if d := diff(v, again); d != "" {
		t.Fatalf("re-decode differs: %s", d)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	c := must(codec.For[FuzzRec]())
	for _, r := range seedRecs() {
		f.Add(c.Append(nil, r))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(fuzzDecode[FuzzRec])
}

func FuzzDecodeString(f *testing.F) {
	f.Add([]byte("\x05hello"))
	f.Add([]byte("\x8f\x4eabc"))
	f.Add([]byte{})
	f.Fuzz(fuzzDecode[string])
}

func FuzzDecodeInt64(f *testing.F) {
	f.Add([]byte{0x01})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x80})
	f.Fuzz(fuzzDecode[int64])
}

// FuzzDecodeFixed decodes structs of integers of every width, floats,
// bools and strings, the fields a struct's program decodes in its loop.
func FuzzDecodeFixed(f *testing.F) {
	c := must(codec.For[fixedFields]())
	f.Add(c.Append(nil, fixedFields{}))
	v := fixedFields{I8: -1, U8: 200, I32: math.MinInt32, U32: math.MaxUint32, Arr: [2]int16{1, -1}, F32: 1.5, B: true, S: "s"}
	v.In = fixedInner{I16: -300, U16: 300, I64: math.MinInt64, F64: math.Inf(1)}
	v.In.Deep.I, v.In.Deep.U64 = 1<<40, 1<<63
	f.Add(c.Append(nil, v))
	f.Add(append(c.Append(nil, v), make([]byte, 16)...))
	f.Fuzz(fuzzDecode[fixedFields])
}

func FuzzDecodeTree(f *testing.F) {
	c := must(codec.For[Tree]())
	f.Add(c.Append(nil, Tree{Name: "r", Kids: []Tree{{Name: "k"}}, ByName: map[string]*Tree{"x": {Name: "x"}, "n": nil}}))
	f.Fuzz(fuzzDecode[Tree])
}

// FuzzRoundTrip builds records out of fuzz inputs and checks that they
// survive encoding and decoding.
func FuzzRoundTrip(f *testing.F) {
	f.Add("name", "tag", int64(1), uint16(2), 1.5, []byte("blob"), int64(1e9), int32(3600), true, uint8(2))
	f.Add("", "", int64(math.MinInt64), uint16(0), math.NaN(), []byte(nil), int64(-1), int32(0), false, uint8(0))
	f.Fuzz(func(t *testing.T, name, tag string, n int64, u uint16, fl float64, blob []byte, sec int64, off int32, ok bool, depth uint8) {
		ts := time.Unix(sec, n%1e9)
		if ok {
			ts = ts.In(time.FixedZone("", int(off)))
		} else {
			ts = ts.UTC()
		}
		r := FuzzRec{
			Name:  name,
			Tags:  []string{tag, name},
			Attrs: map[string]int64{name: n, tag: -n},
			Blob:  blob,
			F:     fl,
			T:     ts,
			U:     u,
			Arr:   [3]int8{int8(n), int8(n >> 8), int8(u)},
			Ok:    ok,
			V:     &Vec{int(n), int(u)},
			hid:   &count{tag, int(n)},
		}
		for range depth % 8 {
			prev := r
			r = FuzzRec{Name: tag, Next: &prev}
		}
		c := must(codec.For[FuzzRec]())
		got, rest, err := c.Decode(c.Append(nil, r))
		if err != nil || len(rest) != 0 {
			t.Fatalf("Decode: %v (rest %x)", err, rest)
		}
		if d := diff(r, got); d != "" {
			t.Fatalf("round trip: %s", d)
		}

		// The primitive fast paths.
		if s, _, err := must(codec.For[string]()).Decode(must(codec.For[string]()).Append(nil, name)); err != nil || s != name {
			t.Fatalf("string %q -> %q, %v", name, s, err)
		}
		if i, _, err := must(codec.For[int64]()).Decode(must(codec.For[int64]()).Append(nil, n)); err != nil || i != n {
			t.Fatalf("int64 %d -> %d, %v", n, i, err)
		}
		if f, _, err := must(codec.For[float64]()).Decode(must(codec.For[float64]()).Append(nil, fl)); err != nil || math.Float64bits(f) != math.Float64bits(fl) {
			t.Fatalf("float64 %v -> %v, %v", fl, f, err)
		}
		if b, _, err := must(codec.For[[]byte]()).Decode(must(codec.For[[]byte]()).Append(nil, blob)); err != nil || string(b) != string(blob) || (b == nil) != (blob == nil) {
			t.Fatalf("[]byte %x -> %x, %v", blob, b, err)
		}
		tc := must(codec.For[time.Time]())
		if got, _, err := tc.Decode(tc.Append(nil, ts)); err != nil || diff(ts, got) != "" {
			t.Fatalf("time %v -> %v, %v", ts, got, err)
		}
	})
}
