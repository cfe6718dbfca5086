package kafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
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

// benchBrokerEnv makes TestBenchBroker serve a cluster: the benchmarks
// run the cluster in a child process, so that the benchmark's own CPU
// time is the client's alone, its records per CPU second a rate per core.
const benchBrokerEnv = "SPATE_KAFKA_BENCH_BROKER"

// TestBenchBroker is the benchmarks' child process (skipped otherwise):
// it serves a kfake cluster of three brokers, prints their addresses on a
// line and exits when its standard input closes.
func TestBenchBroker(t *testing.T) {
	if os.Getenv(benchBrokerEnv) == "" {
		t.Skip("the benchmarks' broker process")
	}
	_, brokers := newCluster(t)
	fmt.Println("brokers", strings.Join(brokers, ","))
	io.Copy(io.Discard, os.Stdin)
}

// benchBrokersEnv names a running cluster for the benchmarks (host:port,
// comma separated) instead of a child process: for a run under
// callgrind, which stops at the child's exit signal, or against a real
// Kafka. They then create topics of names of their own.
const benchBrokersEnv = "SPATE_KAFKA_BENCH_BROKERS"

// benchCluster starts a kfake cluster in a child process, stopped at the
// benchmark's end, and returns its seed brokers; or the brokers of
// $SPATE_KAFKA_BENCH_BROKERS.
func benchCluster(b *testing.B) []string {
	if addrs := os.Getenv(benchBrokersEnv); addrs != "" {
		return strings.Split(addrs, ",")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchBroker$")
	cmd.Env = append(os.Environ(), benchBrokerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the broker process: %v", err)
	}
	b.Cleanup(func() {
		in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	addrs, ok := strings.CutPrefix(strings.TrimSpace(line), "brokers ")
	if err != nil || !ok {
		b.Fatalf("broker process: %q, %v", line, err)
	}
	go io.Copy(io.Discard, out) // the rest of the test's output; ends with the process
	return strings.Split(addrs, ",")
}

// benchTopicName is the topic BenchmarkSource reads, of a name of its own
// on a cluster that outlives the process.
var benchTopicName = func() string {
	if os.Getenv(benchBrokersEnv) != "" {
		return fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	return "bench"
}()

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchTopic fills a topic of a fresh cluster (in a child process) with
// benchRecords records of benchValueBytes.
func benchTopic(b *testing.B) []string {
	brokers := benchCluster(b)
	createTopic(b, brokers, benchTopicName, benchPartitions)
	pr := client(b, brokers, kgo.DefaultProduceTopic(benchTopicName), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
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

func reportRate(b *testing.B, records int64, start time.Time, cpu0 time.Duration) {
	reportRateOver(b, records, time.Since(start), cpuTime()-cpu0)
}

// reportRateOver reports records/s and MB/s over wall time d, and per
// core: records and MB per second of the process's CPU time cpu (the
// client's: the cluster runs in another process).
func reportRateOver(b *testing.B, records int64, d, cpu time.Duration) {
	s := d.Seconds()
	b.ReportMetric(float64(records)/s, "records/s")
	b.ReportMetric(float64(records*benchValueBytes)/s/1e6, "MB/s")
	if c := cpu.Seconds(); c > 0 {
		b.ReportMetric(float64(records)/c, "records/cpu-s")
		b.ReportMetric(float64(records*benchValueBytes)/c/1e6, "MB/cpu-s")
	}
}

// BenchmarkSource reads a topic of 200,000 records of 100 bytes (4
// partitions, from a kfake cluster in a child process) with a plain kgo
// consumer loop (and one with the source's record pool), with the
// source's reader (both timed from their first
// fetch, after the client or reader is made), and with a job (source →
// discarding sink, parallelism 1, timed whole): each iteration reads the
// whole topic. Per core figures (records/cpu-s, MB/cpu-s) divide by the
// benchmark process's CPU time, the client's alone: on a shared machine
// they vary much less than the wall-time rates.
func BenchmarkSource(b *testing.B) {
	brokers := benchTopic(b)
	// reader=kgo is the plain loop; reader=kgo-pooled adds the source's
	// record pool, recycling each record once counted, to show what the
	// pool alone gives.
	for _, pooled := range []bool{false, true} {
		name := "reader=kgo"
		if pooled {
			name += "-pooled"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var total int64
			var reading, cpu time.Duration
			for range b.N {
				ps := map[int32]kgo.Offset{}
				for p := range int32(benchPartitions) {
					ps[p] = kgo.NewOffset().AtStart()
				}
				opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{benchTopicName: ps})}
				if pooled {
					opts = append(opts, kgo.WithPools(&records))
				}
				cl, err := kgo.NewClient(opts...)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				start, cpu0 := time.Now(), cpuTime()
				for n < benchRecords {
					fs := cl.PollRecords(context.Background(), 256)
					fs.EachRecord(func(r *kgo.Record) {
						n++
						if pooled {
							r.Recycle()
						}
					})
				}
				reading += time.Since(start)
				cpu += cpuTime() - cpu0
				cl.Close()
				total += int64(n)
			}
			reportRateOver(b, total, reading, cpu)
		})
	}
	for _, d := range []struct {
		name  string
		deser Deserializer[[]byte]
	}{{"spate", Bytes()}, {"spate-nocopy", func(r *Record) ([]byte, error) { return r.Value, nil }}} {
		b.Run("reader="+d.name, func(b *testing.B) {
			b.ReportAllocs()
			var total int64
			var reading, cpu time.Duration
			src := NewSource(SourceConfig{Brokers: brokers, Topics: []string{benchTopicName}}, d.deser)
			for range b.N {
				r, err := src.Open(context.Background(), spate.Split{Parallelism: 1})
				if err != nil {
					b.Fatal(err)
				}
				er := r.(spate.EventReader[[]byte])
				buf, evs := make([][]byte, 256), make([]spate.SourceEvent, 256)
				n := 0
				start, cpu0 := time.Now(), cpuTime()
				for n < benchRecords {
					k, err := er.ReadEvents(context.Background(), buf, evs)
					if err != nil {
						b.Fatal(err)
					}
					n += k
				}
				reading += time.Since(start)
				cpu += cpuTime() - cpu0
				r.Close()
				total += int64(n)
			}
			reportRateOver(b, total, reading, cpu)
		})
	}
	b.Run("reader=job", func(b *testing.B) {
		b.ReportAllocs()
		var total int64
		start, cpu0 := time.Now(), cpuTime()
		for range b.N {
			env := spate.NewEnv(spate.WithParallelism(1))
			ctx, cancel := context.WithCancel(context.Background())
			var n atomic.Int64
			in := spate.FromSource(env, "Kafka", NewSource(SourceConfig{Brokers: brokers, Topics: []string{benchTopicName}}, Bytes()), spate.NoWatermarks[[]byte]())
			spate.SinkTo(in, countSink{n: &n, until: benchRecords, done: cancel})
			if err := env.ExecuteContext(ctx, "bench"); err != nil && !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
			cancel()
			total += n.Load()
		}
		reportRate(b, total, start, cpu0)
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
	brokers := benchCluster(b)
	const records, perCheckpoint = 100_000, 10_000
	for _, g := range []DeliveryGuarantee{DeliveryAtLeastOnce, DeliveryExactlyOnce} {
		topic := "sink-" + string(g) + strings.TrimPrefix(benchTopicName, "bench")
		createTopic(b, brokers, topic, benchPartitions)
		b.Run("guarantee="+string(g), func(b *testing.B) {
			value := make([]byte, benchValueBytes)
			sink := NewSink(SinkConfig{Brokers: brokers, Topic: topic, DeliveryGuarantee: g, TransactionalIDPrefix: "bench", Partitioner: PartitionRoundRobin}, BytesValues())
			b.ReportAllocs()
			start, cpu0 := time.Now(), cpuTime()
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
			reportRate(b, int64(b.N*records), start, cpu0)
		})
	}
}
