package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate"
)

// DeliveryGuarantee is what a sink promises about its records across
// failures (Flink's sink.delivery-guarantee).
type DeliveryGuarantee string

// The delivery guarantees, named as Flink's sink.delivery-guarantee
// values.
const (
	// DeliveryNone sends records as they come: a failure may lose those
	// still buffered, a restart may write some again.
	DeliveryNone DeliveryGuarantee = "none"
	// DeliveryAtLeastOnce also waits, at every checkpoint's barrier,
	// until Kafka has acknowledged every record sent before it: none is
	// lost, a restart writes those after the checkpoint again.
	DeliveryAtLeastOnce DeliveryGuarantee = "at-least-once"
	// DeliveryExactlyOnce writes in Kafka transactions, one per
	// checkpoint, committed when the checkpoint completes: a
	// read_committed consumer sees every record once. See the package
	// documentation.
	DeliveryExactlyOnce DeliveryGuarantee = "exactly-once"
)

// DefaultTransactionTimeout is the transaction timeout of an
// exactly-once sink unless told: the largest a broker allows by default
// (transaction.max.timeout.ms).
const DefaultTransactionTimeout = 15 * time.Minute

// DefaultDeliveryTimeout is how long a sink tries to deliver a record
// unless told: Kafka's Java producer's delivery.timeout.ms.
const DefaultDeliveryTimeout = 2 * time.Minute

// SinkConfig configures a Kafka sink. Field comments give the Flink
// option each stands for; docs/kafka.md maps them all.
type SinkConfig struct {
	// Brokers are the seed brokers, host:port (properties.bootstrap.servers).
	Brokers []string
	// Topic is where records go (topic); if empty, each record's
	// Record.Topic from the Serializer.
	Topic string
	// DeliveryGuarantee is sink.delivery-guarantee; DeliveryAtLeastOnce
	// if empty, as Flink's.
	DeliveryGuarantee DeliveryGuarantee
	// TransactionalIDPrefix (sink.transactional-id-prefix) starts the
	// transactional ids of an exactly-once sink. Required with
	// DeliveryExactlyOnce, and unique per job writing to the cluster:
	// two jobs with one prefix abort each other's transactions.
	TransactionalIDPrefix string
	// Partitioner chooses a record's partition (sink.partitioner);
	// PartitionDefault if nil.
	Partitioner *Partitioner
	// TransactionTimeout is each transaction's timeout
	// (properties.transaction.timeout.ms); DefaultTransactionTimeout if
	// 0. A transaction pre-committed for a checkpoint must still be open
	// when a restored job commits it: the timeout must exceed the time
	// from a checkpoint to the end of the recovery that follows it.
	TransactionTimeout time.Duration
	// DeliveryTimeout bounds the time a record may take to be
	// acknowledged, retries included (properties.delivery.timeout.ms);
	// DefaultDeliveryTimeout if 0. Past it the writer fails, saying so,
	// and the job restarts, rather than waiting for ever on brokers that
	// are gone (kgo's own default).
	DeliveryTimeout time.Duration
	// ClientOptions are more options of the kgo clients (TLS, SASL,
	// batching).
	ClientOptions []kgo.Opt
}

// Serializer makes the Kafka record of a value: its Value, and as needed
// its Key, Headers, Timestamp, Topic (when SinkConfig.Topic is empty) and
// Partition (with PartitionManual).
type Serializer[T any] func(v T) (Record, error)

// StringValues writes each string as a record's value.
func StringValues() Serializer[string] {
	return func(v string) (Record, error) { return Record{Value: []byte(v)}, nil }
}

// BytesValues writes each byte slice as a record's value.
func BytesValues() Serializer[[]byte] {
	return func(v []byte) (Record, error) { return Record{Value: v}, nil }
}

// JSONValues writes each value as a JSON document (encoding/json).
func JSONValues[T any]() Serializer[T] {
	return func(v T) (Record, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return Record{}, fmt.Errorf("encode %T as JSON: %w", v, err)
		}
		return Record{Value: b}, nil
	}
}

// WithKey returns s with each record's key set to key(v).
func (s Serializer[T]) WithKey(key func(v T) []byte) Serializer[T] {
	return func(v T) (Record, error) {
		r, err := s(v)
		r.Key = key(v)
		return r, err
	}
}

// Partitioner chooses the partition of each record a sink writes.
type Partitioner struct {
	name string
	kgo  func(subtask int) kgo.Partitioner
}

