package spate_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
	"github.com/spate-dev/spate/nexmark"
	"github.com/spate-dev/spate/nexmark/queries"
)

// The cost of checkpoints on throughput, in the local executor: the same
// job without checkpoints and with execution.checkpointing.interval=1s
// (EXACTLY_ONCE, the default), side by side. A run must last several
// intervals for the figure to mean anything, so run these with a
// benchtime of several seconds, e.g.
//
//	go test -run XXX -bench 'Checkpointing' -benchtime 5s -count 5 . | benchstat -col /checkpoints -
//
// "checkpoints" is the number of checkpoints the sink took part in during
// the measured run; the sink is transactional (it pre-commits at every
// barrier and commits on completion, as an exactly-once sink does) and
// drops the records.

// checkpointIntervals are the configurations compared.
var checkpointIntervals = []struct {
	name string
	conf map[string]string
}{
	{"none", nil},
	{"1s", map[string]string{"execution.checkpointing.interval": "1s"}},
}

// txnDiscard is a transactional sink that drops its records and counts
// the checkpoints it pre-committed (the highest id).
type txnDiscard[T any] struct{ latest *atomic.Int64 }

func (s txnDiscard[T]) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[T], error) {
	return txnDiscardWriter[T](s), nil
}

type txnDiscardWriter[T any] struct{ latest *atomic.Int64 }

func (txnDiscardWriter[T]) Write(T) error               { return nil }
func (txnDiscardWriter[T]) Close(error) error           { return nil }
func (txnDiscardWriter[T]) Begin(int64, [][]byte) error { return nil }
func (txnDiscardWriter[T]) Commit([]byte) error         { return nil }
func (w txnDiscardWriter[T]) PrepareCommit(id int64) ([]byte, error) {
	for {
		cur := w.latest.Load()
		if id <= cur || w.latest.CompareAndSwap(cur, id) {
			return []byte{1}, nil
		}
	}
}

var _ spate.TransactionalSinkWriter[int] = txnDiscardWriter[int]{}

// BenchmarkCheckpointingKeyByReduce is BenchmarkKeyByReduce (10,000 keys,
// rolling sum) with and without checkpoints.
func BenchmarkCheckpointingKeyByReduce(b *testing.B) {
	for _, p := range []int{1, 2} {
		for _, ci := range checkpointIntervals {
			b.Run(fmt.Sprintf("parallelism=%d/checkpoints=%s", p, ci.name), func(b *testing.B) {
				b.ReportAllocs()
				var latest atomic.Int64
				env := spate.NewEnv(spate.WithParallelism(p), spate.WithConfig(ci.conf))
				src := spate.FromSource(env, "gen", datagen.New(func(i int64) kv { return kv{Key: i % 10_000, Value: i} }, datagen.Count(int64(b.N))), spate.NoWatermarks[kv]())
				sum := spate.Reduce(spate.KeyBy(src, func(v kv) int64 { return v.Key }), func(a, v kv) kv { a.Value += v.Value; return a })
				spate.SinkTo(sum, spate.Sink[kv](txnDiscard[kv]{&latest}))
				b.ResetTimer()
				if err := env.Execute("bench"); err != nil {
					b.Fatal(err)
				}
				reportPerCore(b, int64(b.N), 2*p)
				b.ReportMetric(float64(latest.Load()), "checkpoints")
			})
		}
	}
}

// BenchmarkCheckpointingNexmarkQ5 runs Nexmark q5 (hot items: bids per
// auction over sliding windows, then the top auction per window) on the
// generator at full speed, with and without checkpoints; records are
// Nexmark events.
func BenchmarkCheckpointingNexmarkQ5(b *testing.B) {
	for _, p := range []int{1, 2} {
		for _, ci := range checkpointIntervals {
			b.Run(fmt.Sprintf("parallelism=%d/checkpoints=%s", p, ci.name), func(b *testing.B) {
				b.ReportAllocs()
				var latest atomic.Int64
				cfg := nexmark.DefaultConfig()
				cfg.NumEvents = int64(b.N)
				env := spate.NewEnv(spate.WithParallelism(p), spate.WithConfig(ci.conf))
				spate.SinkTo(queries.Q5(env, queries.Events(env, cfg)), spate.Sink[queries.Q5Result](txnDiscard[queries.Q5Result]{&latest}))
				b.ResetTimer()
				if err := env.Execute("q5"); err != nil {
					b.Fatal(err)
				}
				reportPerCore(b, int64(b.N), 3*p)
				b.ReportMetric(float64(latest.Load()), "checkpoints")
			})
		}
	}
}
