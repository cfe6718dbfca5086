package spate_test

import (
	"fmt"
	"testing"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
)

// BenchmarkCheckpointOverhead measures the barrier path: a pass-through
// chain and a keyBy + rolling reduce (state of 10,000 keys snapshotted at
// every barrier), without checkpoints and with one every second. Run it
// long enough for checkpoints to happen, e.g. -benchtime=4000000x.
func BenchmarkCheckpointOverhead(b *testing.B) {
	for _, job := range []string{"pass-through", "keyBy-reduce"} {
		for _, interval := range []string{"none", "1s"} {
			b.Run(fmt.Sprintf("job=%s/checkpoints=%s", job, interval), func(b *testing.B) {
				b.ReportAllocs()
				conf := map[string]string{}
				if interval != "none" {
					conf["execution.checkpointing.interval"] = interval
				}
				env := spate.NewEnv(spate.WithParallelism(2), spate.WithConfig(conf))
				src := spate.FromSource(env, "gen", datagen.New(func(i int64) kv { return kv{Key: i % 10_000, Value: i} }, datagen.Count(int64(b.N))), spate.NoWatermarks[kv]())
				s := src
				if job == "keyBy-reduce" {
					s = spate.Reduce(spate.KeyBy(src, func(v kv) int64 { return v.Key }), func(a, v kv) kv { a.Value += v.Value; return a })
				} else {
					s = spate.Map(src, func(v kv) kv { v.Value++; return v })
				}
				spate.SinkTo(s, spate.Sink[kv](discard[kv]{}))
				b.ResetTimer()
				if err := env.Execute("bench"); err != nil {
					b.Fatal(err)
				}
				reportPerCore(b, int64(b.N), 4)
			})
		}
	}
}
