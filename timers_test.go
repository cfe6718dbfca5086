package spate_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

type evCtx = spate.KeyedContext[string, string]
type evFn = keyedFunc[event, string]

// syncLog is a log that subtasks append to concurrently.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) add(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *syncLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// stampOf is a process function that renders each record with the event
// timestamp it carries.
func stampOf() spate.ProcessFunction[string, string] {
	return spate.ProcessFunc[string, string](func(ctx *spate.Context[string], v string) error {
		ctx.Collect(fmt.Sprintf("%s ts=%d", v, ctx.Timestamp()))
		return nil
	})
}

func TestEventTimeTimersFireInOrderWhenWatermarkPasses(t *testing.T) {
	// One record per Read and no out-of-orderness: after the record at ts
	// the watermark is ts-1, so the timers fire at known points.
	in := []event{{"a", 0, 100}, {"b", 0, 150}, {"a", 0, 350}, {"c", 0, 450}, {"a", 0, 2000}}
	// A timer fires when the watermark reaches it (349 at 349), not
	// before (450 stays pending at 449).
	register := map[int64][]int64{100: {500, 300}, 150: {400, 349}, 450: {450}}
	env := newEnv(1)
	var log syncLog
	ks := spate.KeyBy(events(env, in, 0), byKey)
	fired := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, event, string] {
		return &evFn{
			process: func(ctx *evCtx, e event) error {
				log.add("elem %s@%d", e.Key, ctx.Timestamp())
				for _, ts := range register[e.Ts] {
					ctx.RegisterEventTimeTimer(ts)
				}
				return nil
			},
			onTimer: func(ctx *evCtx, ts int64) error {
				if ctx.TimeDomain() != spate.EventTime {
					return fmt.Errorf("timer %d: domain %v, want EventTime", ts, ctx.TimeDomain())
				}
				if ctx.Timestamp() != ts || !ctx.HasTimestamp() {
					return fmt.Errorf("timer %d: ctx.Timestamp() = %d", ts, ctx.Timestamp())
				}
				log.add("timer %s@%d wm=%d", ctx.Key(), ts, ctx.CurrentWatermark())
				ctx.Collect(fmt.Sprintf("%s@%d", ctx.Key(), ts))
				return nil
			},
		}
	})
	stamped := spate.Collect(spate.Process(fired, stampOf))
	execute(t, env)
	want := []string{
		"elem a@100", "elem b@150",
		"elem a@350", "timer a@300 wm=349", "timer b@349 wm=349",
		"elem c@450", "timer b@400 wm=449",
		"elem a@2000", "timer c@450 wm=1999", "timer a@500 wm=1999",
	}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("order of records and timers:\n got %q\nwant %q", got, want)
	}
	// What a timer emits carries the timer's time as its timestamp.
	if got, want := stamped.Values(), []string{"a@300 ts=300", "b@349 ts=349", "b@400 ts=400", "c@450 ts=450", "a@500 ts=500"}; !slices.Equal(got, want) {
		t.Errorf("timer output: got %q, want %q", got, want)
	}
}

func TestEventTimeTimersInOrderPerKeyParallel(t *testing.T) {
	// Every record registers timers at ts+300 and ts+100; per key they must
	// fire in time order, each once, whichever subtask owns the key.
	var in []event
	for i := 0; i < 300; i++ {
		in = append(in, event{Key: fmt.Sprintf("k%d", i%7), Ts: int64(1000 + 10*i)})
	}
	env := newEnv(3)
	ks := spate.KeyBy(events(env, in, 0), byKey)
	var mu sync.Mutex
	perKey := map[string][]int64{}
	var errs syncLog
	out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, event, string] {
		return &evFn{
			process: func(ctx *evCtx, e event) error {
				ctx.RegisterEventTimeTimer(e.Ts + 300)
				ctx.RegisterEventTimeTimer(e.Ts + 100)
				return nil
			},
			onTimer: func(ctx *evCtx, ts int64) error {
				if ctx.CurrentWatermark() < ts {
					errs.add("timer %d fired at watermark %d", ts, ctx.CurrentWatermark())
				}
				mu.Lock()
				perKey[ctx.Key()] = append(perKey[ctx.Key()], ts)
				mu.Unlock()
				return nil
			},
		}
	})
	spate.Collect(out)
	execute(t, env)
	if e := errs.get(); len(e) > 0 {
		t.Errorf("timers fired before the watermark passed them: %v", e[:min(len(e), 5)])
	}
	for k := 0; k < 7; k++ {
		key := fmt.Sprintf("k%d", k)
		var want []int64
		for i := k; i < 300; i += 7 {
			want = append(want, int64(1000+10*i+100), int64(1000+10*i+300))
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if got := perKey[key]; !slices.Equal(got, want) {
			t.Errorf("key %s: timers fired at %v, want %v", key, got, want)
		}
	}
}

