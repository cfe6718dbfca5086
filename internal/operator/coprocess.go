package operator

import "github.com/spate-dev/spate/internal/exec"

// NewCoProcess makes a two-input process operator instance: process1 for
// the records of gate 0, process2 for those of gate 1; open, if not nil,
// is the function's Open, close its Close.
func NewCoProcess[A, B, O any](in *Instance, process1 func(*Context[O], A) error, process2 func(*Context[O], B) error, open func(*Context[O]) error, close func() error) *Spec {
	op := &coProcessOp[A, B, O]{ctx: newContext[O](in), p1: process1, p2: process2}
	spec := &Spec{
		Inputs:  []any{exec.Output[A](coInput[A]{op.in1}), exec.Output[B](coInput[B]{op.in2})},
		Control: op, Close: close,
	}
	if open != nil {
		spec.Open = func() error {
			op.ctx.task.Current = op.ctx.name // an error or panic in Open names this operator
			return open(&op.ctx)
		}
	}
	return spec
}

// coInput is one input gate of a two-input operator; the operator itself
// takes the gates' watermarks and end of input, as the task's Control.
type coInput[T any] struct{ f func(T, int64) }

func (c coInput[T]) Collect(v T, ts int64) { c.f(v, ts) }
func (coInput[T]) Watermark(int64)         {}
func (coInput[T]) Finish()                 {}

type coProcessOp[A, B, O any] struct {
	ctx Context[O]
	p1  func(*Context[O], A) error
	p2  func(*Context[O], B) error
}

func (o *coProcessOp[A, B, O]) in1(v A, ts int64) {
	o.ctx.task.Current = o.ctx.name
	o.ctx.ts = ts
	o.ctx.call(o.p1(&o.ctx, v))
}

func (o *coProcessOp[A, B, O]) in2(v B, ts int64) {
	o.ctx.task.Current = o.ctx.name
	o.ctx.ts = ts
	o.ctx.call(o.p2(&o.ctx, v))
}

func (o *coProcessOp[A, B, O]) Watermark(wm int64) {
	o.ctx.wm = wm
	o.ctx.out.Watermark(wm)
}

func (o *coProcessOp[A, B, O]) Finish() { o.ctx.out.Finish() }

// NewKeyedCoProcess makes a keyed two-input process operator instance:
// records of gate 0 are keyed by keyA and go to process1, those of gate 1
// by keyB to process2; onTimer, if not nil, receives the timers; open, if
// not nil, is the function's Open, close its Close.
func NewKeyedCoProcess[K comparable, A, B, O any](in *Instance, keyA func(A) K, keyB func(B) K, process1 func(*KeyedContext[K, O], A) error, process2 func(*KeyedContext[K, O], B) error, onTimer func(*KeyedContext[K, O], int64) error, open func(*KeyedContext[K, O]) error, close func() error) *Spec {
	op := &keyedCoOp[K, A, B, O]{keyA: keyA, keyB: keyB, p1: process1, p2: process2, th: onTimer}
	op.ctx.init(in, op.onTimer)
	spec := &Spec{
		Inputs:  []any{exec.Output[A](coInput[A]{op.in1}), exec.Output[B](coInput[B]{op.in2})},
		Control: op, Close: close, State: op,
	}
	if open != nil {
		spec.Open = func() error {
			op.ctx.task.Current = op.ctx.name // an error or panic in Open names this operator
			return open(&op.ctx)
		}
	}
	return spec
}

type keyedCoOp[K comparable, A, B, O any] struct {
	ctx  KeyedContext[K, O]
	keyA func(A) K
	keyB func(B) K
	p1   func(*KeyedContext[K, O], A) error
	p2   func(*KeyedContext[K, O], B) error
	th   func(*KeyedContext[K, O], int64) error
}

func (o *keyedCoOp[K, A, B, O]) in1(v A, ts int64) {
	c := &o.ctx
	c.task.Current = c.name
	c.rt.key, c.ts = o.keyA(v), ts
	c.call(o.p1(c, v))
}

func (o *keyedCoOp[K, A, B, O]) in2(v B, ts int64) {
	c := &o.ctx
	c.task.Current = c.name
	c.rt.key, c.ts = o.keyB(v), ts
	c.call(o.p2(c, v))
}

func (o *keyedCoOp[K, A, B, O]) onTimer(t timerKey[K], d TimeDomain) {
	if o.th == nil {
		return
	}
	c := &o.ctx
	c.task.Current = c.name
	c.setTimer(t, d)
	c.call(o.th(c, t.ts))
}

func (o *keyedCoOp[K, A, B, O]) Watermark(wm int64) {
	o.ctx.wm = wm
	o.ctx.timers.advance(wm)
	o.ctx.out.Watermark(wm)
}

func (o *keyedCoOp[K, A, B, O]) Finish() { o.ctx.out.Finish() }
