package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate"
)

// StartupMode is where a source starts reading the partitions it finds at
// its first start (Flink's scan.startup.mode). A restore resumes at the
// checkpointed offsets instead, and partitions found later, while
// running or at a restore, are read from their earliest offset (they are
// new).
type StartupMode string

// The startup modes, named as Flink's scan.startup.mode values.
const (
	// StartEarliest reads each partition from its earliest offset.
	StartEarliest StartupMode = "earliest-offset"
	// StartLatest reads only records produced after the start.
	StartLatest StartupMode = "latest-offset"
	// StartGroupOffsets starts at the offsets committed by
	// SourceConfig.GroupID; a partition without one starts at its
	// earliest offset (Flink's properties.auto.offset.reset=earliest).
	StartGroupOffsets StartupMode = "group-offsets"
	// StartTimestamp starts at the first record whose timestamp is at or
	// after SourceConfig.StartupTimestamp (scan.startup.timestamp-millis).
	StartTimestamp StartupMode = "timestamp"
	// StartSpecificOffsets starts at SourceConfig.SpecificOffsets
	// (scan.startup.specific-offsets); a partition not listed starts at
	// its earliest offset.
	StartSpecificOffsets StartupMode = "specific-offsets"
)

// BoundedMode is where a bounded source stops (Flink's
// scan.bounded.mode); the source is unbounded unless told.
type BoundedMode string

// The bounded modes, named as Flink's scan.bounded.mode values.
const (
	// Unbounded reads for ever (unbounded), the default.
	Unbounded BoundedMode = "unbounded"
	// BoundedLatest stops each partition at its end when the source first
	// started: the high watermark, or with ReadCommitted the last stable
	// offset (latest-offset).
	BoundedLatest BoundedMode = "latest-offset"
	// BoundedTimestamp stops each partition before its first record at or
	// after SourceConfig.BoundedTimestamp (timestamp,
	// scan.bounded.timestamp-millis).
	BoundedTimestamp BoundedMode = "timestamp"
)

// DefaultDiscoveryInterval is how often a source looks for new
// partitions unless told (Flink's scan.topic-partition-discovery.interval
// default).
const DefaultDiscoveryInterval = 5 * time.Minute

// SourceConfig configures a Kafka source. Field comments give the Flink
// option each stands for; docs/kafka.md maps them all.
type SourceConfig struct {
	// Brokers are the seed brokers, host:port (properties.bootstrap.servers).
	Brokers []string
	// Topics are read by name (topic); or, if TopicPattern is set, every
	// topic whose whole name matches that regular expression
	// (topic-pattern). One of the two is required.
	Topics       []string
	TopicPattern string
	// GroupID is the consumer group (properties.group.id): offsets are
	// committed to it when checkpoints complete, for monitoring only, and
	// StartGroupOffsets starts from it. The source does not join the
	// group: partitions are dealt to readers by Spate.
	GroupID string
	// StartupMode is where to start (scan.startup.mode); StartEarliest
	// if empty.
	StartupMode StartupMode
	// StartupTimestamp is StartTimestamp's time
	// (scan.startup.timestamp-millis).
	StartupTimestamp time.Time
	// SpecificOffsets are StartSpecificOffsets' offsets, by topic and
	// partition (scan.startup.specific-offsets).
	SpecificOffsets map[string]map[int32]int64
	// DiscoveryInterval is how often each reader lists the topics for new
	// partitions (scan.topic-partition-discovery.interval);
	// DefaultDiscoveryInterval if 0, never if negative. A bounded source
	// does not look for new partitions.
	DiscoveryInterval time.Duration
	// BoundedMode makes the source bounded (scan.bounded.mode): each
	// partition found at the first start stops where the mode says, held
	// in the checkpoints so that a restore stops at the same offsets, and
	// the source ends once every partition has. Unbounded if empty.
	BoundedMode BoundedMode
	// BoundedTimestamp is BoundedTimestamp's time
	// (scan.bounded.timestamp-millis).
	BoundedTimestamp time.Time
	// ReadCommitted reads only committed records of transactional
	// producers (properties.isolation.level=read_committed); the default
	// reads them all, as Kafka's read_uncommitted.
	ReadCommitted bool
	// NoOffsetCommit disables committing offsets to GroupID when a
	// checkpoint completes (commit.offsets.on.checkpoint=false).
	NoOffsetCommit bool
	// ClientOptions are more options of the kgo client (TLS, SASL,
	// fetch sizes).
	ClientOptions []kgo.Opt
}

