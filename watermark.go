package spate

import (
	"math"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// Event timestamps and watermarks are milliseconds since the Unix epoch, as
// in Flink.

// WatermarkOutput receives the watermarks a WatermarkGenerator emits.
type WatermarkOutput interface {
	// EmitWatermark declares that no record with a timestamp <= wm is
	// expected any more. Lower values than before are ignored.
	EmitWatermark(wm int64)
}

// WatermarkGenerator derives watermarks from the records of one source
// subtask: OnEvent sees every record, OnPeriodicEmit is called after every
// batch the source reads.
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

// WithIdleness marks a source subtask idle after d without records.
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

// wmState turns generator output into watermarks on an Output, only ever
// forward.
type wmState[T any] struct {
	out  exec.Output[T]
	last int64
}

func (w *wmState[T]) EmitWatermark(wm int64) {
	if wm > w.last {
		w.last = wm
		w.out.Watermark(wm)
	}
}

// AssignTimestampsAndWatermarks gives s's records timestamps and watermarks
// by strategy, replacing those from upstream (except the final watermark of
// a bounded input).
func AssignTimestampsAndWatermarks[T any](s Stream[T], strategy WatermarkStrategy[T]) Stream[T] {
	n := s.env.addNode("timestamps", "Timestamps/Watermarks", kitOf[T]{}, func(bc *buildCtx) (*opSpec, error) {
		op := &timestampOp[T]{task: bc.task, name: bc.name, ws: strategy, wm: wmState[T]{out: out[T](bc), last: exec.MinWatermark}}
		if strategy.newGen != nil {
			op.gen = strategy.newGen()
		}
		return &opSpec{inputs: []any{exec.Output[T](op)}}, nil
	})
	connect(s, n, 0, nil)
	return newStream[T](s.env, n)
}

type timestampOp[T any] struct {
	task  *exec.Task
	name  string
	ws    WatermarkStrategy[T]
	gen   WatermarkGenerator[T]
	wm    wmState[T]
	count int
}

func (o *timestampOp[T]) Collect(v T, ts int64) {
	o.task.Current = o.name
	if o.ws.timestamp != nil {
		ts = o.ws.timestamp(v, ts)
	}
	if o.gen != nil {
		o.gen.OnEvent(v, ts, &o.wm)
	}
	o.wm.out.Collect(v, ts)
	if o.count++; o.count == exec.DefaultBatchSize && o.gen != nil {
		o.count = 0
		o.gen.OnPeriodicEmit(&o.wm)
	}
}

// Watermark drops upstream watermarks: this operator makes its own. The
// final one of a bounded input passes, after the generator's last.
func (o *timestampOp[T]) Watermark(wm int64) {
	if o.gen != nil {
		o.gen.OnPeriodicEmit(&o.wm)
	}
	if wm == exec.MaxWatermark {
		o.wm.EmitWatermark(wm)
	}
}

func (o *timestampOp[T]) Finish() {
	o.wm.EmitWatermark(exec.MaxWatermark)
	o.wm.out.Finish()
}
