package spate_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
)

// discard is a sink that drops records.
type discard[T any] struct{}

func (discard[T]) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[T], error) {
	return discard[T]{}, nil
}
func (discard[T]) Write(T) error     { return nil }
func (discard[T]) Close(error) error { return nil }

// reportPerCore reports records/s over the whole run and per core the run
// could use (GOMAXPROCS, or fewer if the job has fewer subtasks).
func reportPerCore(b *testing.B, records int64, subtasks int) {
	secs := b.Elapsed().Seconds()
	cores := min(runtime.GOMAXPROCS(0), subtasks)
	b.ReportMetric(float64(records)/secs, "records/s")
	b.ReportMetric(float64(records)/secs/float64(cores), "records/s/core")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkPassThroughMapChain(b *testing.B) {
	b.ReportAllocs()
	env := spate.NewEnv(spate.WithParallelism(1))
	src := spate.FromSource(env, "gen", datagen.New(func(i int64) int64 { return i }, datagen.Count(int64(b.N))), spate.NoWatermarks[int64]())
	s := spate.Map(src, func(v int64) int64 { return v + 1 })
	s = spate.Map(s, func(v int64) int64 { return v * 3 })
	s = spate.Filter(s, func(v int64) bool { return v >= 0 })
	spate.SinkTo(s, spate.Sink[int64](discard[int64]{}))
	b.ResetTimer()
	if err := env.Execute("bench"); err != nil {
		b.Fatal(err)
	}
	reportPerCore(b, int64(b.N), 1)
}

type kv struct {
	Key   int64
	Value int64
}

func BenchmarkKeyByReduce(b *testing.B) {
	for _, p := range []int{1, 2} {
		for _, encode := range []bool{false, true} {
			b.Run(fmt.Sprintf("parallelism=%d/encoded=%v", p, encode), func(b *testing.B) {
				b.ReportAllocs()
				env := spate.NewEnv(spate.WithParallelism(p), spate.WithEncodedExchanges(encode))
				src := spate.FromSource(env, "gen", datagen.New(func(i int64) kv { return kv{Key: i % 10_000, Value: i} }, datagen.Count(int64(b.N))), spate.NoWatermarks[kv]())
				sum := spate.Reduce(spate.KeyBy(src, func(v kv) int64 { return v.Key }), func(a, v kv) kv { a.Value += v.Value; return a })
				spate.SinkTo(sum, spate.Sink[kv](discard[kv]{}))
				b.ResetTimer()
				if err := env.Execute("bench"); err != nil {
					b.Fatal(err)
				}
				reportPerCore(b, int64(b.N), 2*p)
			})
		}
	}
}

func BenchmarkTumblingWindowSum(b *testing.B) {
	for _, p := range []int{1, 2} {
		b.Run(fmt.Sprintf("parallelism=%d", p), func(b *testing.B) {
			b.ReportAllocs()
			env := spate.NewEnv(spate.WithParallelism(p))
			// 1000 events per second of event time over 1000 keys.
			ws := spate.ForBoundedOutOfOrderness[kv](time.Second).WithTimestampAssigner(func(v kv, _ int64) int64 { return v.Value })
			src := spate.FromSource(env, "gen", datagen.New(func(i int64) kv { return kv{Key: i % 1000, Value: i} }, datagen.Count(int64(b.N))), ws)
			w := spate.Windowed(spate.KeyBy(src, func(v kv) int64 { return v.Key }), spate.TumblingEventTimeWindows(10*time.Second))
			sums := spate.ReduceWindow(w, func(a, v kv) kv { a.Value += v.Value; return a })
			spate.SinkTo(sums, spate.Sink[kv](discard[kv]{}))
			b.ResetTimer()
			if err := env.Execute("bench"); err != nil {
				b.Fatal(err)
			}
			reportPerCore(b, int64(b.N), 2*p)
		})
	}
}
