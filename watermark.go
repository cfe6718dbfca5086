package spate

import (
	"fmt"
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

// strategyRun runs a WatermarkStrategy in one subtask, for a source or for
// AssignTimestampsAndWatermarks: it assigns timestamps, feeds the
// generator, calls its OnPeriodicEmit on a processing-time timer every
// interval (Flink's periodic watermarks), and marks the subtask idle when a
// whole idleness timeout of processing time passes without records
// (Flink's WatermarksWithIdleness). While idle it emits no periodic
// watermarks, which would make the subtask active again downstream.
type strategyRun[T any] struct {
	task      *exec.Task
	ws        WatermarkStrategy[T]
	gen       WatermarkGenerator[T]
	wm        wmState[T]
	interval  int64 // ms between periodic watermarks; 0: none
	tick      int64 // ms between timer ticks; 0: no timer
	idleAfter int64 // ms without records before going idle; 0: never
	// events counts records; seen is its value at the last tick that found
	// it changed, at processing time activeAt.
	events, seen uint64
	activeAt     int64
	idle         bool
	timer        *exec.ProcTimer
	onTick       func()
}

func newStrategyRun[T any](bc *buildCtx, ws WatermarkStrategy[T]) (*strategyRun[T], error) {
	iv, err := bc.env.autoWatermarkInterval()
	if err != nil {
		return nil, err
	}
	r := &strategyRun[T]{task: bc.task, ws: ws, wm: wmState[T]{out: out[T](bc), last: exec.MinWatermark}}
	if ws.newGen != nil {
		r.gen = ws.newGen()
		r.interval = iv
	}
	if ws.idle > 0 {
		r.idleAfter = max(ws.idle.Milliseconds(), 1)
	}
	r.tick = r.interval
	if r.tick == 0 {
		r.tick = r.idleAfter
	}
	r.onTick = r.fire
	return r, nil
}

// start registers the first tick; it runs on the subtask's goroutine, once
// its clock is set.
func (r *strategyRun[T]) start() {
	if r.tick > 0 {
		now := r.task.Now()
		r.activeAt = now
		r.timer = r.task.RegisterProcTimer(now+r.tick, r.onTick)
	}
}

// stop cancels the next tick.
func (r *strategyRun[T]) stop() {
	r.task.CancelProcTimer(r.timer)
	r.timer = nil
}

// stamp returns a record's timestamp, and makes an idle subtask active.
func (r *strategyRun[T]) stamp(v T, ts int64) int64 {
	r.active(1)
	return r.timestamp(v, ts)
}

// active counts n records, and makes an idle subtask active.
func (r *strategyRun[T]) active(n int) {
	r.events += uint64(n)
	if r.idle {
		r.idle = false
		r.task.SetIdle(false)
	}
}

// perRecord tells whether records need timestamp or observe: a strategy
// without a timestamp assigner or generator needs neither.
func (r *strategyRun[T]) perRecord() bool { return r.ws.timestamp != nil || r.gen != nil }

// timestamp returns a record's timestamp, by the assigner if there is one.
func (r *strategyRun[T]) timestamp(v T, ts int64) int64 {
	if r.ws.timestamp != nil {
		return r.ws.timestamp(v, ts)
	}
	return ts
}

// observe shows the generator a record, after it was emitted, as Flink
// does: a watermark the generator emits for it follows it.
func (r *strategyRun[T]) observe(v T, ts int64) {
	if r.gen != nil {
		r.gen.OnEvent(v, ts, &r.wm)
	}
}

func (r *strategyRun[T]) fire() {
	now := r.task.Now()
	if r.idleAfter > 0 {
		if r.events != r.seen {
			r.seen, r.activeAt = r.events, now
		} else if !r.idle && now-r.activeAt >= r.idleAfter {
			r.idle = true
			r.task.SetIdle(true)
		}
	}
	if r.interval > 0 && !r.idle {
		r.gen.OnPeriodicEmit(&r.wm)
	}
	r.timer = r.task.RegisterProcTimer(now+r.tick, r.onTick)
}

// AssignTimestampsAndWatermarks gives s's records timestamps and watermarks
// by strategy, replacing those from upstream (except the final watermark of
// a bounded input). Periodic watermarks and idleness follow processing time
// as at a source.
func AssignTimestampsAndWatermarks[T any](s Stream[T], strategy WatermarkStrategy[T]) Stream[T] {
	n := s.env.addNode("timestamps", "Timestamps/Watermarks", kitOf[T]{}, func(bc *buildCtx) (*opSpec, error) {
		r, err := newStrategyRun(bc, strategy)
		if err != nil {
			return nil, err
		}
		op := &timestampOp[T]{task: bc.task, name: bc.name, run: r}
		return &opSpec{inputs: []any{exec.Output[T](op)}, open: op.open}, nil
	})
	connect(s, n, 0, nil)
	return newStream[T](s.env, n)
}

type timestampOp[T any] struct {
	task *exec.Task
	name string
	run  *strategyRun[T]
}

func (o *timestampOp[T]) open() error {
	o.run.start()
	return nil
}

func (o *timestampOp[T]) Collect(v T, ts int64) {
	o.task.Current = o.name
	ts = o.run.stamp(v, ts)
	o.run.wm.out.Collect(v, ts)
	o.task.Current = o.name
	o.run.observe(v, ts)
}

// Watermark drops upstream watermarks: this operator makes its own. The
// final one of a bounded input passes.
func (o *timestampOp[T]) Watermark(wm int64) {
	if wm == exec.MaxWatermark {
		o.run.wm.EmitWatermark(wm)
	}
}

func (o *timestampOp[T]) Finish() {
	o.run.stop()
	o.run.wm.EmitWatermark(exec.MaxWatermark)
	o.run.wm.out.Finish()
}
