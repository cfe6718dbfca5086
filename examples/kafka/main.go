// Command kafka is Nexmark's "hot items" (query 5) from Kafka to Kafka,
// exactly once: it reads Nexmark events as JSON from one topic, finds per
// 10-second window sliding by 2 seconds the auctions with the most bids,
// and writes them as JSON to another topic in Kafka transactions, one per
// checkpoint, so that a read_committed consumer sees each result once
// across failures and restarts.
//
//	go run ./examples/kafka -brokers localhost:9092 [-in nexmark-events] [-out hot-items] [-generate N] [-query q5|q1]
//
// (-query q1 writes every bid with its price in euros instead: a steady
// stream of results, for the chaos test.)
// With -generate N it first writes N generated Nexmark events to the
// input topic (round robin over its partitions, each in event-time
// order). Event time comes from the events; watermarks are generated per
// partition, with idleness for partitions without events.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/kafka"
	"github.com/spate-dev/spate/nexmark"
	"github.com/spate-dev/spate/nexmark/queries"
)

// Options configure the pipeline.
type Options struct {
	Brokers []string
	In, Out string
	// Group is the consumer group the source commits its offsets to.
	Group string
	// TransactionalIDPrefix is the sink's sink.transactional-id-prefix.
	TransactionalIDPrefix string
	// Idleness is how long a partition without events may hold back the
	// watermark.
	Idleness time.Duration
	// Query is "q5" (hot items, the default) or "q1" (every bid in
	// euros: a result per bid, which the chaos test uses for its steady
	// output).
	Query string
}

// Pipeline declares the job on env.
func Pipeline(env *spate.Env, o Options) {
	ws := spate.ForBoundedOutOfOrderness[nexmark.Event](0).
		WithTimestampAssigner(func(e nexmark.Event, _ int64) int64 { return e.UnixMilli() }).
		WithIdleness(o.Idleness)
	src := kafka.NewSource(kafka.SourceConfig{
		Brokers: o.Brokers, Topics: []string{o.In}, GroupID: o.Group, StartupMode: kafka.StartEarliest,
	}, kafka.JSON[nexmark.Event]())
	events := spate.FromSource(env, "Nexmark events", src, ws)
	cfg := kafka.SinkConfig{
		Brokers: o.Brokers, Topic: o.Out,
		DeliveryGuarantee: kafka.DeliveryExactlyOnce, TransactionalIDPrefix: o.TransactionalIDPrefix,
	}
	if o.Query == "q1" {
		ser := kafka.JSONValues[queries.Q1Result]().WithKey(func(r queries.Q1Result) []byte { return strconv.AppendInt(nil, r.Auction, 10) })
		spate.SinkTo(queries.Q1(env, events), kafka.NewSink(cfg, ser)).Name("Bids in euros")
		return
	}
	ser := kafka.JSONValues[queries.Q5Result]().WithKey(func(r queries.Q5Result) []byte { return strconv.AppendInt(nil, r.Auction, 10) })
	spate.SinkTo(queries.Q5(env, events), kafka.NewSink(cfg, ser)).Name("Hot items")
}

// Generate writes the Nexmark events of cfg to topic, round robin over
// its partitions, and waits until Kafka has them all.
func Generate(ctx context.Context, brokers []string, topic string, cfg nexmark.Config) error {
	gen, err := nexmark.NewGenerator(cfg, 0, 1)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	defer cl.Close()
	var first error
	for {
		e, ok := gen.Next()
		if !ok {
			break
		}
		cl.Produce(ctx, &kgo.Record{Value: e.AppendJSON(nil), Timestamp: e.EventTime()}, func(_ *kgo.Record, err error) {
			if err != nil && first == nil {
				first = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if first != nil {
		return fmt.Errorf("generate: %w", first)
	}
	return nil
}

func main() {
	brokers := flag.String("brokers", "localhost:9092", "seed brokers, comma separated")
	in := flag.String("in", "nexmark-events", "topic of the Nexmark events (JSON)")
	out := flag.String("out", "hot-items", "topic of the results")
	group := flag.String("group", "hot-items", "consumer group the source commits its offsets to")
	prefix := flag.String("transactional-id-prefix", "hot-items", "sink.transactional-id-prefix")
	generate := flag.Int64("generate", 0, "first write this many generated events to the input topic")
	interval := flag.Duration("checkpoint-interval", time.Second, "execution.checkpointing.interval")
	idle := flag.Duration("idleness", 5*time.Second, "idleness of a partition without events")
	query := flag.String("query", "q5", "q5 (hot items) or q1 (every bid in euros)")
	p := flag.Int("p", 0, "parallelism (default: parallelism.default, else the number of CPUs)")
	flag.Parse()
	o := Options{Brokers: strings.Split(*brokers, ","), In: *in, Out: *out, Group: *group, TransactionalIDPrefix: *prefix, Idleness: *idle, Query: *query}
	if o.Query != "q5" && o.Query != "q1" {
		fmt.Fprintln(os.Stderr, "kafka: -query must be q5 or q1")
		os.Exit(2)
	}
	if *generate > 0 {
		cfg := nexmark.DefaultConfig()
		cfg.NumEvents = *generate
		if err := Generate(context.Background(), o.Brokers, o.In, cfg); err != nil {
			fmt.Fprintln(os.Stderr, "kafka:", err)
			os.Exit(1)
		}
	}
	env := spate.NewEnv(spate.WithParallelism(*p), spate.WithConfig(map[string]string{
		"execution.checkpointing.interval": interval.String(),
	}))
	Pipeline(env, o)
	if err := env.Execute("kafka-hot-items"); err != nil {
		fmt.Fprintln(os.Stderr, "kafka:", err)
		os.Exit(1)
	}
}