func TestEventTimeTimerDedupAndDelete(t *testing.T) {
	for _, p := range []int{1, 3} {
		t.Run(fmt.Sprintf("parallelism=%d", p), func(t *testing.T) {
			in := []event{{"a", 0, 100}, {"b", 0, 110}, {"a", 0, 120}, {"a", 0, 1000}}
			env := newEnv(p)
			ks := spate.KeyBy(events(env, in, 0), byKey)
			fired := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, event, string] {
				return &evFn{
					process: func(ctx *evCtx, e event) error {
						switch {
						case e.Key == "a" && e.Ts == 100:
							ctx.RegisterEventTimeTimer(300)
							ctx.RegisterEventTimeTimer(300) // same call: once
							ctx.RegisterEventTimeTimer(400)
						case e.Key == "b":
							ctx.RegisterEventTimeTimer(300) // other key: its own timer
						case e.Key == "a" && e.Ts == 120:
							ctx.RegisterEventTimeTimer(300) // later call: still once
							ctx.DeleteEventTimeTimer(400)
							ctx.DeleteEventTimeTimer(999) // never registered: no effect
							ctx.RegisterEventTimeTimer(450)
							ctx.DeleteEventTimeTimer(450)
							ctx.RegisterEventTimeTimer(450) // re-registered after delete: fires once
						}
						return nil
					},
					onTimer: func(ctx *evCtx, ts int64) error {
						ctx.Collect(fmt.Sprintf("%s@%d", ctx.Key(), ts))
						return nil
					},
				}
			})
			got := spate.Collect(fired)
			execute(t, env)
			if got, want := sorted(got.Values()), []string{"a@300", "a@450", "b@300"}; !slices.Equal(got, want) {
				t.Errorf("fired %q, want %q", got, want)
			}
		})
	}
}

func TestEventTimeTimerAtMaxFiresAtEndOfInput(t *testing.T) {
	// FromSlice has no event time; the end of the bounded input still
	// sends the final watermark, which fires every event-time timer, even
	// one at math.MaxInt64, after all records of its key.
	for _, p := range []int{1, 3} {
		t.Run(fmt.Sprintf("parallelism=%d", p), func(t *testing.T) {
			var in []stIn
			for i := 0; i < 60; i++ {
				in = append(in, stIn{Key: fmt.Sprint(i % 4), V: i})
			}
			env := newEnv(p)
			ks := spate.KeyBy(spate.FromSlice(env, in), func(v stIn) string { return v.Key })
			type ksum = keyedFunc[stIn, string]
			out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, stIn, string] {
				var n *spate.ValueState[string, int]
				return &ksum{
					open: func(ctx *spate.KeyedContext[string, string]) error {
						n = spate.NewValueState[int](ctx.State(), "n")
						return nil
					},
					process: func(ctx *spate.KeyedContext[string, string], v stIn) error {
						if ctx.HasTimestamp() {
							return fmt.Errorf("record from FromSlice has timestamp %d", ctx.Timestamp())
						}
						c, _ := n.Value()
						n.Update(c + 1)
						ctx.RegisterEventTimeTimer(math.MaxInt64)
						return nil
					},
					onTimer: func(ctx *spate.KeyedContext[string, string], ts int64) error {
						if ts != math.MaxInt64 || ctx.Timestamp() != math.MaxInt64 {
							return fmt.Errorf("timer ts %d, ctx.Timestamp() %d; want both math.MaxInt64", ts, ctx.Timestamp())
						}
						if wm := ctx.CurrentWatermark(); wm != math.MaxInt64 {
							return fmt.Errorf("end-of-input timer fired at watermark %d", wm)
						}
						c, _ := n.Value()
						ctx.Collect(fmt.Sprintf("%s:%d", ctx.Key(), c))
						return nil
					},
				}
			})
			got := spate.Collect(out)
			execute(t, env)
			if got, want := sorted(got.Values()), []string{"0:15", "1:15", "2:15", "3:15"}; !slices.Equal(got, want) {
				t.Errorf("end-of-input timers: got %q, want one per key after all 15 of its records %q", got, want)
			}
		})
	}
}

// heldSource emits its records, then stays open (reading nothing) until
// release is closed, calling idle on every empty read; then it ends. It
// gives up with an error after limit, so that a timer that never fires
// fails the test instead of hanging it.
type heldSource[T any] struct {
	recs    []T
	release <-chan struct{}
	idle    func()
	limit   time.Duration
}

func (s *heldSource[T]) Open(context.Context, spate.Split) (spate.SourceReader[T], error) {
	return &heldReader[T]{s: s, start: time.Now()}, nil
}

type heldReader[T any] struct {
	s     *heldSource[T]
	i     int
	start time.Time
}

func (r *heldReader[T]) Read(_ context.Context, buf []T) (int, error) {
	if r.i < len(r.s.recs) {
		n := copy(buf, r.s.recs[r.i:])
		r.i += n
		return n, nil
	}
	select {
	case <-r.s.release:
		return 0, io.EOF
	default:
	}
	if time.Since(r.start) > r.s.limit {
		return 0, fmt.Errorf("held source: not released within %v", r.s.limit)
	}
	if r.s.idle != nil {
		r.s.idle()
	}
	return 0, nil
}