// The partitioners, named as Flink's sink.partitioner values where it
// has them.
var (
	// PartitionDefault hashes a record's key (murmur2, as Kafka's Java
	// client, so keys land where Java producers put them) and spreads
	// records without a key in sticky batches (sink.partitioner=default).
	PartitionDefault = &Partitioner{name: "default", kgo: func(int) kgo.Partitioner { return kgo.StickyKeyPartitioner(nil) }}
	// PartitionRoundRobin sends records to the partitions in turn
	// (round-robin).
	PartitionRoundRobin = &Partitioner{name: "round-robin", kgo: func(int) kgo.Partitioner { return kgo.RoundRobinPartitioner() }}
	// PartitionFixed sends every record of sink subtask i to partition
	// i modulo the partitions (fixed).
	PartitionFixed = &Partitioner{name: "fixed", kgo: func(subtask int) kgo.Partitioner {
		return kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
			return func(_ *kgo.Record, n int) int { return subtask % n }
		})
	}}
	// PartitionManual sends each record to its Record.Partition.
	PartitionManual = &Partitioner{name: "manual", kgo: func(int) kgo.Partitioner { return kgo.ManualPartitioner() }}
)

// PartitionBy chooses each record's partition by f, which gets the record
// and the number of partitions of its topic and returns one of them.
func PartitionBy(f func(r *Record, partitions int) int) *Partitioner {
	return &Partitioner{name: "custom", kgo: func(int) kgo.Partitioner {
		return kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
			return func(kr *kgo.Record, n int) int {
				var r Record
				fromKgo(kr, &r, nil)
				return f(&r, n)
			}
		})
	}}
}

// Sink writes a stream to Kafka: a spate.Sink whose writers are
// spate.TransactionalSinkWriters for DeliveryAtLeastOnce (which only
// flushes at barriers) and DeliveryExactlyOnce.
type Sink[T any] struct {
	cfg SinkConfig
	ser Serializer[T]
}

var (
	_ spate.Sink[int]         = (*Sink[int])(nil)
	_ spate.UnionCommittables = (*Sink[int])(nil)
)

// UnionCommittables implements spate.UnionCommittables: restored at
// another parallelism, each exactly-once writer needs every committable,
// to commit those of the old subtasks it takes over before it aborts what
// they left open (see the package documentation). A Sink wrapped in
// another type must keep this method (embed it), or such a restore may
// lose output.
func (s *Sink[T]) UnionCommittables() {}

// NewSink returns a sink writing records made by ser as cfg says. The
// configuration is checked when the sink opens.
func NewSink[T any](cfg SinkConfig, ser Serializer[T]) *Sink[T] {
	return &Sink[T]{cfg: cfg, ser: ser}
}

// Validate reports the first problem of the configuration, naming the
// Flink option it stands for.
func (s *Sink[T]) Validate() error {
	c := s.cfg
	switch {
	case len(c.Brokers) == 0:
		return errors.New("kafka sink: no brokers (properties.bootstrap.servers)")
	case s.ser == nil:
		return errors.New("kafka sink: no serializer")
	}
	switch c.DeliveryGuarantee {
	case "", DeliveryNone, DeliveryAtLeastOnce:
	case DeliveryExactlyOnce:
		if c.TransactionalIDPrefix == "" {
			return errors.New("kafka sink: sink.delivery-guarantee exactly-once needs sink.transactional-id-prefix (SinkConfig.TransactionalIDPrefix), unique to the job")
		}
	default:
		return fmt.Errorf("kafka sink: sink.delivery-guarantee %q is not one of none, at-least-once, exactly-once", c.DeliveryGuarantee)
	}
	return nil
}

// Open implements spate.Sink.
func (s *Sink[T]) Open(ctx context.Context, info spate.SinkInfo) (spate.SinkWriter[T], error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch s.cfg.DeliveryGuarantee {
	case DeliveryExactlyOnce:
		return newTxnWriter(ctx, s, info), nil
	case DeliveryNone:
		w, err := newWriter(ctx, s, info)
		if err != nil {
			return nil, err
		}
		return w, nil
	default:
		w, err := newWriter(ctx, s, info)
		if err != nil {
			return nil, err
		}
		return &aloWriter[T]{w}, nil
	}
}

// deliveryTimeout is SinkConfig.DeliveryTimeout or its default.
func (s *Sink[T]) deliveryTimeout() time.Duration {
	if s.cfg.DeliveryTimeout > 0 {
		return s.cfg.DeliveryTimeout
	}
	return DefaultDeliveryTimeout
}

// clientOptions are the options of a producer client of subtask.
func (s *Sink[T]) clientOptions(subtask int, more ...kgo.Opt) []kgo.Opt {
	p := s.cfg.Partitioner
	if p == nil {
		p = PartitionDefault
	}
	opts := []kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...), kgo.RecordPartitioner(p.kgo(subtask)), kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.RecordDeliveryTimeout(s.deliveryTimeout())}
	if s.cfg.Topic != "" {
		opts = append(opts, kgo.DefaultProduceTopic(s.cfg.Topic), kgo.DefaultProduceTopicAlways())
	}
	opts = append(opts, more...)
	return append(opts, s.cfg.ClientOptions...)
}

