package spate

import (
	"github.com/spate-dev/spate/internal/operator"
)

// Context is what a process function sees besides the record: the record's
// timestamp, a way to emit results and side outputs, and the time.
type Context[O any] = operator.Context[O]

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
	n := s.env.addNode("process", "Process", operator.TypeOf[O](), func(in *operator.Instance) (*operator.Spec, error) {
		f := newFn()
		var open func(*Context[O]) error
		if o, ok := f.(Opener[*Context[O]]); ok {
			open = o.Open
		}
		return operator.NewProcess(in, f.ProcessElement, open, closeFn(f)), nil
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

// KeyedContext is the context of a keyed function: Context plus the current
// key, keyed state and timers.
type KeyedContext[K comparable, O any] = operator.KeyedContext[K, O]

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
	n := ks.s.env.addNode("keyedProcess", "KeyedProcess", operator.TypeOf[O](), func(in *operator.Instance) (*operator.Spec, error) {
		f := newFn()
		var onTimer func(*KeyedContext[K, O], int64) error
		if th, ok := f.(TimerHandler[K, O]); ok {
			onTimer = th.OnTimer
		}
		var open func(*KeyedContext[K, O]) error
		if o, ok := f.(Opener[*KeyedContext[K, O]]); ok {
			open = o.Open
		}
		return operator.NewKeyedProcess(in, ks.key, f.ProcessElement, onTimer, open, closeFn(f)), nil
	})
	connectKeyed(ks, n, 0)
	return newStream[O](ks.s.env, n)
}
