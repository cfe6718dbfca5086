package spate

import (
	"github.com/spate-dev/spate/internal/exec"
)

// Context is what a process function sees besides the record: the record's
// timestamp, a way to emit results and side outputs, and the time.
type Context[O any] struct {
	task  *exec.Task
	name  string
	out   exec.Output[O]
	sides sideOutputs
	ts    int64
	wm    int64
}

func newContext[O any](bc *buildCtx) Context[O] {
	return Context[O]{task: bc.task, name: bc.name, out: out[O](bc), sides: bc.sides, ts: exec.NoTimestamp, wm: exec.MinWatermark}
}

// Collect emits v with the current record's (or timer's) timestamp.
func (c *Context[O]) Collect(v O) { c.out.Collect(v, c.ts) }

// CollectAt emits v with timestamp ts.
func (c *Context[O]) CollectAt(v O, ts int64) { c.out.Collect(v, ts) }

// Timestamp returns the current record's event timestamp in milliseconds,
// or exec.NoTimestamp (math.MinInt64) if it has none; in OnTimer, the timer's
// time.
func (c *Context[O]) Timestamp() int64 { return c.ts }

// HasTimestamp tells whether the current record has an event timestamp.
func (c *Context[O]) HasTimestamp() bool { return c.ts != exec.NoTimestamp }

// CurrentWatermark returns the operator's current event time.
func (c *Context[O]) CurrentWatermark() int64 { return c.wm }

// CurrentProcessingTime returns the wall clock in milliseconds.
func (c *Context[O]) CurrentProcessingTime() int64 { return c.task.Now() }

// Subtask returns the index of the subtask running the function.
func (c *Context[O]) Subtask() int { return c.task.Subtask }

func (c *Context[O]) sideOutput(id string) (any, bool) {
	o, ok := c.sides[id]
	return o, ok
}

func (c *Context[O]) timestamp() int64 { return c.ts }

// call runs user code, naming the operator for a panic and failing the
// subtask on an error.
func (c *Context[O]) call(err error) {
	if err != nil {
		c.task.Fail(err)
	}
}

// ProcessFunction processes each record of a stream.
type ProcessFunction[T, O any] interface {
	ProcessElement(ctx *Context[O], v T) error
}

// ProcessFunc adapts a function to ProcessFunction.
type ProcessFunc[T, O any] func(ctx *Context[O], v T) error

// ProcessElement calls f.
func (f ProcessFunc[T, O]) ProcessElement(ctx *Context[O], v T) error { return f(ctx, v) }

// Opener is implemented by functions that prepare per subtask (open
// connections, declare state) before the first record.
type Opener[C any] interface {
	Open(ctx C) error
}

// Closer is implemented by functions that release resources when the
// subtask ends.
type Closer interface {
	Close() error
}

// Process applies a process function; newFn is called once per subtask, so
// each subtask has its own instance.
func Process[T, O any](s Stream[T], newFn func() ProcessFunction[T, O]) Stream[O] {
	n := s.env.addNode("process", "Process", kitOf[O]{}, func(bc *buildCtx) (*opSpec, error) {
		op := &processOp[T, O]{ctx: newContext[O](bc), f: newFn()}
		spec := &opSpec{inputs: []any{exec.Output[T](op)}, close: closeFn(op.f)}
		if o, ok := op.f.(Opener[*Context[O]]); ok {
			spec.open = func() error {
				op.ctx.task.Current = op.ctx.name // an error or panic in Open names this operator
				return o.Open(&op.ctx)
			}
		}
		return spec, nil
	})
	connect(s, n, 0, nil)
	return newStream[O](s.env, n)
}

func closeFn(f any) func() error {
	if c, ok := f.(Closer); ok {
		return c.Close
	}
	return nil
}

type processOp[T, O any] struct {
	ctx Context[O]
	f   ProcessFunction[T, O]
}

func (o *processOp[T, O]) Collect(v T, ts int64) {
	o.ctx.task.Current = o.ctx.name
	o.ctx.ts = ts
	o.ctx.call(o.f.ProcessElement(&o.ctx, v))
}

func (o *processOp[T, O]) Watermark(wm int64) {
	o.ctx.wm = wm
	o.ctx.out.Watermark(wm)
}

func (o *processOp[T, O]) Finish() { o.ctx.out.Finish() }

// KeyedContext is the context of a keyed function: Context plus the current
// key, keyed state and timers.
type KeyedContext[K comparable, O any] struct {
	Context[O]
	rt     keyedRuntime[K]
	store  StateStore[K]
	timers *timerService[K]
	domain TimeDomain
	// noTimers, if set, is the error of registering a timer where nothing
	// would receive it (a window function without OnTimer).
	noTimers error
}

func (c *KeyedContext[K, O]) init(bc *buildCtx, fire func(timerKey[K], TimeDomain)) {
	c.Context = newContext[O](bc)
	c.rt.states = map[string]any{}
	c.store = StateStore[K]{rt: &c.rt}
	c.timers = newTimerService(bc.task, fire)
}

// Key returns the current key.
func (c *KeyedContext[K, O]) Key() K { return c.rt.key }

