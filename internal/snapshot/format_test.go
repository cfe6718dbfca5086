package snapshot

import (
	"errors"
	"strings"
	"testing"
)

func sampleEntries() []Entry {
	return []Entry{
		{Operator: 3, Name: "value/last", KeyGroup: 0, Data: []byte("abc")},
		{Operator: 3, Name: "value/last", KeyGroup: 127, Data: nil},
		{Operator: -2, Name: "splits", KeyGroup: NoKeyGroup, Data: []byte{0, 1, 2, 255}},
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []Entry
	}{
		{"empty", nil},
		{"entries", sampleEntries()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Encode(nil, tc.entries)
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !Equal(got, tc.entries) {
				t.Fatalf("decoded %+v, want %+v", got, tc.entries)
			}
		})
	}
}

// TestFormatDetectsDamage: every truncation and every flipped bit of a
// state file is an error, never other entries.
func TestFormatDetectsDamage(t *testing.T) {
	b := Encode(nil, sampleEntries())
	for n := range len(b) {
		if _, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: Decode = %v, want ErrCorrupt", n, len(b), err)
		}
	}
	for i := range len(b) {
		for bit := range 8 {
			d := append([]byte(nil), b...)
			d[i] ^= 1 << bit
			if _, err := Decode(d); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("bit %d of byte %d flipped: Decode = %v, want ErrCorrupt", bit, i, err)
			}
		}
	}
	if _, err := Decode(append(b, 0)); err == nil || !strings.Contains(err.Error(), "after the end") {
		t.Fatalf("trailing byte: Decode = %v", err)
	}
	newer := append([]byte(nil), b...)
	newer[4] = Version + 1
	if _, err := Decode(newer); err == nil || !strings.Contains(err.Error(), "format version 2") {
		t.Fatalf("newer version: Decode = %v", err)
	}
}

func TestBufferReader(t *testing.T) {
	var w Buffer
	w.String("key")
	w.Int(-5)
	w.Uint(1 << 40)
	w.Bytes([]byte{1, 2})
	r := NewReader(w.B)
	if s, i, u, bs := r.String(), r.Int(), r.Uint(), r.Bytes(); s != "key" || i != -5 || u != 1<<40 || string(bs) != "\x01\x02" {
		t.Fatalf("read %q %d %d %v", s, i, u, bs)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	r = NewReader(w.B[:3])
	_, _, _ = r.String(), r.Int(), r.Uint()
	if err := r.Done(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: Done = %v, want ErrCorrupt", err)
	}
	if n := NewReader([]byte{0x7f}).Len(); n != 0 {
		t.Fatalf("Len of a count beyond the input = %d, want 0", n)
	}
}

// FuzzDecode: Decode never panics, and what it accepts encodes back to
// the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(nil, sampleEntries()))
	f.Add(Encode(nil, nil))
	f.Add([]byte("SPST\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if got := Encode(nil, es); string(got) != string(b) {
			t.Fatalf("re-encoded %x, want %x", got, b)
		}
	})
}
