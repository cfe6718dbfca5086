package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/kafka"
	nx "github.com/spate-dev/spate/nexmark"
)

// nexmarkKafka is where `spate nexmark` reads its events from Kafka, as
// the RisingWave and Flink Nexmark comparisons do: the topic's records
// are the events as JSON, in the format examples/kafka writes and reads
// (nexmark.Event's AppendJSON and UnmarshalJSON), one event per record.
// The flags are named as Flink's Kafka connector options
// (properties.bootstrap.servers, topic, properties.group.id).
type nexmarkKafka struct {
	brokers string
	topic   string
	group   string
}

func (k *nexmarkKafka) register(fs *flag.FlagSet) {
	usage := "Kafka seed brokers host:port, comma separated (Flink's properties.bootstrap.servers): read the events from --topic instead of generating them"
	fs.StringVar(&k.brokers, "properties.bootstrap.servers", "", usage)
	fs.StringVar(&k.brokers, "bootstrap-servers", "", "shorthand for --properties.bootstrap.servers")
	fs.StringVar(&k.topic, "topic", "", "Kafka topic of the events as JSON, one per record (Flink's topic); load it with --produce")
	fs.StringVar(&k.group, "properties.group.id", "", "consumer group the Kafka source commits its offsets to, for monitoring (Flink's properties.group.id); none if empty")
}

// enabled tells whether the events come from Kafka.
func (k *nexmarkKafka) enabled() bool { return k.brokers != "" || k.topic != "" }

// check reports a missing half of the Kafka flags.
func (k *nexmarkKafka) check() error {
	switch {
	case k.brokers == "" && k.topic != "":
		return errors.New("--topic needs --properties.bootstrap.servers (--bootstrap-servers)")
	case k.brokers != "" && k.topic == "":
		return errors.New("--properties.bootstrap.servers needs --topic")
	}
	return nil
}

func (k *nexmarkKafka) seeds() []string { return strings.Split(k.brokers, ",") }

// records returns how many records the topic holds, the sum over its
// partitions of the end offset less the start offset: the events a run
// will read, for its progress. A topic that does not exist is an error
// that says how to load it.
func (k *nexmarkKafka) records(ctx context.Context) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.seeds()...))
	if err != nil {
		return 0, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, k.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("topic %s does not exist: load it with spate nexmark --produce --topic %s --bootstrap-servers %s --events N", k.topic, k.topic, k.brokers)
		}
		return 0, fmt.Errorf("list the start offsets of topic %s: %w", k.topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, k.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("list the end offsets of topic %s: %w", k.topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			n += o.Offset - s.Offset
		}
	})
	return n, nil
}

// events is the stream of the topic's events, read from the earliest
// offsets to the ends the partitions had when the job started (Flink's
// scan.bounded.mode latest-offset), so that the query ends. Event time
// comes from the events, watermarks are generated per partition, and p
// counts the events read.
func (k *nexmarkKafka) events(env *spate.Env, p *nexmarkProgress) spate.Stream[nx.Event] {
	src := kafka.NewSource(kafka.SourceConfig{
		Brokers: k.seeds(), Topics: []string{k.topic}, GroupID: k.group,
		StartupMode: kafka.StartEarliest, BoundedMode: kafka.BoundedLatest,
	}, decodeEvent)
	ws := spate.ForBoundedOutOfOrderness[nx.Event](0).
		WithTimestampAssigner(func(e nx.Event, _ int64) int64 { return e.UnixMilli() })
	return spate.FromSource(env, "Nexmark events from Kafka", p.source(src), ws)
}

// decodeEvent is the Kafka source's deserializer: the record's value is
// an event's JSON (nexmark.DecodeJSON, fast for the form AppendJSON
// writes).
func decodeEvent(r *kafka.Record) (nx.Event, error) {
	e, err := nx.DecodeJSON(r.Value)
	if err != nil {
		return e, fmt.Errorf("decode a Nexmark event: %w", err)
	}
	return e, nil
}

// produce writes the events of cfg to the topic as JSON, round robin
// over its partitions (so each partition is in event-time order), as
// examples/kafka's -generate does, with the events' times as the records'
// timestamps. A topic that does not exist is created with partitions
// partitions (replication factor 1). It returns the number of events
// written once Kafka has acknowledged them all.
func (k *nexmarkKafka) produce(ctx context.Context, cfg nx.Config, partitions int32) (int64, error) {
	gen, err := nx.NewGenerator(cfg, 0, 1)
	if err != nil {
		return 0, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.seeds()...), kgo.DefaultProduceTopic(k.topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		return 0, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, k.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("create topic %s: %w", k.topic, err)
	}
	var (
		n     int64
		mu    sync.Mutex // guards first: promises run on kgo's goroutines
		first error
	)
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		e, ok := gen.Next()
		if !ok {
			break
		}
		cl.Produce(ctx, &kgo.Record{Value: e.AppendJSON(nil), Timestamp: e.EventTime()}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
		n++
	}
	if err := cl.Flush(ctx); err != nil {
		return n, fmt.Errorf("produce to topic %s: %w", k.topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		return n, fmt.Errorf("produce to topic %s: %w", k.topic, first)
	}
	return n, nil
}
