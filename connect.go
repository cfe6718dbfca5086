package spate

import (
	"github.com/spate-dev/spate/internal/operator"
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
	n := cs.a.env.addNode("coProcess", "CoProcess", operator.TypeOf[O](), func(in *operator.Instance) (*operator.Spec, error) {
		f := newFn()
		var open func(*Context[O]) error
		if o, ok := f.(Opener[*Context[O]]); ok {
			open = o.Open
		}
		return operator.NewCoProcess(in, f.ProcessElement1, f.ProcessElement2, open, closeFn(f)), nil
	})
	connect(cs.a, n, 0, nil)
	connect(cs.b, n, 1, nil)
	return newStream[O](cs.a.env, n)
}

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
	n := a.s.env.addNode("keyedCoProcess", "KeyedCoProcess", operator.TypeOf[O](), func(in *operator.Instance) (*operator.Spec, error) {
		f := newFn()
		var onTimer func(*KeyedContext[K, O], int64) error
		if th, ok := f.(TimerHandler[K, O]); ok {
			onTimer = th.OnTimer
		}
		var open func(*KeyedContext[K, O]) error
		if o, ok := f.(Opener[*KeyedContext[K, O]]); ok {
			open = o.Open
		}
		return operator.NewKeyedCoProcess(in, a.key, b.key, f.ProcessElement1, f.ProcessElement2, onTimer, open, closeFn(f)), nil
	})
	connectKeyed(a, n, 0)
	connectKeyed(b, n, 1)
	return newStream[O](a.s.env, n)
}
