package spate

import (
	"fmt"
	"time"

	"github.com/spate-dev/spate/internal/operator"
)

// Window is a time interval [Start, End) in milliseconds.
type Window = operator.Window

// GlobalWindow is the single window of count windows.
var GlobalWindow = operator.GlobalWindow

// WindowAssigner assigns records to windows. Make one with the functions
// below.
type WindowAssigner struct {
	name      string
	eventTime bool
	size      int64 // tumbling/sliding
	slide     int64
	gap       int64 // session
	count     int64 // count windows
	countStep int64
}

func mustPositive(what string, d time.Duration) int64 {
	ms := d.Milliseconds()
	if ms <= 0 {
		panic(fmt.Sprintf("spate: %s %v must be at least one millisecond", what, d))
	}
	return ms
}

// TumblingEventTimeWindows are fixed-size, non-overlapping windows on event
// time, aligned to the epoch.
func TumblingEventTimeWindows(size time.Duration) WindowAssigner {
	s := mustPositive("window size", size)
	return WindowAssigner{name: "TumblingEventTimeWindows", eventTime: true, size: s, slide: s}
}

// SlidingEventTimeWindows are windows of size starting every slide, on event
// time; a record belongs to size/slide of them.
func SlidingEventTimeWindows(size, slide time.Duration) WindowAssigner {
	return WindowAssigner{name: "SlidingEventTimeWindows", eventTime: true, size: mustPositive("window size", size), slide: mustPositive("window slide", slide)}
}

// EventTimeSessionWindows group records of a key separated by less than gap
// of event time.
func EventTimeSessionWindows(gap time.Duration) WindowAssigner {
	return WindowAssigner{name: "EventTimeSessionWindows", eventTime: true, gap: mustPositive("session gap", gap)}
}

// TumblingProcessingTimeWindows are fixed-size windows on the wall clock.
func TumblingProcessingTimeWindows(size time.Duration) WindowAssigner {
	s := mustPositive("window size", size)
	return WindowAssigner{name: "TumblingProcessingTimeWindows", size: s, slide: s}
}

// SlidingProcessingTimeWindows are sliding windows on the wall clock.
func SlidingProcessingTimeWindows(size, slide time.Duration) WindowAssigner {
	return WindowAssigner{name: "SlidingProcessingTimeWindows", size: mustPositive("window size", size), slide: mustPositive("window slide", slide)}
}

// ProcessingTimeSessionWindows are session windows on the wall clock.
func ProcessingTimeSessionWindows(gap time.Duration) WindowAssigner {
	return WindowAssigner{name: "ProcessingTimeSessionWindows", gap: mustPositive("session gap", gap)}
}

// runtime is the assigner as the window operator runs it.
func (a WindowAssigner) runtime() operator.Assigner {
	return operator.Assigner{Name: a.name, EventTime: a.eventTime, Size: a.size, Slide: a.slide, Gap: a.gap, Count: a.count, CountStep: a.countStep}
}

// WindowedStream is a keyed stream cut into windows, waiting for a window
// function.
type WindowedStream[K comparable, T any] struct {
	ks       KeyedStream[K, T]
	assigner WindowAssigner
	lateness int64
	lateTag  string
}

// Windowed cuts a keyed stream into windows by assigner.
func Windowed[K comparable, T any](ks KeyedStream[K, T], assigner WindowAssigner) WindowedStream[K, T] {
	return WindowedStream[K, T]{ks: ks, assigner: assigner}
}

// CountWindow fires per key every size records, over those records.
func CountWindow[K comparable, T any](ks KeyedStream[K, T], size int64) WindowedStream[K, T] {
	return CountWindowSliding(ks, size, size)
}

// CountWindowSliding fires per key every slide records, over the last size
// records.
func CountWindowSliding[K comparable, T any](ks KeyedStream[K, T], size, slide int64) WindowedStream[K, T] {
	if size <= 0 || slide <= 0 {
		panic(fmt.Sprintf("spate: count window size %d and slide %d must be positive", size, slide))
	}
	return WindowedStream[K, T]{ks: ks, assigner: WindowAssigner{name: "CountWindow", count: size, countStep: slide}}
}

// AllowedLateness keeps event-time windows for d after the watermark passed
// their end: late records within it update and re-fire the window.
func (w WindowedStream[K, T]) AllowedLateness(d time.Duration) WindowedStream[K, T] {
	w.lateness = d.Milliseconds()
	return w
}

// SideOutputLateData sends records that arrive after their windows were
// purged to tag, instead of dropping them. Read them with SideOutput on the
// window function's result.
func (w WindowedStream[K, T]) SideOutputLateData(tag OutputTag[T]) WindowedStream[K, T] {
	w.lateTag = tag.ID
	return w
}

// WindowContext is the context of a process window function: the keyed
// context plus the window and state scoped to it.
//
// Timers registered through it belong to the current key and window and
// reach the function's OnTimer (see WindowTimerHandler); they never fire,
// delete or purge the window itself. A timer still pending when its window
// is purged fires all the same, with that window in Window(); delete it in
// the function's Clear (WindowClearer) if it should not outlive the window.
// A function without OnTimer cannot register timers: doing so fails the
// job, naming the operator.
type WindowContext[K comparable, O any] = operator.WindowContext[K, O]

