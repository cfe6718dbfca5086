package operator

import (
	"fmt"
	"math"
	"sort"

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

// Assigner is a window assigner as the window operator runs it: tumbling
// and sliding windows have Size and Slide, session windows Gap, count
// windows Count and CountStep.
type Assigner struct {
	// Name is the assigner's name as plans show it.
	Name      string
	EventTime bool
	Size      int64 // tumbling/sliding, ms
	Slide     int64
	Gap       int64 // session, ms
	Count     int64 // count windows
	CountStep int64
}

func (a Assigner) assign(ts int64, dst []Window) []Window {
	dst = dst[:0]
	switch {
	case a.Gap > 0:
		return append(dst, Window{Start: ts, End: ts + a.Gap})
	case a.Size > 0:
		last := ts - mod(ts, a.Slide)
		for start := last; start > ts-a.Size; start -= a.Slide {
			dst = append(dst, Window{Start: start, End: start + a.Size})
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

// WindowFuncs are the parts of a window function the operator needs.
type WindowFuncs[K comparable, T, A, O any] struct {
	NewAcc func() A
	Add    func(A, T) A
	Merge  func(A, A) A
	Emit   func(c *WindowContext[K, O], key K, a A) error
	// Clear, if set, clears the function's per-window state when a
	// window is purged.
	Clear func(c *WindowContext[K, O]) error
	// OnTimer receives the timers the user's function registered; without
	// it registering one fails the job.
	OnTimer func(c *WindowContext[K, O], ts int64) error
}

// NewWindow makes a window operator instance: records keyed by key, cut
// into windows by as, kept lateness ms past the watermark (event time),
// with late records sent to the side output lateTag if it is consumed.
// open, if not nil, is the window function's Open; close its Close.
func NewWindow[K comparable, T, A, O any](in *Instance, key func(T) K, as Assigner, lateness int64, lateTag string, fns WindowFuncs[K, T, A, O], open func(*KeyedContext[K, O]) error, close func() error) *Spec {
	op := &windowOp[K, T, A, O]{key: key, as: as, lateness: lateness, fns: fns,
		acc: makeCOWMap[scope[K], A](), sessions: map[K][]Window{}, counts: map[K]*countState[T]{}}
	op.ctx.init(in, op.onTimer)
	if op.fns.OnTimer == nil {
		op.ctx.noTimers = fmt.Errorf("%s registered a timer, but its window function has no method OnTimer(ctx *spate.WindowContext[K, O], ts int64) error to receive it: implement spate.WindowTimerHandler, or keep the timer out of the window function", in.Name)
	}
	op.wctx = WindowContext[K, O]{KeyedContext: &op.ctx, wstore: StateStore[K]{rt: &op.ctx.rt, windowed: true}}
	if lateTag != "" {
		if o, ok := in.Sides[lateTag]; ok {
			op.lateOut = o.(exec.Output[T])
		}
	}
	spec := &Spec{Inputs: []any{exec.Output[T](op)}, Close: close, State: op}
	if open != nil {
		spec.Open = func() error { return open(&op.ctx) }
	}
	return spec
}

// windowOp is Flink's WindowOperator with the event-time or processing-time
// trigger (fire at the window's end, purge after the allowed lateness), and
// count windows.
type windowOp[K comparable, T, A, O any] struct {
	ctx      KeyedContext[K, O]
	wctx     WindowContext[K, O]
	key      func(T) K
	as       Assigner
	lateness int64
	lateOut  exec.Output[T]
	fns      WindowFuncs[K, T, A, O]
	acc      cowMap[scope[K], A]
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
	if o.as.EventTime && o.lateness > 0 {
		if t > math.MaxInt64-o.lateness {
			return math.MaxInt64
		}
		t += o.lateness
	}
	return t
}

func (o *windowOp[K, T, A, O]) isLate(w Window) bool {
	return o.as.EventTime && o.cleanupTime(w) <= o.ctx.wm
}

func (o *windowOp[K, T, A, O]) Collect(v T, ts int64) {
	c := &o.ctx
	c.task.Current = c.name
	key := o.key(v)
	c.rt.key = key
	if o.as.Count > 0 {
		o.collectCount(key, v, ts)
		return
	}
	ets := ts
	if o.as.EventTime {
		if ts == exec.NoTimestamp {
			c.task.Fail(fmt.Errorf("%s got a record without an event timestamp: give its source a WatermarkStrategy with a timestamp assigner, or use a processing-time window", o.as.Name))
		}
	} else {
		ets = c.task.Now()
	}
	o.wins = o.as.assign(ets, o.wins)
	if o.as.Gap > 0 {
		o.wins = o.mergeSession(key, o.wins[0])
	}
	placed := false
	for _, w := range o.wins {
		if o.isLate(w) {
			continue
		}
		placed = true
		sc := scope[K]{key: key, ns: w}
		a, ok := o.acc.get(sc)
		if !ok {
			a = o.fns.NewAcc()
		}
		o.acc.set(sc, o.fns.Add(a, v))
		if !ok || o.as.Gap > 0 {
			// A window's timers are registered with its first record; a
			// merged session window is new, though its contents are not.
			o.registerTimers(key, w)
		}
		if o.as.EventTime && w.MaxTimestamp() <= c.wm {
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
	if !o.as.EventTime {
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
	if !o.as.EventTime {
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
		if a, ok := o.acc.get(sc); ok {
			if has {
				acc = o.fns.Merge(acc, a)
			} else {
				acc, has = a, true
			}
			o.acc.remove(sc)
		}
		o.deleteTimers(key, w)
	}
	if has {
		o.acc.set(scope[K]{key: key, ns: merged}, acc)
	}
	keep = append(keep, merged)
	sort.Slice(keep, func(i, j int) bool { return keep[i].Start < keep[j].Start })
	o.sessions[key] = keep
	return append(o.wins[:0], merged)
}

func (o *windowOp[K, T, A, O]) fire(key K, w Window) {
	a, ok := o.acc.get(scope[K]{key: key, ns: w})
	if !ok {
		return
	}
	c := &o.ctx
	c.rt.key, c.rt.ns = key, w
	c.ts = w.MaxTimestamp()
	o.wctx.window = w
	c.task.Current = c.name
	c.call(o.fns.Emit(&o.wctx, key, a))
	c.rt.ns = Window{}
}

func (o *windowOp[K, T, A, O]) purge(key K, w Window) {
	o.acc.remove(scope[K]{key: key, ns: w})
	if o.as.Gap > 0 {
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
	if o.fns.Clear != nil {
		c := &o.ctx
		c.rt.key, c.rt.ns = key, w
		o.wctx.window = w
		c.call(o.fns.Clear(&o.wctx))
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
	if o.fns.OnTimer == nil {
		return // registering it failed the job
	}
	c := &o.ctx
	c.task.Current = c.name
	c.setTimer(t, d)
	o.wctx.window = t.ns
	c.call(o.fns.OnTimer(&o.wctx, t.ts))
	c.rt.ns = Window{}
}

func (o *windowOp[K, T, A, O]) collectCount(key K, v T, ts int64) {
	st := o.counts[key]
	if st == nil {
		st = &countState[T]{}
		o.counts[key] = st
	}
	st.recs = append(st.recs, v)
	if int64(len(st.recs)) > o.as.Count {
		st.recs = append(st.recs[:0], st.recs[1:]...)
	}
	st.seen++
	if st.seen%o.as.CountStep != 0 {
		return
	}
	a := o.fns.NewAcc()
	for _, r := range st.recs {
		a = o.fns.Add(a, r)
	}
	c := &o.ctx
	c.rt.ns = GlobalWindow
	o.wctx.window = GlobalWindow
	c.ts = ts
	c.call(o.fns.Emit(&o.wctx, key, a))
	c.rt.ns = Window{}
	if o.as.CountStep == o.as.Count {
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
	if !o.as.EventTime && o.as.Count == 0 {
		pending := o.ctx.timers.pendingProc(true)
		sort.Slice(pending, func(i, j int) bool { return pending[i].ts < pending[j].ts })
		for _, t := range pending {
			o.ctx.timers.deleteProc(t)
			o.onTimer(t, ProcessingTime)
		}
	}
	o.ctx.out.Finish()
}