// Source reads Kafka topics: a spate.Source, spate.RestorableSource and,
// through its readers, spate.CheckpointedReader, spate.EventReader and
// spate.CheckpointListener.
//
// Each partition is a split. Reader i of p reads the partitions the
// assignment rule of Flink's KafkaSourceEnumerator gives it (see
// splits.go), those it finds at its start and those it finds every
// DiscoveryInterval afterwards; at a restore it resumes the checkpointed
// ones at their offsets. Records get their Kafka timestamps; with a
// watermark strategy, watermarks are generated per partition and
// combined (idleness per partition with WithIdleness). A record the
// Deserializer refuses is a *spate.RecordError naming the topic,
// partition and offset: it fails the job, or goes to the
// spate.RecordErrors side output when the job consumes it, and the
// reader goes on after it.
type Source[T any] struct {
	cfg   SourceConfig
	deser Deserializer[T]
}

var (
	_ spate.RestorableSource[int] = (*Source[int])(nil)
	_ spate.UnionSplits           = (*Source[int])(nil)
)

// UnionSplits implements spate.UnionSplits: restored at another
// parallelism, each reader gets every partition's split, resumes those it
// owns at the new parallelism and leaves the others to their owners. A
// Source wrapped in another type must keep this method (embed it), or
// such a restore reads partitions twice.
func (s *Source[T]) UnionSplits() {}

// NewSource returns a source reading cfg's topics through deser. The
// configuration is checked when the source opens.
func NewSource[T any](cfg SourceConfig, deser Deserializer[T]) *Source[T] {
	return &Source[T]{cfg: cfg, deser: deser}
}

// Validate reports the first problem of the configuration, naming the
// Flink option it stands for.
func (s *Source[T]) Validate() error {
	c := s.cfg
	switch {
	case len(c.Brokers) == 0:
		return errors.New("kafka source: no brokers (properties.bootstrap.servers)")
	case len(c.Topics) == 0 && c.TopicPattern == "":
		return errors.New("kafka source: no topic (topic or topic-pattern)")
	case len(c.Topics) > 0 && c.TopicPattern != "":
		return errors.New("kafka source: both topic and topic-pattern are set; choose one")
	case s.deser == nil:
		return errors.New("kafka source: no deserializer")
	}
	if c.TopicPattern != "" {
		if _, err := regexp.Compile("^(?:" + c.TopicPattern + ")$"); err != nil {
			return fmt.Errorf("kafka source: topic-pattern %q: %w", c.TopicPattern, err)
		}
	}
	switch c.StartupMode {
	case "", StartEarliest, StartLatest, StartSpecificOffsets:
	case StartGroupOffsets:
		if c.GroupID == "" {
			return errors.New("kafka source: scan.startup.mode group-offsets needs properties.group.id (SourceConfig.GroupID)")
		}
	case StartTimestamp:
		if c.StartupTimestamp.IsZero() {
			return errors.New("kafka source: scan.startup.mode timestamp needs scan.startup.timestamp-millis (SourceConfig.StartupTimestamp)")
		}
	default:
		return fmt.Errorf("kafka source: scan.startup.mode %q is not one of earliest-offset, latest-offset, group-offsets, timestamp, specific-offsets", c.StartupMode)
	}
	switch c.BoundedMode {
	case "", Unbounded, BoundedLatest:
	case BoundedTimestamp:
		if c.BoundedTimestamp.IsZero() {
			return errors.New("kafka source: scan.bounded.mode timestamp needs scan.bounded.timestamp-millis (SourceConfig.BoundedTimestamp)")
		}
	default:
		return fmt.Errorf("kafka source: scan.bounded.mode %q is not one of unbounded, latest-offset, timestamp", c.BoundedMode)
	}
	return nil
}