func (r *heldReader[T]) Close() error { return nil }

func TestProcessingTimeTimersFireWithWallClock(t *testing.T) {
	keys := []string{"a", "b", "c", "d"}
	release := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	fired := map[string]int{}
	var errs syncLog
	env := newEnv(2)
	src := spate.FromSource(env, "held", spate.Source[string](&heldSource[string]{recs: keys, release: release, limit: 20 * time.Second}), spate.NoWatermarks[string]()).Parallelism(1)
	ks := spate.KeyBy(src, func(k string) string { return k })
	out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, string, string] {
		return &keyedFunc[string, string]{
			process: func(ctx *evCtx, k string) error {
				ctx.RegisterProcessingTimeTimer(ctx.CurrentProcessingTime() + 20)
				return nil
			},
			onTimer: func(ctx *evCtx, ts int64) error {
				if ctx.TimeDomain() != spate.ProcessingTime {
					errs.add("domain %v, want ProcessingTime", ctx.TimeDomain())
				}
				if now := ctx.CurrentProcessingTime(); now < ts {
					errs.add("timer %d fired at processing time %d", ts, now)
				}
				if ctx.HasTimestamp() {
					errs.add("processing-time timer has event timestamp %d", ctx.Timestamp())
				}
				ctx.Collect(ctx.Key())
				mu.Lock()
				fired[ctx.Key()]++
				if len(fired) == len(keys) {
					once.Do(func() { close(release) })
				}
				mu.Unlock()
				return nil
			},
		}
	})
	got := spate.Collect(out)
	if err := env.Execute(t.Name()); err != nil {
		t.Fatalf("Execute: %v (processing-time timers did not fire for every key: %v)", err, fired)
	}
	for _, e := range errs.get() {
		t.Error(e)
	}
	if got := sorted(got.Values()); !slices.Equal(got, keys) {
		t.Errorf("timer outputs %q, want one per key %q", got, keys)
	}
}

func TestProcessingTimeTimersWithInjectedClock(t *testing.T) {
	// The clock advances 5ms each time the source finds nothing to read.
	// Each key registers a timer at now+100 and deletes it, and one at
	// now+200 twice: only the latter fires, once, after the clock passed it.
	var clock atomic.Int64
	clock.Store(1_000_000)
	keys := []string{"a", "b", "c"}
	release := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	fired := map[string][]int64{}
	var errs syncLog
	env := newEnv(3, spate.WithClock(clock.Load))
	src := spate.FromSource(env, "held", spate.Source[string](&heldSource[string]{
		recs: keys, release: release, limit: 20 * time.Second,
		idle: func() { clock.Add(5) },
	}), spate.NoWatermarks[string]()).Parallelism(1)
	ks := spate.KeyBy(src, func(k string) string { return k })
	out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, string, string] {
		var due *spate.ValueState[string, int64]
		return &keyedFunc[string, string]{
			open: func(ctx *evCtx) error {
				due = spate.NewValueState[int64](ctx.State(), "due")
				return nil
			},
			process: func(ctx *evCtx, k string) error {
				now := ctx.CurrentProcessingTime()
				if now < 1_000_000 {
					return fmt.Errorf("CurrentProcessingTime() = %d, not the injected clock", now)
				}
				ctx.RegisterProcessingTimeTimer(now + 100)
				ctx.RegisterProcessingTimeTimer(now + 200)
				ctx.RegisterProcessingTimeTimer(now + 200)
				ctx.DeleteProcessingTimeTimer(now + 100)
				due.Update(now + 200)
				return nil
			},
			onTimer: func(ctx *evCtx, ts int64) error {
				if d, _ := due.Value(); ts != d {
					errs.add("key %s: timer at %d fired, registered %d (the deleted one is at %d)", ctx.Key(), ts, d, d-100)
				}
				if now := ctx.CurrentProcessingTime(); now < ts {
					errs.add("key %s: timer %d fired at clock %d", ctx.Key(), ts, now)
				}
				if ctx.TimeDomain() != spate.ProcessingTime {
					errs.add("domain %v, want ProcessingTime", ctx.TimeDomain())
				}
				mu.Lock()
				fired[ctx.Key()] = append(fired[ctx.Key()], ts)
				if len(fired) == len(keys) {
					once.Do(func() { close(release) })
				}
				mu.Unlock()
				return nil
			},
		}
	})
	spate.Collect(out)
	if err := env.Execute(t.Name()); err != nil {
		t.Fatalf("Execute: %v (timers fired: %v)", err, fired)
	}
	for _, e := range errs.get() {
		t.Error(e)
	}
	for _, k := range keys {
		if len(fired[k]) != 1 {
			t.Errorf("key %s: timers fired at %v, want exactly one", k, fired[k])
		}
	}
}
