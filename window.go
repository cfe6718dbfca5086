package spate

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// Window is a time interval [Start, End) in milliseconds.
type Window struct {
	Start, End int64
}

// MaxTimestamp is the last millisecond inside the window; results of the
// window carry it as their timestamp.
func (w Window) MaxTimestamp() int64 {
	if w.End == math.MaxInt64 {
		return w.End
	}
	return w.End - 1
}

func (w Window) String() string { return fmt.Sprintf("[%d, %d)", w.Start, w.End) }

// GlobalWindow is the single window of count windows.
var GlobalWindow = Window{Start: math.MinInt64, End: math.MaxInt64}

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

func (a WindowAssigner) assign(ts int64, dst []Window) []Window {
	dst = dst[:0]
	switch {
	case a.gap > 0:
		return append(dst, Window{Start: ts, End: ts + a.gap})
	case a.size > 0:
		last := ts - mod(ts, a.slide)
		for start := last; start > ts-a.size; start -= a.slide {
			dst = append(dst, Window{Start: start, End: start + a.size})
		}
	}
	return dst
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
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
type WindowContext[K comparable, O any] struct {
	*KeyedContext[K, O]
	window Window
	wstore StateStore[K]
}

// Window returns the window being evaluated.
func (c *WindowContext[K, O]) Window() Window { return c.window }

// WindowState returns the store that makes state handles scoped to the
// current key and window.
func (c *WindowContext[K, O]) WindowState() *StateStore[K] { return &c.wstore }

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
	return windowNode(w, "Reduce", func() winFns[K, T, opt[T], T] {
		return winFns[K, T, opt[T], T]{
			newAcc: func() opt[T] { return opt[T]{} },
			add: func(a opt[T], v T) opt[T] {
				if a.ok {
					return opt[T]{v: f(a.v, v), ok: true}
				}
				return opt[T]{v: v, ok: true}
			},
			merge: func(a, b opt[T]) opt[T] {
				if !a.ok {
					return b
				}
				if !b.ok {
					return a
				}
				return opt[T]{v: f(a.v, b.v), ok: true}
			},
			emit: func(c *WindowContext[K, T], _ K, a opt[T]) error {
				if a.ok {
					c.Collect(a.v)
				}
				return nil
			},
		}
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
	return windowNode(w, "Aggregate", func() winFns[K, T, A, O] {
		return winFns[K, T, A, O]{
			newAcc: agg.CreateAccumulator,
			add:    agg.Add,
			merge:  agg.Merge,
			emit: func(c *WindowContext[K, O], key K, a A) error {
				c.Collect(f(key, c.window, agg.Result(a)))
				return nil
			},
		}
	})
}

// ProcessWindow evaluates each window with all its records when it fires.
// newFn is called once per subtask.
func ProcessWindow[K comparable, T, O any](w WindowedStream[K, T], newFn func() ProcessWindowFunction[K, T, O]) Stream[O] {
	return windowNode(w, "ProcessWindow", func() winFns[K, T, []T, O] {
		f := newFn()
		fns := winFns[K, T, []T, O]{
			newAcc: func() []T { return nil },
			add:    func(a []T, v T) []T { return append(a, v) },
			merge:  func(a, b []T) []T { return append(a, b...) },
			emit:   func(c *WindowContext[K, O], key K, a []T) error { return f.Process(c, key, a) },
			fn:     f,
		}
		if cl, ok := f.(WindowClearer[K, O]); ok {
			fns.clear = cl.Clear
		}
		if th, ok := f.(WindowTimerHandler[K, O]); ok {
			fns.onTimer = th.OnTimer
		}
		return fns
	})
}

// winFns are the parts of a window function the operator needs.
type winFns[K comparable, T, A, O any] struct {
	newAcc func() A
	add    func(A, T) A
	merge  func(A, A) A
	emit   func(c *WindowContext[K, O], key K, a A) error
	clear  func(c *WindowContext[K, O]) error
	// onTimer receives the timers the user's function registered.
	onTimer func(c *WindowContext[K, O], ts int64) error
	fn      any // the user's function object, for Open/Close
}

func windowNode[K comparable, T, A, O any](w WindowedStream[K, T], kind string, newFns func() winFns[K, T, A, O]) Stream[O] {
	name := w.assigner.name + "/" + kind
	n := w.ks.s.env.addNode("window", name, kitOf[O]{}, func(bc *buildCtx) (*opSpec, error) {
		op := &windowOp[K, T, A, O]{key: w.ks.key, as: w.assigner, lateness: w.lateness, fns: newFns(),
			acc: map[scope[K]]A{}, sessions: map[K][]Window{}, counts: map[K]*countState[T]{}}
		op.ctx.init(bc, op.onTimer)
		if op.fns.onTimer == nil {
			op.ctx.noTimers = fmt.Errorf("%s registered a timer, but its window function has no method OnTimer(ctx *spate.WindowContext[K, O], ts int64) error to receive it: implement spate.WindowTimerHandler, or keep the timer out of the window function", bc.name)
		}
		op.wctx = WindowContext[K, O]{KeyedContext: &op.ctx, wstore: StateStore[K]{rt: &op.ctx.rt, windowed: true}}
		if w.lateTag != "" {
			if o, ok := bc.sides[w.lateTag]; ok {
				op.lateOut = o.(exec.Output[T])
			}
		}
		spec := &opSpec{inputs: []any{exec.Output[T](op)}, close: closeFn(op.fns.fn)}
		if o, ok := op.fns.fn.(Opener[*KeyedContext[K, O]]); ok {
			spec.open = func() error { return o.Open(&op.ctx) }
		}
		return spec, nil
	})
	connectKeyed(w.ks, n, 0)
	return newStream[O](w.ks.s.env, n)
}

// windowOp is Flink's WindowOperator with the event-time or processing-time
// trigger (fire at the window's end, purge after the allowed lateness), and
// count windows.
type windowOp[K comparable, T, A, O any] struct {
	ctx      KeyedContext[K, O]
	wctx     WindowContext[K, O]
	key      func(T) K
	as       WindowAssigner
	lateness int64
	lateOut  exec.Output[T]
	fns      winFns[K, T, A, O]
	acc      map[scope[K]]A
	sessions map[K][]Window
	counts   map[K]*countState[T]
	wins     []Window
	// dropped counts late records dropped for want of a late side output.
	dropped int64
}

type countState[T any] struct {
	recs []T
	seen int64
}

func (o *windowOp[K, T, A, O]) cleanupTime(w Window) int64 {
	t := w.MaxTimestamp()
	if o.as.eventTime && o.lateness > 0 {
		if t > math.MaxInt64-o.lateness {
			return math.MaxInt64
		}
		t += o.lateness
	}
	return t
}

func (o *windowOp[K, T, A, O]) isLate(w Window) bool {
	return o.as.eventTime && o.cleanupTime(w) <= o.ctx.wm
}

func (o *windowOp[K, T, A, O]) Collect(v T, ts int64) {
	c := &o.ctx
	c.task.Current = c.name
	key := o.key(v)
	c.rt.key = key
	if o.as.count > 0 {
		o.collectCount(key, v, ts)
		return
	}
	ets := ts
	if o.as.eventTime {
		if ts == exec.NoTimestamp {
			c.task.Fail(fmt.Errorf("%s got a record without an event timestamp: give its source a WatermarkStrategy with a timestamp assigner, or use a processing-time window", o.as.name))
		}
	} else {
		ets = c.task.Now()
	}
	o.wins = o.as.assign(ets, o.wins)
	if o.as.gap > 0 {
		o.wins = o.mergeSession(key, o.wins[0])
	}
	placed := false
	for _, w := range o.wins {
		if o.isLate(w) {
			continue
		}
		placed = true
		sc := scope[K]{key: key, ns: w}
		a, ok := o.acc[sc]
		if !ok {
			a = o.fns.newAcc()
		}
		o.acc[sc] = o.fns.add(a, v)
		if !ok || o.as.gap > 0 {
			// A window's timers are registered with its first record; a
			// merged session window is new, though its contents are not.
			o.registerTimers(key, w)
		}
		if o.as.eventTime && w.MaxTimestamp() <= c.wm {
			// A late record within the allowed lateness re-fires its window.
			o.fire(key, w)
		}
	}
	if !placed {
		if o.lateOut != nil {
			o.lateOut.Collect(v, ts)
		} else {
			o.dropped++
		}
	}
}

func (o *windowOp[K, T, A, O]) registerTimers(key K, w Window) {
	t := timerKey[K]{key: key, ns: w, ts: w.MaxTimestamp(), own: true}
	if !o.as.eventTime {
		o.ctx.timers.registerProc(t)
		return
	}
	if t.ts > o.ctx.wm {
		// Past the watermark the window fires at once (see Collect).
		o.ctx.timers.registerEvent(t)
	}
	if ct := o.cleanupTime(w); ct != t.ts {
		o.ctx.timers.registerEvent(timerKey[K]{key: key, ns: w, ts: ct, own: true})
	}
}

func (o *windowOp[K, T, A, O]) deleteTimers(key K, w Window) {
	t := timerKey[K]{key: key, ns: w, ts: w.MaxTimestamp(), own: true}
	if !o.as.eventTime {
		o.ctx.timers.deleteProc(t)
		return
	}
	o.ctx.timers.deleteEvent(t)
	o.ctx.timers.deleteEvent(timerKey[K]{key: key, ns: w, ts: o.cleanupTime(w), own: true})
}

// mergeSession merges the new session window nw with the key's sessions it
// overlaps and returns the resulting window. A late result changes nothing.
func (o *windowOp[K, T, A, O]) mergeSession(key K, nw Window) []Window {
	list := o.sessions[key]
	merged := nw
	for _, w := range list {
		if w.Start <= merged.End && merged.Start <= w.End {
			merged = Window{Start: min(merged.Start, w.Start), End: max(merged.End, w.End)}
		}
	}
	// A second pass: the grown window may now reach sessions the first pass
	// skipped (they are sorted by start, so this settles it).
	for _, w := range list {
		if w.Start <= merged.End && merged.Start <= w.End {
			merged = Window{Start: min(merged.Start, w.Start), End: max(merged.End, w.End)}
		}
	}
	if o.isLate(merged) {
		return append(o.wins[:0], merged)
	}
	var keep []Window
	var acc A
	has := false
	for _, w := range list {
		if !(w.Start <= merged.End && merged.Start <= w.End) {
			keep = append(keep, w)
			continue
		}
		sc := scope[K]{key: key, ns: w}
		if a, ok := o.acc[sc]; ok {
			if has {
				acc = o.fns.merge(acc, a)
			} else {
				acc, has = a, true
			}
			delete(o.acc, sc)
		}
		o.deleteTimers(key, w)
	}
	if has {
		o.acc[scope[K]{key: key, ns: merged}] = acc
	}
	keep = append(keep, merged)
	sort.Slice(keep, func(i, j int) bool { return keep[i].Start < keep[j].Start })
	o.sessions[key] = keep
	return append(o.wins[:0], merged)
}

func (o *windowOp[K, T, A, O]) fire(key K, w Window) {
	a, ok := o.acc[scope[K]{key: key, ns: w}]
	if !ok {
		return
	}
	c := &o.ctx
	c.rt.key, c.rt.ns = key, w
	c.ts = w.MaxTimestamp()
	o.wctx.window = w
	c.task.Current = c.name
	c.call(o.fns.emit(&o.wctx, key, a))
	c.rt.ns = Window{}
}

func (o *windowOp[K, T, A, O]) purge(key K, w Window) {
	delete(o.acc, scope[K]{key: key, ns: w})
	if o.as.gap > 0 {
		list := o.sessions[key]
		for i, s := range list {
			if s == w {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(o.sessions, key)
		} else {
			o.sessions[key] = list
		}
	}
	if o.fns.clear != nil {
		c := &o.ctx
		c.rt.key, c.rt.ns = key, w
		o.wctx.window = w
		c.call(o.fns.clear(&o.wctx))
		c.rt.ns = Window{}
	}
}

func (o *windowOp[K, T, A, O]) onTimer(t timerKey[K], d TimeDomain) {
	if !t.own {
		o.userTimer(t, d)
		return
	}
	w := t.ns
	if t.ts == w.MaxTimestamp() {
		o.fire(t.key, w)
	}
	if t.ts == o.cleanupTime(w) || d == ProcessingTime {
		o.purge(t.key, w)
	}
}

// userTimer hands a timer the window function registered to its OnTimer.
func (o *windowOp[K, T, A, O]) userTimer(t timerKey[K], d TimeDomain) {
	if o.fns.onTimer == nil {
		return // registering it failed the job
	}
	c := &o.ctx
	c.task.Current = c.name
	c.setTimer(t, d)
	o.wctx.window = t.ns
	c.call(o.fns.onTimer(&o.wctx, t.ts))
	c.rt.ns = Window{}
}

func (o *windowOp[K, T, A, O]) collectCount(key K, v T, ts int64) {
	st := o.counts[key]
	if st == nil {
		st = &countState[T]{}
		o.counts[key] = st
	}
	st.recs = append(st.recs, v)
	if int64(len(st.recs)) > o.as.count {
		st.recs = append(st.recs[:0], st.recs[1:]...)
	}
	st.seen++
	if st.seen%o.as.countStep != 0 {
		return
	}
	a := o.fns.newAcc()
	for _, r := range st.recs {
		a = o.fns.add(a, r)
	}
	c := &o.ctx
	c.rt.ns = GlobalWindow
	o.wctx.window = GlobalWindow
	c.ts = ts
	c.call(o.fns.emit(&o.wctx, key, a))
	c.rt.ns = Window{}
	if o.as.countStep == o.as.count {
		st.recs = st.recs[:0]
	}
}

func (o *windowOp[K, T, A, O]) Watermark(wm int64) {
	o.ctx.wm = wm
	o.ctx.timers.advance(wm)
	o.ctx.out.Watermark(wm)
}

// Finish fires the processing-time windows still open, so a bounded job
// loses no records.
func (o *windowOp[K, T, A, O]) Finish() {
	if !o.as.eventTime && o.as.count == 0 {
		pending := o.ctx.timers.pendingProc(true)
		sort.Slice(pending, func(i, j int) bool { return pending[i].ts < pending[j].ts })
		for _, t := range pending {
			o.ctx.timers.deleteProc(t)
			o.onTimer(t, ProcessingTime)
		}
	}
	o.ctx.out.Finish()
}