// bounded tells whether the source stops.
func (s *Source[T]) bounded() bool {
	return s.cfg.BoundedMode != "" && s.cfg.BoundedMode != Unbounded
}

// Open implements spate.Source: the reader of split's subtask, starting
// by StartupMode.
func (s *Source[T]) Open(ctx context.Context, split spate.Split) (spate.SourceReader[T], error) {
	r, err := s.open(ctx, split, nil)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Restore implements spate.RestorableSource: the reader resumes the
// splits it owns at their offsets; the others (at another parallelism it
// gets every reader's, as a spate.UnionSplits) are other readers' to
// resume. The partitions it owns that are not among the splits were not
// in the checkpoint: they are new, and read from their earliest offset.
func (s *Source[T]) Restore(ctx context.Context, split spate.Split, splits []spate.SplitState) (spate.SourceReader[T], error) {
	restored := map[topicPartition]span{}
	for _, st := range splits {
		tp, err := parseSplitID(st.ID)
		if err != nil {
			return nil, fmt.Errorf("kafka source: restore: %w", err)
		}
		off, stop, err := decodePosition(st.Position)
		if err != nil {
			return nil, fmt.Errorf("kafka source: restore split %s: %w", st.ID, err)
		}
		if owner(tp, split.Parallelism) == split.Subtask {
			restored[tp] = span{off, stop}
		}
	}
	r, err := s.open(ctx, split, restored)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// span is where a reader starts in a partition and where it stops (-1:
// never).
type span struct{ start, stop int64 }

// open opens a reader that resumes restored (nil on a fresh start).
func (s *Source[T]) open(ctx context.Context, split spate.Split, restored map[topicPartition]span) (*reader[T], error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	// A short metadata age lets a partition found by discovery (or a
	// restore) be fetched at once rather than after kgo's default 5 s.
	opts := []kgo.Opt{kgo.SeedBrokers(s.cfg.Brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{}),
		kgo.MetadataMinAge(250 * time.Millisecond), kgo.KeepControlRecords(), kgo.WithPools(&records)}
	if s.cfg.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	opts = append(opts, s.cfg.ClientOptions...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka source: client: %w", err)
	}
	r := &reader[T]{
		src: s, split: split, ctx: ctx, cl: cl, adm: kadm.NewClient(cl),
		byTP: map[topicPartition]int{}, interval: s.cfg.DiscoveryInterval,
	}
	if r.interval == 0 {
		r.interval = DefaultDiscoveryInterval
	}
	if s.bounded() {
		r.interval = -1
	}
	if s.cfg.TopicPattern != "" {
		r.pattern = regexp.MustCompile("^(?:" + s.cfg.TopicPattern + ")$")
	}
	if restored != nil {
		// Resume the checkpoint's partitions first, so that their order
		// (their split indexes) does not depend on listing.
		r.assign(restored)
		if s.bounded() {
			return r, nil // a bounded source reads the partitions it started with
		}
	}
	if err := r.discover(ctx, restored == nil); err != nil {
		cl.Close()
		return nil, err
	}
	return r, nil
}

// reader reads the partitions of one subtask with a kgo client that
// consumes them directly (no group membership).
type reader[T any] struct {
	src   *Source[T]
	split spate.Split
	// ctx is the subtask's, for the calls NotifyCheckpointComplete makes.
	ctx     context.Context
	cl      *kgo.Client
	adm     *kadm.Client
	pattern *regexp.Regexp

	// parts are the reader's partitions, by split index; byTP indexes
	// them.
	parts []*partition
	byTP  map[topicPartition]int
	// done counts the partitions at their stop offset.
	done int
	// batches hold the records polled and not emitted yet, a batch per
	// fetched partition, from batches[next] on.
	batches []batch
	next    int
	rec     Record
	headers []Header
	// copies is the block Bytes and String copy values into.
	copies block

	interval     time.Duration
	nextDiscover time.Time
	err          error
}

// partition is a reader's position in one partition: the offset of the
// next record to emit.
type partition struct {
	tp   topicPartition
	next int64
	// stop is the offset a bounded source stops at, -1 if none.
	stop int64
	// hw is the partition's high watermark at its last fetch, -1 before.
	hw int64
}

// batch is the records of one partition from a poll: the partition is
// looked up once per batch rather than once per record.
type batch struct {
	// part is the partition's split index, -1 if the reader no longer
	// has it.
	part int
	recs []*kgo.Record
}

// pollWait is the longest a Read waits for records, so that the runtime
// can flush, fire timers and take checkpoints meanwhile.
const pollWait = 20 * time.Millisecond

// Read implements spate.SourceReader.
func (r *reader[T]) Read(ctx context.Context, buf []T) (int, error) {
	return r.read(ctx, buf, nil)
}

// ReadEvents implements spate.EventReader: each record's Kafka timestamp
// and partition.
func (r *reader[T]) ReadEvents(ctx context.Context, buf []T, events []spate.SourceEvent) (int, error) {
	return r.read(ctx, buf, events)
}

// Splits implements spate.EventReader.
func (r *reader[T]) Splits() int { return len(r.parts) }

func (r *reader[T]) read(ctx context.Context, buf []T, events []spate.SourceEvent) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if r.interval > 0 && !time.Now().Before(r.nextDiscover) {
		if err := r.discover(ctx, false); err != nil {
			// A failed listing is retried at the next interval: the
			// partitions read so far go on.
			slog.Warn("kafka source: partition discovery failed", "subtask", r.split.Subtask, "err", err)
		}
	}
	if r.next == len(r.batches) {
		if r.src.bounded() && r.done == len(r.parts) {
			return 0, io.EOF
		}
		if err := r.poll(ctx); err != nil {
			r.err = err
			return 0, err
		}
	}
	n := 0
	for n < len(buf) && r.next < len(r.batches) {
		b := &r.batches[r.next]
		if b.part < 0 || len(b.recs) == 0 {
			*b = batch{} // let the records go
			r.next++
			continue
		}
		i, p := b.part, r.parts[b.part]
		// recs is the batch's records left, written back below: a slice
		// written to the heap per record would cost a write barrier.
		recs := b.recs
		for n < len(buf) && len(recs) > 0 {
			kr := recs[0]
			recs = recs[1:]
			if kr.Offset < p.next || (p.stop >= 0 && p.next >= p.stop) {
				kr.Recycle()
				continue // already emitted, or beyond the stop
			}
			if p.stop >= 0 && kr.Offset >= p.stop {
				kr.Recycle()
				r.reached(p, p.stop)
				continue
			}
			if kr.Attrs.IsControl() {
				// A transaction's marker: kept so that the position moves
				// past it, for a bounded source to see its stop.
				r.reached(p, kr.Offset+1)
				kr.Recycle()
				continue
			}
			r.reached(p, kr.Offset+1)
			r.headers = refill(kr, &r.rec, r.headers)
			if r.rec.copies == nil {
				r.rec.copies = &r.copies
			}
			v, err := r.src.deser(&r.rec)
			if err != nil {
				b.recs = recs
				rerr := &spate.RecordError{
					Source: fmt.Sprintf("kafka topic %s partition %d offset %d", kr.Topic, kr.Partition, kr.Offset),
					Record: recordText(kr.Value),
					Err:    err,
				}
				kr.Recycle()
				return n, rerr
			}
			buf[n] = v
			if events != nil {
				events[n] = spate.SourceEvent{Timestamp: kr.Timestamp.UnixMilli(), Split: i}
			}
			// Last: a recycled record is zeroed, and its memory goes to
			// the next fetch once its slice's records are all recycled
			// (recordPool).
			kr.Recycle()
			n++
		}
		b.recs = recs
	}
	return n, nil
}

// reached moves p's position to next, and stops reading p once it is at
// its stop.
func (r *reader[T]) reached(p *partition, next int64) {
	p.next = next
	if p.stop >= 0 && p.next >= p.stop {
		r.done++
		r.cl.RemoveConsumePartitions(map[string][]int32{p.tp.topic: {p.tp.partition}})
	}
}

// poll takes the records the client has fetched, waiting at most
// pollWait for some. It takes them all: Read hands them out over as many
// calls as they need, a batch per partition.
func (r *reader[T]) poll(ctx context.Context) error {
	clear(r.batches)
	r.batches, r.next = r.batches[:0], 0
	if len(r.parts) == 0 {
		// Nothing to read: do not hold the task.
		return nil
	}
	var fs kgo.Fetches
	if r.cl.BufferedFetchRecords() > 0 {
		fs = r.cl.PollFetches(ctx) // returns at once, without a timer
	} else {
		pctx, cancel := context.WithTimeout(ctx, pollWait)
		fs = r.cl.PollFetches(pctx)
		cancel()
	}
	if fs.IsClientClosed() {
		return errors.New("kafka source: client closed")
	}
	var errs []error
	fs.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		errs = append(errs, fmt.Errorf("kafka source: fetch topic %s partition %d: %w", t, p, err))
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		i, ok := r.byTP[topicPartition{fp.Topic, fp.Partition}]
		if !ok {
			i = -1
		} else if fp.HighWatermark >= 0 {
			r.parts[i].hw = fp.HighWatermark
		}
		if len(fp.Records) > 0 {
			r.batches = append(r.batches, batch{part: i, recs: fp.Records})
		}
	})
	return nil
}

