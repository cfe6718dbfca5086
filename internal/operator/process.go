package operator

import "github.com/spate-dev/spate/internal/exec"

// NewProcess makes a process operator instance calling process for every
// record; open, if not nil, is the function's Open, close its Close.
func NewProcess[T, O any](in *Instance, process func(*Context[O], T) error, open func(*Context[O]) error, close func() error) *Spec {
	op := &processOp[T, O]{ctx: newContext[O](in), process: process}
	spec := &Spec{Inputs: []any{exec.Output[T](op)}, Close: close}
	if open != nil {
		spec.Open = func() error {
			op.ctx.task.Current = op.ctx.name // an error or panic in Open names this operator
			return open(&op.ctx)
		}
	}
	return spec
}

type processOp[T, O any] struct {
	ctx     Context[O]
	process func(*Context[O], T) error
}

func (o *processOp[T, O]) Collect(v T, ts int64) {
	o.ctx.task.Current = o.ctx.name
	o.ctx.ts = ts
	o.ctx.call(o.process(&o.ctx, v))
}

func (o *processOp[T, O]) Watermark(wm int64) {
	o.ctx.wm = wm
	o.ctx.out.Watermark(wm)
}

func (o *processOp[T, O]) Finish() { o.ctx.out.Finish() }

// NewKeyedProcess makes a keyed process operator instance: process is
// called for every record with its key (by key) current, onTimer (if not
// nil) for every timer; open, if not nil, is the function's Open, close
// its Close.
func NewKeyedProcess[K comparable, T, O any](in *Instance, key func(T) K, process func(*KeyedContext[K, O], T) error, onTimer func(*KeyedContext[K, O], int64) error, open func(*KeyedContext[K, O]) error, close func() error) *Spec {
	op := &keyedProcessOp[K, T, O]{key: key, process: process, th: onTimer}
	op.ctx.init(in, op.onTimer)
	spec := &Spec{Inputs: []any{exec.Output[T](op)}, Close: close, State: op}
	if open != nil {
		spec.Open = func() error {
			op.ctx.task.Current = op.ctx.name // an error or panic in Open names this operator
			return open(&op.ctx)
		}
	}
	return spec
}

type keyedProcessOp[K comparable, T, O any] struct {
	ctx     KeyedContext[K, O]
	key     func(T) K
	process func(*KeyedContext[K, O], T) error
	th      func(*KeyedContext[K, O], int64) error
}

func (o *keyedProcessOp[K, T, O]) Collect(v T, ts int64) {
	c := &o.ctx
	c.task.Current = c.name
	c.rt.key = o.key(v)
	c.ts = ts
	c.call(o.process(c, v))
}

func (o *keyedProcessOp[K, T, O]) onTimer(t timerKey[K], d TimeDomain) {
	if o.th == nil {
		return
	}
	c := &o.ctx
	c.task.Current = c.name
	c.setTimer(t, d)
	c.call(o.th(c, t.ts))
}

func (o *keyedProcessOp[K, T, O]) Watermark(wm int64) {
	o.ctx.wm = wm
	o.ctx.timers.advance(wm)
	o.ctx.out.Watermark(wm)
}

func (o *keyedProcessOp[K, T, O]) Finish() { o.ctx.out.Finish() }
