package batchcodec

import (
	"math"
	"reflect"
	"testing"

	"github.com/spate-dev/spate/internal/exec"
)

type fuzzRec struct {
	Key  string
	N    int64
	Tags []string
}

// FuzzBatchDecode feeds arbitrary bytes to the decoder of encoded batches,
// as a receiver would get them from a peer: it must fail cleanly, never
// panic; and what decodes must re-encode to the same bytes.
func FuzzBatchDecode(f *testing.F) {
	c, err := For[fuzzRec]()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.Encode(nil, []exec.Rec[fuzzRec]{{V: fuzzRec{"a", 1, []string{"x"}}, Ts: 5}, {V: fuzzRec{}, Ts: exec.NoTimestamp}}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := c.Decode(data, nil)
		if err != nil {
			return
		}
		again, err := c.Decode(c.Encode(nil, recs), nil)
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-decode of %d records: %d, %v", len(recs), len(again), err)
		}
	})
}

// TestBatchCodec round-trips batches with and without timestamps, of
// values that take bytes and of values that take none, and checks that
// batches without timestamps spend no byte on them.
func TestBatchCodec(t *testing.T) {
	no := exec.NoTimestamp
	tests := []struct {
		name    string
		ts      []int64
		wantLen int // of the encoded batch of fuzzRec{N: 1}s; 0: unchecked
	}{
		{name: "empty", ts: nil, wantLen: 2},
		{name: "no timestamps", ts: []int64{no, no, no}, wantLen: 2 + 3*3},
		{name: "close timestamps", ts: []int64{1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_000}, wantLen: 2 + 6 + 3*3 + 1 + 1},
		{name: "some timestamps", ts: []int64{no, 5, no, -3, 1 << 62}},
		{name: "extremes", ts: []int64{math.MaxInt64, math.MinInt64 + 1, 0, math.MaxInt64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var recs []exec.Rec[fuzzRec]
			var empties []exec.Rec[struct{}]
			for _, ts := range tt.ts {
				recs = append(recs, exec.Rec[fuzzRec]{V: fuzzRec{N: 1}, Ts: ts})
				empties = append(empties, exec.Rec[struct{}]{Ts: ts})
			}
			b := roundTripBatch(t, recs)
			if tt.wantLen != 0 && len(b) != tt.wantLen {
				t.Errorf("encoded in %d bytes (%x), want %d", len(b), b, tt.wantLen)
			}
			roundTripBatch(t, empties)
		})
	}
}

func roundTripBatch[T any](t *testing.T, recs []exec.Rec[T]) []byte {
	t.Helper()
	c, err := For[T]()
	if err != nil {
		t.Fatal(err)
	}
	b := c.Encode(nil, recs)
	got, err := c.Decode(b, nil)
	if err != nil {
		t.Fatalf("decode of %d %T records (%x): %v", len(recs), recs, b, err)
	}
	if !reflect.DeepEqual(got, recs) && (len(got) != 0 || len(recs) != 0) {
		t.Errorf("round trip of %v gave %v", recs, got)
	}
	return b
}