// toKgo makes the kgo record of v.
func (s *Sink[T]) toKgo(v T) (*kgo.Record, error) {
	r, err := s.ser(v)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: serialize: %w", err)
	}
	kr := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	if s.cfg.Topic == "" && kr.Topic == "" {
		return nil, errors.New("kafka sink: a record without topic, and SinkConfig.Topic is empty")
	}
	return kr, nil
}

// producer is a kgo client producing asynchronously, keeping the first
// failure of a record.
type producer struct {
	cl *kgo.Client
	mu struct {
		sync.Mutex
		err error
	}
	promise func(*kgo.Record, error)
	sent    int
	// delivery is SinkConfig.DeliveryTimeout, which bounds flush too:
	// kgo cannot fail an idempotent producer's record that was sent and
	// never answered (the broker died), and would retry it for ever.
	delivery time.Duration
}

func newProducer(cl *kgo.Client, delivery time.Duration) *producer {
	p := &producer{cl: cl, delivery: delivery}
	p.promise = func(r *kgo.Record, err error) {
		if err == nil {
			return
		}
		if errors.Is(err, kgo.ErrRecordTimeout) {
			err = fmt.Errorf("%w: no broker acknowledged it within %v (SinkConfig.DeliveryTimeout, properties.delivery.timeout.ms): are the brokers reachable, and the topic's partitions led?", err, delivery)
		}
		p.mu.Lock()
		if p.mu.err == nil {
			p.mu.err = fmt.Errorf("kafka sink: produce to topic %s: %w", r.Topic, err)
		}
		p.mu.Unlock()
	}
	return p
}

func (p *producer) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.err
}

func (p *producer) produce(ctx context.Context, r *kgo.Record) error {
	if err := p.failed(); err != nil {
		return err
	}
	p.sent++
	p.cl.Produce(ctx, r, p.promise)
	return nil
}

// flush waits until every record sent is acknowledged, and returns the
// first failure; it gives up after the delivery timeout.
func (p *producer) flush(ctx context.Context) error {
	fctx, cancel := context.WithTimeoutCause(ctx, p.delivery, errNotAcknowledged)
	defer cancel()
	if err := p.cl.Flush(fctx); err != nil {
		if err := p.failed(); err != nil {
			return err
		}
		if errors.Is(context.Cause(fctx), errNotAcknowledged) {
			err = fmt.Errorf("%w within %v (SinkConfig.DeliveryTimeout, properties.delivery.timeout.ms): are the brokers reachable, and the topic's partitions led?", errNotAcknowledged, p.delivery)
		}
		return fmt.Errorf("kafka sink: flush: %w", err)
	}
	return p.failed()
}

var errNotAcknowledged = errors.New("records sent were not acknowledged")

// writer is the writer of DeliveryNone: one client for the subtask's
// life, records sent as they come.
type writer[T any] struct {
	ctx  context.Context
	sink *Sink[T]
	p    *producer
}

func newWriter[T any](ctx context.Context, s *Sink[T], info spate.SinkInfo) (*writer[T], error) {
	cl, err := kgo.NewClient(s.clientOptions(info.Subtask)...)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: client: %w", err)
	}
	return &writer[T]{ctx: ctx, sink: s, p: newProducer(cl, s.deliveryTimeout())}, nil
}

// Write implements spate.SinkWriter.
func (w *writer[T]) Write(v T) error {
	kr, err := w.sink.toKgo(v)
	if err != nil {
		return err
	}
	return w.p.produce(w.ctx, kr)
}

// Close implements spate.SinkWriter: after a success it waits for every
// record to be acknowledged. Records already sent stay written either
// way: only exactly-once takes them back.
func (w *writer[T]) Close(err error) error {
	defer w.p.cl.Close()
	if err != nil {
		return nil
	}
	return w.p.flush(w.ctx)
}

// aloWriter is the writer of DeliveryAtLeastOnce: a checkpoint's barrier
// waits until Kafka has every record sent before it.
type aloWriter[T any] struct{ *writer[T] }

var _ spate.TransactionalSinkWriter[int] = (*aloWriter[int])(nil)

// Begin implements spate.TransactionalSinkWriter: nothing to recover.
func (w *aloWriter[T]) Begin(int64, [][]byte) error { return nil }

// PrepareCommit implements spate.TransactionalSinkWriter: flush.
func (w *aloWriter[T]) PrepareCommit(int64) ([]byte, error) { return nil, w.p.flush(w.ctx) }

// Commit implements spate.TransactionalSinkWriter: records are visible
// once written.
func (w *aloWriter[T]) Commit([]byte) error { return nil }