// State returns the store that makes state handles scoped to the current
// key; call it in Open and keep the handles.
func (c *KeyedContext[K, O]) State() *StateStore[K] { return &c.store }

// RegisterEventTimeTimer asks for OnTimer when the watermark reaches ts, for
// the current key. Registering the same time twice fires once.
func (c *KeyedContext[K, O]) RegisterEventTimeTimer(ts int64) {
	if c.noTimers != nil {
		c.task.Fail(c.noTimers)
	}
	c.timers.registerEvent(timerKey[K]{key: c.rt.key, ns: c.rt.ns, ts: ts})
}

// DeleteEventTimeTimer cancels an event-time timer of the current key.
func (c *KeyedContext[K, O]) DeleteEventTimeTimer(ts int64) {
	c.timers.deleteEvent(timerKey[K]{key: c.rt.key, ns: c.rt.ns, ts: ts})
}

// RegisterProcessingTimeTimer asks for OnTimer when the wall clock reaches
// ts (milliseconds), for the current key.
func (c *KeyedContext[K, O]) RegisterProcessingTimeTimer(ts int64) {
	if c.noTimers != nil {
		c.task.Fail(c.noTimers)
	}
	c.timers.registerProc(timerKey[K]{key: c.rt.key, ns: c.rt.ns, ts: ts})
}

// DeleteProcessingTimeTimer cancels a processing-time timer of the current
// key.
func (c *KeyedContext[K, O]) DeleteProcessingTimeTimer(ts int64) {
	c.timers.deleteProc(timerKey[K]{key: c.rt.key, ns: c.rt.ns, ts: ts})
}

// TimeDomain tells, in OnTimer, which kind of timer fired.
func (c *KeyedContext[K, O]) TimeDomain() TimeDomain { return c.domain }

// setTimer makes the context current for a firing timer.
func (c *KeyedContext[K, O]) setTimer(t timerKey[K], d TimeDomain) {
	c.rt.key, c.rt.ns, c.domain = t.key, t.ns, d
	if d == EventTime {
		c.ts = t.ts
	} else {
		c.ts = exec.NoTimestamp
	}
}

// KeyedProcessFunction processes the records of a keyed stream with state and
// timers; implement TimerHandler to receive timers.
type KeyedProcessFunction[K comparable, T, O any] interface {
	ProcessElement(ctx *KeyedContext[K, O], v T) error
}

// TimerHandler receives the timers a keyed function registered.
type TimerHandler[K comparable, O any] interface {
	OnTimer(ctx *KeyedContext[K, O], ts int64) error
}

// KeyedProcessFunc adapts a function to KeyedProcessFunction.
type KeyedProcessFunc[K comparable, T, O any] func(ctx *KeyedContext[K, O], v T) error

// ProcessElement calls f.
func (f KeyedProcessFunc[K, T, O]) ProcessElement(ctx *KeyedContext[K, O], v T) error {
	return f(ctx, v)
}

// KeyedProcess applies a keyed process function; newFn is called once per
// subtask.
func KeyedProcess[K comparable, T, O any](ks KeyedStream[K, T], newFn func() KeyedProcessFunction[K, T, O]) Stream[O] {
	n := ks.s.env.addNode("keyedProcess", "KeyedProcess", kitOf[O]{}, func(bc *buildCtx) (*opSpec, error) {
		op := &keyedProcessOp[K, T, O]{key: ks.key, f: newFn()}
		op.th, _ = op.f.(TimerHandler[K, O])
		op.ctx.init(bc, op.onTimer)
		spec := &opSpec{inputs: []any{exec.Output[T](op)}, close: closeFn(op.f)}
		if o, ok := op.f.(Opener[*KeyedContext[K, O]]); ok {
			spec.open = func() error {
				op.ctx.task.Current = op.ctx.name // an error or panic in Open names this operator
				return o.Open(&op.ctx)
			}
		}
		return spec, nil
	})
	connectKeyed(ks, n, 0)
	return newStream[O](ks.s.env, n)
}

type keyedProcessOp[K comparable, T, O any] struct {
	ctx KeyedContext[K, O]
	key func(T) K
	f   KeyedProcessFunction[K, T, O]
	th  TimerHandler[K, O]
}

func (o *keyedProcessOp[K, T, O]) Collect(v T, ts int64) {
	c := &o.ctx
	c.task.Current = c.name
	c.rt.key = o.key(v)
	c.ts = ts
	c.call(o.f.ProcessElement(c, v))
}

func (o *keyedProcessOp[K, T, O]) onTimer(t timerKey[K], d TimeDomain) {
	if o.th == nil {
		return
	}
	c := &o.ctx
	c.task.Current = c.name
	c.setTimer(t, d)
	c.call(o.th.OnTimer(c, t.ts))
}

func (o *keyedProcessOp[K, T, O]) Watermark(wm int64) {
	o.ctx.wm = wm
	o.ctx.timers.advance(wm)
	o.ctx.out.Watermark(wm)
}

func (o *keyedProcessOp[K, T, O]) Finish() { o.ctx.out.Finish() }
