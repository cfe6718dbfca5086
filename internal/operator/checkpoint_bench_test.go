package operator

import (
	"fmt"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/snapshot"
)

// benchRec is the record of the rolling-reduce benchmarks.
type benchRec struct {
	Key   int64
	Sum   int64
	Label string
}

// filledReduce returns a rolling reduce over benchRec and its input, with
// n keys in its state.
func filledReduce(n int) (exec.Output[benchRec], snapshot.Operator) {
	in := &Instance{
		Task: &exec.Task{Name: "bench", Parallelism: 1}, Name: "Reduce", Parallelism: 1, MaxParallelism: 128,
		Outs: []any{exec.Output[benchRec](discardOut[benchRec]{})}, Checkpointing: true, Attempt: 1,
	}
	spec := NewReduce(in, func(r benchRec) int64 { return r.Key }, func(a, v benchRec) benchRec { a.Sum += v.Sum; return a })
	input := spec.Inputs[0].(exec.Output[benchRec])
	for k := range int64(n) {
		input.Collect(benchRec{Key: k, Sum: k * 3, Label: "some label of a record"}, exec.NoTimestamp)
	}
	return input, spec.State
}

// BenchmarkSnapshotPause measures a rolling reduce's snapshot of n keys:
// the synchronous part (the capture taken at the barrier, while records
// wait) and the asynchronous part (encoding per key group, while records
// flow), reported per snapshot. Between snapshots, 1,000 records update
// keys, as a running job does.
func BenchmarkSnapshotPause(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			input, op := filledReduce(n)
			var sync, async time.Duration
			var bytes int
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				for j := range int64(1000) {
					input.Collect(benchRec{Key: (int64(i)*7919 + j*104729) % int64(n), Sum: 1}, exec.NoTimestamp)
				}
				b.StartTimer()
				start := time.Now()
				enc, err := op.SnapshotState(int64(i + 1))
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
			b.ReportMetric(float64(sync.Microseconds())/1000/float64(b.N), "sync-ms/snapshot")
			b.ReportMetric(float64(async.Microseconds())/1000/float64(b.N), "async-ms/snapshot")
			b.ReportMetric(float64(bytes)/(1<<20), "state-MiB")
		})
	}
}

// BenchmarkReduceRecord measures the record path of a rolling reduce over
// n keys: one record read, reduced and written back to the state.
func BenchmarkReduceRecord(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			input, _ := filledReduce(n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				input.Collect(benchRec{Key: int64(i*7919) % int64(n), Sum: 1}, exec.NoTimestamp)
			}
		})
	}
}
