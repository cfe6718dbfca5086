package spate

import (
	"github.com/spate-dev/spate/internal/exec"
)

// ConnectedStreams are two streams of possibly different types processed
// together by one co-process function, with shared state.
type ConnectedStreams[A, B any] struct {
	a Stream[A]
	b Stream[B]
}

// Connect pairs two streams for CoProcess.
func Connect[A, B any](a Stream[A], b Stream[B]) ConnectedStreams[A, B] {
	if a.env != b.env {
		panic("spate: Connect of streams from different environments")
	}
	return ConnectedStreams[A, B]{a: a, b: b}
}

// CoProcessFunction processes the records of two connected streams.
type CoProcessFunction[A, B, O any] interface {
	ProcessElement1(ctx *Context[O], v A) error
	ProcessElement2(ctx *Context[O], v B) error
}

// CoProcess applies a co-process function; its watermark is the minimum of
// both inputs'. newFn is called once per subtask.
func CoProcess[A, B, O any](cs ConnectedStreams[A, B], newFn func() CoProcessFunction[A, B, O]) Stream[O] {
	n := cs.a.env.addNode("coProcess", "CoProcess", kitOf[O]{}, func(bc *buildCtx) (*opSpec, error) {
		op := &coProcessOp[A, B, O]{ctx: newContext[O](bc), f: newFn()}
		spec := &opSpec{
			inputs: []any{exec.Output[A](coInput[A]{op.in1}), exec.Output[B](coInput[B]{op.in2})},
			ctl:    op, close: closeFn(op.f),
		}
		if o, ok := op.f.(Opener[*Context[O]]); ok {
			spec.open = func() error {
				op.ctx.task.Current = op.ctx.name // an error or panic in Open names this operator
				return o.Open(&op.ctx)
			}
		}
		return spec, nil
	})
	connect(cs.a, n, 0, nil)
	connect(cs.b, n, 1, nil)
	return newStream[O](cs.a.env, n)
}

// coInput is one input gate of a two-input operator: records go to its
// function; watermarks and the end of input come combined through the
// operator's Control.
type coInput[T any] struct{ f func(T, int64) }

func (c coInput[T]) Collect(v T, ts int64) { c.f(v, ts) }
func (coInput[T]) Watermark(int64)         {}
func (coInput[T]) Finish()                 {}

type coProcessOp[A, B, O any] struct {
	ctx Context[O]
	f   CoProcessFunction[A, B, O]
}

func (o *coProcessOp[A, B, O]) in1(v A, ts int64) {
	o.ctx.task.Current = o.ctx.name
	o.ctx.ts = ts
	o.ctx.call(o.f.ProcessElement1(&o.ctx, v))
}

func (o *coProcessOp[A, B, O]) in2(v B, ts int64) {
	o.ctx.task.Current = o.ctx.name
	o.ctx.ts = ts
	o.ctx.call(o.f.ProcessElement2(&o.ctx, v))
}

func (o *coProcessOp[A, B, O]) Watermark(wm int64) {
	o.ctx.wm = wm
	o.ctx.out.Watermark(wm)
}

func (o *coProcessOp[A, B, O]) Finish() { o.ctx.out.Finish() }

// KeyedCoProcessFunction processes two keyed streams with shared keyed
// state and timers; implement TimerHandler to receive timers.
type KeyedCoProcessFunction[K comparable, A, B, O any] interface {
	ProcessElement1(ctx *KeyedContext[K, O], v A) error
	ProcessElement2(ctx *KeyedContext[K, O], v B) error
}

// KeyedCoProcess connects two streams keyed by the same key type and
// processes them together: records with equal keys meet in the same subtask
// and share state.
func KeyedCoProcess[K comparable, A, B, O any](a KeyedStream[K, A], b KeyedStream[K, B], newFn func() KeyedCoProcessFunction[K, A, B, O]) Stream[O] {
	n := a.s.env.addNode("keyedCoProcess", "KeyedCoProcess", kitOf[O]{}, func(bc *buildCtx) (*opSpec, error) {
		op := &keyedCoOp[K, A, B, O]{keyA: a.key, keyB: b.key, f: newFn()}
		op.th, _ = op.f.(TimerHandler[K, O])
		op.ctx.init(bc, op.onTimer)
		spec := &opSpec{
			inputs: []any{exec.Output[A](coInput[A]{op.in1}), exec.Output[B](coInput[B]{op.in2})},
			ctl:    op, close: closeFn(op.f),
		}
		if o, ok := op.f.(Opener[*KeyedContext[K, O]]); ok {
			spec.open = func() error {
				op.ctx.task.Current = op.ctx.name // an error or panic in Open names this operator
				return o.Open(&op.ctx)
			}
		}
		return spec, nil
	})
	connectKeyed(a, n, 0)
	connectKeyed(b, n, 1)
	return newStream[O](a.s.env, n)
}

type keyedCoOp[K comparable, A, B, O any] struct {
	ctx  KeyedContext[K, O]
	keyA func(A) K
	keyB func(B) K
	f    KeyedCoProcessFunction[K, A, B, O]
	th   TimerHandler[K, O]
}

func (o *keyedCoOp[K, A, B, O]) in1(v A, ts int64) {
	c := &o.ctx
	c.task.Current = c.name
	c.rt.key, c.ts = o.keyA(v), ts
	c.call(o.f.ProcessElement1(c, v))
}

func (o *keyedCoOp[K, A, B, O]) in2(v B, ts int64) {
	c := &o.ctx
	c.task.Current = c.name
	c.rt.key, c.ts = o.keyB(v), ts
	c.call(o.f.ProcessElement2(c, v))
}

func (o *keyedCoOp[K, A, B, O]) onTimer(t timerKey[K], d TimeDomain) {
	if o.th == nil {
		return
	}
	c := &o.ctx
	c.task.Current = c.name
	c.setTimer(t, d)
	c.call(o.th.OnTimer(c, t.ts))
}

func (o *keyedCoOp[K, A, B, O]) Watermark(wm int64) {
	o.ctx.wm = wm
	o.ctx.timers.advance(wm)
	o.ctx.out.Watermark(wm)
}

func (o *keyedCoOp[K, A, B, O]) Finish() { o.ctx.out.Finish() }
