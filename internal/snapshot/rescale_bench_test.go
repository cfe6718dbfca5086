package snapshot

import (
	"context"
	"fmt"
	"testing"
)

// nopOp is an operator that takes its entries and keeps nothing.
type nopOp struct{ n int }

func (o *nopOp) SnapshotState(int64) (func() ([]Entry, error), error) { return nil, nil }
func (o *nopOp) RestoreState(es []Entry) error                        { o.n += len(es); return nil }

// BenchmarkRestoreShared restores one new subtask of p2 from the state
// files of p1 old ones holding 32 MiB of keyed state in all (1 KiB
// entries over 128 key groups) and a few splits: what a rescale costs a
// subtask, which reads every old file of its vertex. bytes/op counts the
// state read.
func BenchmarkRestoreShared(b *testing.B) {
	const maxPar, total, entry = 128, 32 << 20, 1 << 10
	ctx := context.Background()
	for _, c := range []struct{ p1, p2 int }{{4, 4}, {4, 8}, {8, 2}, {16, 1}} {
		b.Run(fmt.Sprintf("p1=%d/p2=%d", c.p1, c.p2), func(b *testing.B) {
			var hs []Handle
			data := make([]byte, entry)
			for s := range c.p1 {
				var es []Entry
				start, end := Share{Subtask: s, Parallelism: c.p1, MaxParallelism: maxPar}.KeyGroups()
				for i := range total / entry / c.p1 {
					es = append(es, Entry{Operator: 1, Name: "s/v", KeyGroup: int32(start + i%(end-start)), Data: data})
				}
				es = append(es, Entry{Operator: 1, Name: "source/split", KeyGroup: NoKeyGroup, Data: []byte(fmt.Sprint(s))})
				h, err := InlineStore{}.Put(ctx, 1, "x", Encode(nil, es))
				if err != nil {
					b.Fatal(err)
				}
				hs = append(hs, h)
			}
			if c.p1 == c.p2 {
				hs = hs[:1] // the same parallelism reads its own file
			}
			var read int64
			for _, h := range hs {
				read += h.Size
			}
			b.SetBytes(read)
			b.ReportAllocs()
			r := NewRunner(ctx, InlineStore{}, nil, nil)
			for b.Loop() {
				ts := r.KeyedTask(0, 0, c.p2, maxPar)
				op := &nopOp{}
				ts.Add(1, op)
				var err error
				if c.p1 == c.p2 {
					err = ts.Restore(ctx, InlineStore{}, hs[0])
				} else {
					err = ts.RestoreShared(ctx, InlineStore{}, hs)
				}
				if err != nil || op.n == 0 {
					b.Fatalf("restore: %v, %d entries", err, op.n)
				}
			}
		})
	}
}
