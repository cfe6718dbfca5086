package spate

import (
	"fmt"
	"math"
	"time"

	"github.com/spate-dev/spate/internal/operator"
)

// Event timestamps and watermarks are milliseconds since the Unix epoch, as
// in Flink.

// WatermarkOutput receives the watermarks a WatermarkGenerator emits.
type WatermarkOutput = operator.WatermarkOutput

// WatermarkGenerator derives watermarks from the records of one subtask (of
// a source, or of AssignTimestampsAndWatermarks): OnEvent sees every record,
// OnPeriodicEmit is called every pipeline.auto-watermark-interval of
// processing time, except while the subtask is idle.
type WatermarkGenerator[T any] interface {
	OnEvent(v T, ts int64, out WatermarkOutput)
	OnPeriodicEmit(out WatermarkOutput)
}

// WatermarkStrategy says how a stream's records get event timestamps and
// how watermarks follow them.
type WatermarkStrategy[T any] struct {
	newGen    func() WatermarkGenerator[T]
	timestamp func(v T, previous int64) int64
	idle      time.Duration
}

// NoWatermarks is the strategy of a stream without event time.
func NoWatermarks[T any]() WatermarkStrategy[T] { return WatermarkStrategy[T]{} }

// ForBoundedOutOfOrderness expects records at most maxDelay later than the
// highest timestamp seen: the watermark trails it by maxDelay.
func ForBoundedOutOfOrderness[T any](maxDelay time.Duration) WatermarkStrategy[T] {
	d := maxDelay.Milliseconds()
	return WatermarkStrategy[T]{newGen: func() WatermarkGenerator[T] {
		return &boundedGen[T]{delay: d, max: math.MinInt64 + d + 1}
	}}
}

// ForMonotonousTimestamps expects timestamps in ascending order: the
// watermark is the highest timestamp seen minus one millisecond.
func ForMonotonousTimestamps[T any]() WatermarkStrategy[T] {
	return ForBoundedOutOfOrderness[T](0)
}

// ForGenerator uses a custom watermark generator, one per source subtask.
func ForGenerator[T any](newGen func() WatermarkGenerator[T]) WatermarkStrategy[T] {
	return WatermarkStrategy[T]{newGen: newGen}
}

// WithTimestampAssigner sets how a record's event timestamp (milliseconds)
// is derived; previous is the timestamp the record carried so far
// (exec.NoTimestamp at a source).
func (w WatermarkStrategy[T]) WithTimestampAssigner(f func(v T, previous int64) int64) WatermarkStrategy[T] {
	w.timestamp = f
	return w
}

// WithIdleness marks a subtask idle after d of processing time without
// records, so that it does not hold back the watermark downstream; its
// next record makes it active again. Idleness is checked every
// pipeline.auto-watermark-interval (or every d when periodic watermarks are
// disabled), so a subtask goes idle between d and d plus that interval
// after its last record, as in Flink.
func (w WatermarkStrategy[T]) WithIdleness(d time.Duration) WatermarkStrategy[T] {
	w.idle = d
	return w
}

type boundedGen[T any] struct {
	delay int64
	max   int64
}

func (g *boundedGen[T]) OnEvent(_ T, ts int64, _ WatermarkOutput) {
	if ts > g.max {
		g.max = ts
	}
}

func (g *boundedGen[T]) OnPeriodicEmit(out WatermarkOutput) {
	out.EmitWatermark(g.max - g.delay - 1)
}

// KeyAutoWatermarkInterval is the configuration key of the processing-time
// interval between periodic watermarks (Flink's
// pipeline.auto-watermark-interval): a duration, 200 ms by default; 0
// disables periodic watermarks (a generator may still emit from OnEvent).
const KeyAutoWatermarkInterval = "pipeline.auto-watermark-interval"

// DefaultAutoWatermarkInterval is KeyAutoWatermarkInterval's default, Flink's.
const DefaultAutoWatermarkInterval = 200 * time.Millisecond

// WithAutoWatermarkInterval sets pipeline.auto-watermark-interval: how often,
// in processing time, watermark generators emit periodic watermarks; 0
// disables them.
func WithAutoWatermarkInterval(d time.Duration) Option {
	return func(e *Env) { e.conf.Set(KeyAutoWatermarkInterval, d.String()) }
}

// autoWatermarkInterval returns pipeline.auto-watermark-interval in
// milliseconds: 0 disables periodic watermarks, and a positive duration
// below a millisecond counts as one.
func (e *Env) autoWatermarkInterval() (int64, error) {
	d, err := e.conf.Duration(KeyAutoWatermarkInterval, DefaultAutoWatermarkInterval)
	if err != nil {
		return 0, fmt.Errorf("%w (0 disables periodic watermarks)", err)
	}
	if d > 0 && d < time.Millisecond {
		return 1, nil
	}
	return d.Milliseconds(), nil
}

// runtime is the strategy as a source or timestamp operator runs it.
func (w WatermarkStrategy[T]) runtime() operator.Strategy[T] {
	r := operator.Strategy[T]{Timestamp: w.timestamp, Idleness: w.idle}
	if w.newGen != nil {
		r.NewGenerator = func() operator.Generator[T] { return w.newGen() }
	}
	return r
}

// AssignTimestampsAndWatermarks gives s's records timestamps and watermarks
// by strategy, replacing those from upstream (except the final watermark of
// a bounded input). Periodic watermarks and idleness follow processing time
// as at a source.
func AssignTimestampsAndWatermarks[T any](s Stream[T], strategy WatermarkStrategy[T]) Stream[T] {
	n := s.env.addNode("timestamps", "Timestamps/Watermarks", operator.TypeOf[T](), func(in *operator.Instance) (*operator.Spec, error) {
		return operator.NewTimestamps(in, strategy.runtime())
	})
	connect(s, n, 0, nil)
	return newStream[T](s.env, n)
}