// ProcessWindowFunction evaluates a window with all its records.
type ProcessWindowFunction[K comparable, T, O any] interface {
	Process(ctx *WindowContext[K, O], key K, records []T) error
}

// ProcessWindowFunc adapts a function to ProcessWindowFunction.
type ProcessWindowFunc[K comparable, T, O any] func(ctx *WindowContext[K, O], key K, records []T) error

// Process calls f.
func (f ProcessWindowFunc[K, T, O]) Process(ctx *WindowContext[K, O], key K, records []T) error {
	return f(ctx, key, records)
}

// WindowTimerHandler is implemented by process window functions that
// register timers: OnTimer receives each of them, with ctx's Window() and
// WindowState() those of the window that was current when the timer was
// registered, and ctx.TimeDomain() telling which kind fired.
type WindowTimerHandler[K comparable, O any] interface {
	OnTimer(ctx *WindowContext[K, O], ts int64) error
}

// WindowClearer is implemented by process window functions that keep
// per-window state, to clear it when the window is purged.
type WindowClearer[K comparable, O any] interface {
	Clear(ctx *WindowContext[K, O]) error
}

// ReduceWindow reduces each window's records with f, incrementally, and
// emits the result when the window fires.
func ReduceWindow[K comparable, T any](w WindowedStream[K, T], f func(acc, v T) T) Stream[T] {
	return windowNode(w, "Reduce", func() (operator.WindowFuncs[K, T, opt[T], T], any) {
		return operator.WindowFuncs[K, T, opt[T], T]{
			NewAcc: func() opt[T] { return opt[T]{} },
			Add: func(a opt[T], v T) opt[T] {
				if a.ok {
					return opt[T]{v: f(a.v, v), ok: true}
				}
				return opt[T]{v: v, ok: true}
			},
			Merge: func(a, b opt[T]) opt[T] {
				if !a.ok {
					return b
				}
				if !b.ok {
					return a
				}
				return opt[T]{v: f(a.v, b.v), ok: true}
			},
			Emit: func(c *WindowContext[K, T], _ K, a opt[T]) error {
				if a.ok {
					c.Collect(a.v)
				}
				return nil
			},
		}, nil
	})
}

type opt[T any] struct {
	v  T
	ok bool
}

// AggregateWindow aggregates each window's records incrementally with agg
// and emits its result when the window fires.
func AggregateWindow[K comparable, T, A, O any](w WindowedStream[K, T], agg AggregateFunction[T, A, O]) Stream[O] {
	return AggregateWindowWith(w, agg, func(_ K, _ Window, r O) O { return r })
}

// AggregateWindowWith is AggregateWindow whose result is passed, with the key
// and window, through f: Flink's aggregate with a window function.
func AggregateWindowWith[K comparable, T, A, R, O any](w WindowedStream[K, T], agg AggregateFunction[T, A, R], f func(key K, w Window, r R) O) Stream[O] {
	return windowNode(w, "Aggregate", func() (operator.WindowFuncs[K, T, A, O], any) {
		return operator.WindowFuncs[K, T, A, O]{
			NewAcc: agg.CreateAccumulator,
			Add:    agg.Add,
			Merge:  agg.Merge,
			Emit: func(c *WindowContext[K, O], key K, a A) error {
				c.Collect(f(key, c.Window(), agg.Result(a)))
				return nil
			},
		}, nil
	})
}

// ProcessWindow evaluates each window with all its records when it fires.
// newFn is called once per subtask.
func ProcessWindow[K comparable, T, O any](w WindowedStream[K, T], newFn func() ProcessWindowFunction[K, T, O]) Stream[O] {
	return windowNode(w, "ProcessWindow", func() (operator.WindowFuncs[K, T, []T, O], any) {
		f := newFn()
		fns := operator.WindowFuncs[K, T, []T, O]{
			NewAcc: func() []T { return nil },
			Add:    func(a []T, v T) []T { return append(a, v) },
			Merge:  func(a, b []T) []T { return append(a, b...) },
			Emit:   func(c *WindowContext[K, O], key K, a []T) error { return f.Process(c, key, a) },
		}
		if cl, ok := f.(WindowClearer[K, O]); ok {
			fns.Clear = cl.Clear
		}
		if th, ok := f.(WindowTimerHandler[K, O]); ok {
			fns.OnTimer = th.OnTimer
		}
		return fns, f
	})
}

func windowNode[K comparable, T, A, O any](w WindowedStream[K, T], kind string, newFns func() (operator.WindowFuncs[K, T, A, O], any)) Stream[O] {
	name := w.assigner.name + "/" + kind
	n := w.ks.s.env.addNode("window", name, operator.TypeOf[O](), func(in *operator.Instance) (*operator.Spec, error) {
		fns, fn := newFns()
		var open func(*KeyedContext[K, O]) error
		if o, ok := fn.(Opener[*KeyedContext[K, O]]); ok {
			open = o.Open
		}
		return operator.NewWindow(in, w.ks.key, w.assigner.runtime(), w.lateness, w.lateTag, fns, open, closeFn(fn)), nil
	})
	connectKeyed(w.ks, n, 0)
	return newStream[O](w.ks.s.env, n)
}
