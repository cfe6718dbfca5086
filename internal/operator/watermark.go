package operator

import (
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// WatermarkOutput receives the watermarks a watermark generator emits.
type WatermarkOutput interface {
	// EmitWatermark declares that no record with a timestamp <= wm is
	// expected any more. Lower values than before are ignored.
	EmitWatermark(wm int64)
}

// Generator derives watermarks from the records of one subtask: the
// method set of spate.WatermarkGenerator.
type Generator[T any] interface {
	OnEvent(v T, ts int64, out WatermarkOutput)
	OnPeriodicEmit(out WatermarkOutput)
}

// Strategy is a watermark strategy as a source or timestamp operator runs
// it (spate.WatermarkStrategy).
type Strategy[T any] struct {
	// NewGenerator makes a subtask's generator; nil: no watermarks.
	NewGenerator func() Generator[T]
	// Timestamp, if set, assigns a record's timestamp from the record and
	// the one it carried.
	Timestamp func(v T, previous int64) int64
	// Idleness, if positive, marks the subtask idle after that long
	// without records.
	Idleness time.Duration
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
	ws        Strategy[T]
	gen       Generator[T]
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
	// perSplit runs a generator per split of an EventReader (splits)
	// instead of one for the subtask.
	perSplit bool
	splits   []*splitWatermark[T]
}

func newStrategyRun[T any](in *Instance, ws Strategy[T]) (*strategyRun[T], error) {
	iv, err := in.AutoWatermarkInterval()
	if err != nil {
		return nil, err
	}
	r := &strategyRun[T]{task: in.Task, ws: ws, wm: wmState[T]{out: Out[T](in), last: exec.MinWatermark}}
	if ws.NewGenerator != nil {
		r.gen = ws.NewGenerator()
		r.interval = iv
	}
	if ws.Idleness > 0 {
		r.idleAfter = max(ws.Idleness.Milliseconds(), 1)
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
func (r *strategyRun[T]) perRecord() bool { return r.ws.Timestamp != nil || r.gen != nil }

// timestamp returns a record's timestamp, by the assigner if there is one.
func (r *strategyRun[T]) timestamp(v T, ts int64) int64 {
	if r.ws.Timestamp != nil {
		return r.ws.Timestamp(v, ts)
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
	if r.perSplit {
		r.fireSplits(now)
		r.timer = r.task.RegisterProcTimer(now+r.tick, r.onTick)
		return
	}
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

// NewTimestamps makes an operator instance that gives records timestamps
// and watermarks by strategy, replacing those from upstream (except the
// final watermark of a bounded input).
func NewTimestamps[T any](in *Instance, strategy Strategy[T]) (*Spec, error) {
	r, err := newStrategyRun(in, strategy)
	if err != nil {
		return nil, err
	}
	op := &timestampOp[T]{task: in.Task, name: in.Name, run: r}
	return &Spec{Inputs: []any{exec.Output[T](op)}, Open: op.open}, nil
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
