package spate

import (
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
	c, err := batchCodec[fuzzRec]()
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
