package kafka

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate"
)

const (
	benchRecords    = 200_000
	benchValueBytes = 100
	benchPartitions = 4
)

// benchTopic fills a topic of a fresh cluster with benchRecords records
// of benchValueBytes.
func benchTopic(b *testing.B) []string {
	_, brokers := newCluster(b)
	createTopic(b, brokers, "bench", benchPartitions)
	pr := client(b, brokers, kgo.DefaultProduceTopic("bench"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	value := make([]byte, benchValueBytes)
	for range benchRecords {
		pr.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := pr.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	return brokers
}

func reportRate(b *testing.B, records int64, start time.Time) {
	reportRateOver(b, records, time.Since(start))
}

func reportRateOver(b *testing.B, records int64, d time.Duration) {
	s := d.Seconds()
	b.ReportMetric(float64(records)/s, "records/s")
	b.ReportMetric(float64(records*benchValueBytes)/s/1e6, "MB/s")
}

// BenchmarkSource reads a topic of 200,000 records of 100 bytes (4
// partitions, from an in-process kfake cluster that shares the CPU) with
// a plain kgo consumer loop, with the source's reader (both timed from
// their first fetch, after the client or reader is made), and with a job
// (source → discarding sink, parallelism 1, timed whole): each iteration
// reads the whole topic.
func BenchmarkSource(b *testing.B) {
	brokers := benchTopic(b)
	b.Run("reader=kgo", func(b *testing.B) {
		b.ReportAllocs()
		var total int64
		var reading time.Duration
		for range b.N {
			ps := map[int32]kgo.Offset{}
			for p := range int32(benchPartitions) {
				ps[p] = kgo.NewOffset().AtStart()
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"bench": ps}))
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			start := time.Now()
			for n < benchRecords {
				fs := cl.PollRecords(context.Background(), 256)
				fs.EachRecord(func(*kgo.Record) { n++ })
			}
			reading += time.Since(start)
			cl.Close()
			total += int64(n)
		}
		reportRateOver(b, total, reading)
	})
	for _, d := range []struct {
		name  string
		deser Deserializer[[]byte]
	}{{"spate", Bytes()}, {"spate-nocopy", func(r *Record) ([]byte, error) { return r.Value, nil }}} {
		b.Run("reader="+d.name, func(b *testing.B) {
			b.ReportAllocs()
			var total int64
			var reading time.Duration
			src := NewSource(SourceConfig{Brokers: brokers, Topics: []string{"bench"}}, d.deser)
			for range b.N {
				r, err := src.Open(context.Background(), spate.Split{Parallelism: 1})
				if err != nil {
					b.Fatal(err)
				}
				er := r.(spate.EventReader[[]byte])
				buf, evs := make([][]byte, 256), make([]spate.SourceEvent, 256)
				n := 0
				start := time.Now()
				for n < benchRecords {
					k, err := er.ReadEvents(context.Background(), buf, evs)
					if err != nil {
						b.Fatal(err)
					}
					n += k
				}
				reading += time.Since(start)
				r.Close()
				total += int64(n)
			}
			reportRateOver(b, total, reading)
		})
	}
	b.Run("reader=job", func(b *testing.B) {
		b.ReportAllocs()
		var total int64
		start := time.Now()
		for range b.N {
			env := spate.NewEnv(spate.WithParallelism(1))
			ctx, cancel := context.WithCancel(context.Background())
			var n atomic.Int64
			in := spate.FromSource(env, "Kafka", NewSource(SourceConfig{Brokers: brokers, Topics: []string{"bench"}}, Bytes()), spate.NoWatermarks[[]byte]())
			spate.SinkTo(in, countSink{n: &n, until: benchRecords, done: cancel})
			if err := env.ExecuteContext(ctx, "bench"); err != nil && !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
			cancel()
			total += n.Load()
		}
		reportRate(b, total, start)
	})
}

// countSink counts records and calls done once it has until.
type countSink struct {
	n     *atomic.Int64
	until int64
	done  func()
}

func (s countSink) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[[]byte], error) {
	return s, nil
}
func (s countSink) Write([]byte) error {
	if s.n.Add(1) == s.until {
		s.done()
	}
	return nil
}
func (s countSink) Close(error) error { return nil }

// BenchmarkSink writes 100,000 records of 100 bytes per iteration with
// each delivery guarantee, as the runtime drives a writer with a
// checkpoint every 10,000 records (a flush, or a transaction committed).
func BenchmarkSink(b *testing.B) {
	_, brokers := newCluster(b)
	const records, perCheckpoint = 100_000, 10_000
	for _, g := range []DeliveryGuarantee{DeliveryAtLeastOnce, DeliveryExactlyOnce} {
		topic := "sink-" + string(g)
		createTopic(b, brokers, topic, benchPartitions)
		b.Run("guarantee="+string(g), func(b *testing.B) {
			value := make([]byte, benchValueBytes)
			sink := NewSink(SinkConfig{Brokers: brokers, Topic: topic, DeliveryGuarantee: g, TransactionalIDPrefix: "bench", Partitioner: PartitionRoundRobin}, BytesValues())
			b.ReportAllocs()
			start := time.Now()
			for i := range b.N {
				w, err := sink.Open(context.Background(), spate.SinkInfo{Parallelism: 1})
				if err != nil {
					b.Fatal(err)
				}
				tw := w.(spate.TransactionalSinkWriter[[]byte])
				if err := tw.Begin(int64(i+1), nil); err != nil {
					b.Fatal(err)
				}
				for n := 1; n <= records; n++ {
					if err := tw.Write(value); err != nil {
						b.Fatal(err)
					}
					if n%perCheckpoint == 0 {
						c, err := tw.PrepareCommit(int64(n / perCheckpoint))
						if err != nil {
							b.Fatal(err)
						}
						if c != nil {
							if err := tw.Commit(c); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
				if err := tw.Close(nil); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, int64(b.N*records), start)
		})
	}
}
