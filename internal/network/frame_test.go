package network

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

func seedFrames() []frame {
	return []frame{
		{typ: frameData, stream: 7, channel: 3, batch: []byte("hello batch")},
		{typ: frameData, stream: math.MaxUint32, channel: -1, batch: []byte{}},
		{typ: frameWatermark, stream: 1, channel: 2, wm: math.MinInt64},
		{typ: frameWatermark, stream: 1, channel: 2, wm: 1700000000000},
		{typ: frameIdle, stream: 4, channel: 0},
		{typ: frameEnd, stream: 4, channel: 5},
		{typ: frameCredit, stream: 9, n: 8},
		{typ: frameHello, version: protocolVersion, from: "w1", to: "w2", attempt: 3},
		{typ: frameBarrier, stream: 2, channel: 1, id: 42},
		{typ: frameHello, version: 99, from: "", to: ""},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range seedFrames() {
		t.Run(f.typ.String(), func(t *testing.T) {
			b := appendFrame(nil, &f)
			if n := binary.BigEndian.Uint32(b); int(n) != len(b)-prefixLen {
				t.Fatalf("length prefix %d, body %d", n, len(b)-prefixLen)
			}
			got, err := decodeFrame(b[prefixLen:])
			if err != nil {
				t.Fatal(err)
			}
			if !framesEqual(got, f) {
				t.Fatalf("decoded %+v, want %+v", got, f)
			}
			var scratch []byte
			got, err = readFrame(bufio.NewReader(bytes.NewReader(b)), DefaultMaxFrame, &scratch)
			if err != nil || !framesEqual(got, f) {
				t.Fatalf("readFrame = %+v, %v; want %+v", got, err, f)
			}
			if f.typ == frameData {
				hdr := appendDataHeader(nil, f.stream, f.channel, len(f.batch))
				if !bytes.Equal(append(hdr, f.batch...), b) {
					t.Fatalf("appendDataHeader disagrees with appendFrame")
				}
			}
		})
	}
}

func framesEqual(a, b frame) bool {
	return a.typ == b.typ && a.stream == b.stream && a.channel == b.channel && a.wm == b.wm &&
		a.n == b.n && bytes.Equal(a.batch, b.batch) && a.version == b.version && a.from == b.from && a.to == b.to &&
		a.id == b.id && a.attempt == b.attempt
}

func TestDecodeFrameErrors(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"empty", nil, "empty frame"},
		{"unknown type", []byte{0x7f, 1, 2}, "unknown frame type 0x7f"},
		{"type zero", []byte{0}, "unknown frame type 0x00"},
		{"short data", []byte{byte(frameData), 0, 0, 0, 1}, "DATA frame of 5 bytes, want at least 9"},
		{"short watermark", []byte{byte(frameWatermark), 0, 0, 0, 1, 0, 0, 0, 1}, "WATERMARK frame of 9 bytes, want 17"},
		{"long end", []byte{byte(frameEnd), 0, 0, 0, 1, 0, 0, 0, 1, 0}, "END frame of 10 bytes, want 9"},
		{"short credit", []byte{byte(frameCredit), 0}, "CREDIT frame of 2 bytes, want 9"},
		{"hello truncated from", []byte{byte(frameHello), 0, 0, 0, 1, 0, 20, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "truncated sender ID"},
		{"hello truncated to", []byte{byte(frameHello), 0, 0, 0, 1, 0, 1, 'a', 0, 20, 'b', 0, 0, 0, 0, 0, 0, 0}, "truncated receiver ID"},
		{"hello truncated attempt", []byte{byte(frameHello), 0, 0, 0, 1, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0}, "truncated attempt"},
		{"hello trailing", []byte{byte(frameHello), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'x'}, "1 trailing bytes"},
		{"short barrier", []byte{byte(frameBarrier), 0, 0, 0, 1, 0, 0, 0, 1}, "BARRIER frame of 9 bytes, want 17"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeFrame(tt.body)
			if err == nil || !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decodeFrame(%x) = %v, want a protocol error containing %q", tt.body, err, tt.want)
			}
		})
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		limit int
		want  error
		msg   string
	}{
		{"eof at boundary", nil, 100, io.EOF, ""},
		{"eof in prefix", []byte{0, 0}, 100, io.ErrUnexpectedEOF, ""},
		{"eof after prefix", []byte{0, 0, 0, 9}, 100, io.ErrUnexpectedEOF, ""},
		{"eof in body", []byte{0, 0, 0, 9, byte(frameEnd), 1}, 100, io.ErrUnexpectedEOF, ""},
		{"zero length", []byte{0, 0, 0, 0}, 100, errProtocol, "empty frame"},
		{"oversized", []byte{0, 0, 0, 101, byte(frameData)}, 100, errProtocol, "frame of 101 bytes exceeds the limit of 100 bytes"},
		{"huge", []byte{0xff, 0xff, 0xff, 0xff}, DefaultMaxFrame, errProtocol, "exceeds the limit"},
		{"wrong size before body", []byte{0, 0, 0, 50, byte(frameIdle)}, 100, errProtocol, "IDLE frame of 50 bytes, want 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var scratch []byte
			_, err := readFrame(bufio.NewReader(bytes.NewReader(tt.input)), tt.limit, &scratch)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("readFrame = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

// TestReadFrameOwnsData checks that each DATA batch has its own memory.
func TestReadFrameOwnsData(t *testing.T) {
	var in []byte
	for i := range 3 {
		in = appendFrame(in, &frame{typ: frameData, stream: 1, batch: []byte{byte(i), byte(i)}})
	}
	r := bufio.NewReader(bytes.NewReader(in))
	var scratch []byte
	var got [][]byte
	for range 3 {
		f, err := readFrame(r, 100, &scratch)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.batch)
	}
	for i, b := range got {
		if !bytes.Equal(b, []byte{byte(i), byte(i)}) {
			t.Fatalf("batch %d = %v", i, b)
		}
	}
}

// FuzzDecodeFrame checks that decoding never panics and that whatever decodes
// encodes back to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range seedFrames() {
		f.Add(appendFrame(nil, &fr)[prefixLen:])
	}
	f.Add([]byte{})
	f.Add([]byte{0x7f})
	f.Add([]byte{byte(frameHello), 0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		enc := appendFrame(nil, &fr)
		if !bytes.Equal(enc[prefixLen:], b) {
			t.Fatalf("re-encoded %x, want %x", enc[prefixLen:], b)
		}
		var scratch []byte
		fr2, err := readFrame(bufio.NewReader(bytes.NewReader(enc)), len(b), &scratch)
		if err != nil || !framesEqual(fr, fr2) {
			t.Fatalf("readFrame = %+v, %v; want %+v", fr2, err, fr)
		}
	})
}

func TestFrameBuffered(t *testing.T) {
	two := append(appendFrame(nil, &frame{typ: frameEnd, stream: 1}), appendFrame(nil, &frame{typ: frameIdle, stream: 2})...)
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"nothing", nil, false},
		{"part of a prefix", two[:3], false},
		{"prefix only", two[:prefixLen], false},
		{"frame but one byte", two[:prefixLen+streamBodyLen-1], false},
		{"one frame", two[:prefixLen+streamBodyLen], true},
		{"one and a half", two[:len(two)-2], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(bytes.NewReader(tt.in), 64)
			br.Peek(len(tt.in)) // fill the buffer
			if got := frameBuffered(br); got != tt.want {
				t.Errorf("frameBuffered with %d bytes buffered = %v, want %v", br.Buffered(), got, tt.want)
			}
		})
	}
}