// Pending implements spate.PendingReader: the records between each
// partition's position and its high watermark at the last fetch (the
// consumer lag, Flink's pendingRecords for Kafka), -1 before any fetch;
// the bytes are unknown.
func (r *reader[T]) Pending() (records, bytes int64) {
	records = -1
	for _, p := range r.parts {
		if p.hw >= 0 {
			records = max(records, 0) + max(p.hw-p.next, 0)
		}
	}
	return records, -1
}

// SnapshotSplits implements spate.CheckpointedReader: every partition of
// the reader and the offset of its next record.
func (r *reader[T]) SnapshotSplits() ([]spate.SplitState, error) {
	ss := make([]spate.SplitState, len(r.parts))
	for i, p := range r.parts {
		ss[i] = spate.SplitState{ID: p.tp.String(), Position: encodePosition(p.next, p.stop)}
	}
	return ss, nil
}

// NotifyCheckpointComplete implements spate.CheckpointListener: it
// commits the checkpoint's offsets to GroupID, for monitoring (lag); the
// source never reads them back except with StartGroupOffsets.
func (r *reader[T]) NotifyCheckpointComplete(id int64, splits []spate.SplitState) error {
	if r.src.cfg.GroupID == "" || r.src.cfg.NoOffsetCommit || len(splits) == 0 {
		return nil
	}
	os := kadm.Offsets{}
	for _, st := range splits {
		tp, err := parseSplitID(st.ID)
		if err != nil {
			return err
		}
		off, _, err := decodePosition(st.Position)
		if err != nil {
			return err
		}
		os.Add(kadm.Offset{Topic: tp.topic, Partition: tp.partition, At: off, LeaderEpoch: -1})
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	resp, err := r.adm.CommitOffsets(ctx, r.src.cfg.GroupID, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka source: commit the offsets of checkpoint %d to group %s: %w", id, r.src.cfg.GroupID, err)
	}
	return nil
}

// Close implements spate.SourceReader.
func (r *reader[T]) Close() error {
	if r.cl != nil {
		r.cl.Close()
		r.cl = nil
	}
	if r.err == nil {
		r.err = errors.New("kafka source: read after close")
	}
	return nil
}
