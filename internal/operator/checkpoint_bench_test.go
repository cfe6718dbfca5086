package operator

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSnapshotPause measures a rolling reduce's snapshot of n keys:
// the synchronous part (the copy taken at the barrier, while records
// wait) and the asynchronous part (encoding per key group, while records
// flow), reported per snapshot.
func BenchmarkSnapshotPause(b *testing.B) {
	type rec struct {
		Key   int64
		Sum   int64
		Label string
	}
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			op := &reduceOp[int64, rec]{acc: make(map[int64]rec, n), kc: newKeyCoder[int64](128)}
			for k := range int64(n) {
				op.acc[k] = rec{Key: k, Sum: k * 3, Label: "some label of a record"}
			}
			var sync, async time.Duration
			var bytes int
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				enc, err := op.SnapshotState(1)
				if err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				es, err := enc()
				if err != nil {
					b.Fatal(err)
				}
				sync += mid.Sub(start)
				async += time.Since(mid)
				bytes = 0
				for _, e := range es {
					bytes += len(e.Data)
				}
			}
			b.ReportMetric(float64(sync.Milliseconds())/float64(b.N), "sync-ms/snapshot")
			b.ReportMetric(float64(async.Milliseconds())/float64(b.N), "async-ms/snapshot")
			b.ReportMetric(float64(bytes)/(1<<20), "state-MiB")
		})
	}
}
