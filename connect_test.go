package spate_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

type order struct {
	ID       int
	Customer string
	Amount   int
}

type customer struct {
	ID   string
	Name string
}

type enriched struct {
	Order int
	Name  string
}

func (e enriched) String() string { return fmt.Sprintf("%d:%s", e.Order, e.Name) }

// gatedSource emits its records one per Read, but only once wait (if set)
// is closed; after its records it stays open until hold (if set) is
// closed. It closes emitted (if set) at the first Read after its last
// record, when everything it emitted has been sent downstream, and done
// (if set) when its reader is closed, after the end of its input was sent.
// It fails after a deadline rather than hang a test.
type gatedSource[T any] struct {
	recs          []T
	wait, hold    <-chan struct{}
	emitted, done chan struct{}
}

func (s *gatedSource[T]) Open(context.Context, spate.Split) (spate.SourceReader[T], error) {
	return &gatedReader[T]{s: s, deadline: time.Now().Add(20 * time.Second)}, nil
}

type gatedReader[T any] struct {
	s        *gatedSource[T]
	i        int
	deadline time.Time
	signaled bool
}

func isClosed(c <-chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (r *gatedReader[T]) Read(_ context.Context, buf []T) (int, error) {
	if time.Now().After(r.deadline) {
		return 0, fmt.Errorf("gated source: still waiting at the deadline (emitted %d of %d)", r.i, len(r.s.recs))
	}
	if !isClosed(r.s.wait) {
		return 0, nil
	}
	if r.i < len(r.s.recs) {
		buf[0] = r.s.recs[r.i]
		r.i++
		return 1, nil
	}
	if !r.signaled && r.s.emitted != nil {
		r.signaled = true
		close(r.s.emitted)
	}
	if !isClosed(r.s.hold) {
		return 0, nil
	}
	return 0, io.EOF
}

func (r *gatedReader[T]) Close() error {
	if r.s.done != nil {
		close(r.s.done)
	}
	return nil
}

// orderCustomerFixture is the input of the join tests. Customer c1 is
// renamed; c9 never appears, so its order is never enriched.
var (
	joinCustomers = []customer{{"c1", "Ann"}, {"c2", "Bob"}, {"c3", "Cy"}, {"c4", "Di"}, {"c1", "Anne"}}
	joinOrders    = []order{{1, "c1", 10}, {2, "c2", 20}, {3, "c9", 30}, {4, "c3", 40}, {5, "c1", 50}, {6, "c2", 60}}
)

// joinFn enriches orders with the customer's latest name held in keyed
// state shared by both inputs; orders of a customer not seen yet wait in
// list state and are emitted with the first name that arrives.
type joinFn struct {
	name    *spate.ValueState[string, string]
	pending *spate.ListState[string, order]
}

type joinCtx = spate.KeyedContext[string, enriched]

func (f *joinFn) Open(ctx *joinCtx) error {
	f.name = spate.NewValueState[string](ctx.State(), "name")
	f.pending = spate.NewListState[order](ctx.State(), "pending")
	return nil
}

func (f *joinFn) ProcessElement1(ctx *joinCtx, o order) error {
	if ctx.Key() != o.Customer {
		return fmt.Errorf("order %d of %s processed under key %s", o.ID, o.Customer, ctx.Key())
	}
	if n, ok := f.name.Value(); ok {
		ctx.Collect(enriched{o.ID, n})
		return nil
	}
	f.pending.Add(o)
	return nil
}

func (f *joinFn) ProcessElement2(ctx *joinCtx, c customer) error {
	if ctx.Key() != c.ID {
		return fmt.Errorf("customer %s processed under key %s", c.ID, ctx.Key())
	}
	f.name.Update(c.Name)
	for _, o := range f.pending.Get() {
		ctx.Collect(enriched{o.ID, c.Name})
	}
	f.pending.Clear()
	return nil
}

func TestKeyedCoProcessJoin(t *testing.T) {
	for _, tc := range []struct {
		name          string
		customersLast bool
		want          []string
	}{
		// All customers (with the rename) are processed before any order:
		// orders see the latest name.
		{"customers first", false, []string{"1:Anne", "2:Bob", "4:Cy", "5:Anne", "6:Bob"}},
		// All orders wait for their customer and leave with its first name.
		{"orders first", true, []string{"1:Ann", "2:Bob", "4:Cy", "5:Ann", "6:Bob"}},
	} {
		for _, p := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/parallelism=%d", tc.name, p), func(t *testing.T) {
				// The second source starts only after the first has closed,
				// i.e. after everything it sent is queued at the join.
				firstDone := make(chan struct{})
				var orders spate.Stream[order]
				var customers spate.Stream[customer]
				env := newEnv(p)
				if tc.customersLast {
					orders = spate.FromSource(env, "orders", spate.Source[order](&gatedSource[order]{recs: joinOrders, done: firstDone}), spate.NoWatermarks[order]()).Parallelism(1)
					customers = spate.FromSource(env, "customers", spate.Source[customer](&gatedSource[customer]{recs: joinCustomers, wait: firstDone}), spate.NoWatermarks[customer]()).Parallelism(1)
				} else {
					customers = spate.FromSource(env, "customers", spate.Source[customer](&gatedSource[customer]{recs: joinCustomers, done: firstDone}), spate.NoWatermarks[customer]()).Parallelism(1)
					orders = spate.FromSource(env, "orders", spate.Source[order](&gatedSource[order]{recs: joinOrders, wait: firstDone}), spate.NoWatermarks[order]()).Parallelism(1)
				}
				joined := spate.KeyedCoProcess(
					spate.KeyBy(orders, func(o order) string { return o.Customer }),
					spate.KeyBy(customers, func(c customer) string { return c.ID }),
					func() spate.KeyedCoProcessFunction[string, order, customer, enriched] { return &joinFn{} },
				)
				got := spate.Collect(joined)
				execute(t, env)
				if got := strs(got.Values()); !slices.Equal(got, tc.want) {
					t.Errorf("joined %q, want %q", got, tc.want)
				}
			})
		}
	}
}

// expiringJoin waits for a customer per order and times the order out at
// the end of event time unless its customer came: timers of a keyed
// co-process function are registered from one input and deleted from the
// other.
type expiringJoin struct {
	due *spate.ValueState[string, int64]
}

func (f *expiringJoin) Open(ctx *joinCtx) error {
	f.due = spate.NewValueState[int64](ctx.State(), "due")
	return nil
}

func (f *expiringJoin) ProcessElement1(ctx *joinCtx, o order) error {
	ts := int64(1000 + o.ID)
	ctx.RegisterEventTimeTimer(ts)
	f.due.Update(ts)
	return nil
}

func (f *expiringJoin) ProcessElement2(ctx *joinCtx, c customer) error {
	if ts, ok := f.due.Value(); ok {
		ctx.DeleteEventTimeTimer(ts)
		f.due.Clear()
		ctx.Collect(enriched{int(ts - 1000), c.Name})
	}
	return nil
}

func (f *expiringJoin) OnTimer(ctx *joinCtx, ts int64) error {
	if ctx.Timestamp() != ts || ctx.TimeDomain() != spate.EventTime {
		return fmt.Errorf("timer %d: timestamp %d, domain %v", ts, ctx.Timestamp(), ctx.TimeDomain())
	}
	ctx.Collect(enriched{int(ts - 1000), "expired " + ctx.Key()})
	return nil
}

func TestKeyedCoProcessTimers(t *testing.T) {
	orders := []order{{1, "c1", 0}, {2, "c2", 0}, {3, "c3", 0}}
	customers := []customer{{"c2", "Bob"}, {"c4", "Di"}}
	for _, p := range []int{1, 3} {
		t.Run(fmt.Sprintf("parallelism=%d", p), func(t *testing.T) {
			env := newEnv(p)
			ordersDone := make(chan struct{})
			o := spate.FromSource(env, "orders", spate.Source[order](&gatedSource[order]{recs: orders, done: ordersDone}), spate.NoWatermarks[order]()).Parallelism(1)
			c := spate.FromSource(env, "customers", spate.Source[customer](&gatedSource[customer]{recs: customers, wait: ordersDone}), spate.NoWatermarks[customer]()).Parallelism(1)
			out := spate.KeyedCoProcess(
				spate.KeyBy(o, func(o order) string { return o.Customer }),
				spate.KeyBy(c, func(c customer) string { return c.ID }),
				func() spate.KeyedCoProcessFunction[string, order, customer, enriched] { return &expiringJoin{} },
			)
			got := spate.Collect(out)
			execute(t, env)
			// The final watermark fires the timers that were not deleted.
			want := []string{"1:expired c1", "2:Bob", "3:expired c3"}
			if got := strs(got.Values()); !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// lookupJoin is a non-keyed co-process function: its own map is the state,
// which works because it runs with parallelism 1.
type lookupJoin struct {
	names   map[string]string
	pending map[string][]order
}

func (f *lookupJoin) ProcessElement1(ctx *spate.Context[enriched], o order) error {
	if n, ok := f.names[o.Customer]; ok {
		ctx.Collect(enriched{o.ID, n})
		return nil
	}
	f.pending[o.Customer] = append(f.pending[o.Customer], o)
	return nil
}

func (f *lookupJoin) ProcessElement2(ctx *spate.Context[enriched], c customer) error {
	f.names[c.ID] = c.Name
	for _, o := range f.pending[c.ID] {
		ctx.Collect(enriched{o.ID, c.Name})
	}
	delete(f.pending, c.ID)
	return nil
}

func TestCoProcessJoin(t *testing.T) {
	env := newEnv(2)
	custDone := make(chan struct{})
	customers := spate.FromSource(env, "customers", spate.Source[customer](&gatedSource[customer]{recs: joinCustomers, done: custDone}), spate.NoWatermarks[customer]()).Parallelism(1)
	orders := spate.FromSource(env, "orders", spate.Source[order](&gatedSource[order]{recs: joinOrders, wait: custDone}), spate.NoWatermarks[order]()).Parallelism(2)
	joined := spate.CoProcess(spate.Connect(orders, customers), func() spate.CoProcessFunction[order, customer, enriched] {
		return &lookupJoin{names: map[string]string{}, pending: map[string][]order{}}
	}).Parallelism(1)
	got := spate.Collect(joined)
	execute(t, env)
	// Each of the two order subtasks emits every order (the gated source
	// does not split), so every enriched order arrives twice.
	want := []string{"1:Anne", "1:Anne", "2:Bob", "2:Bob", "4:Cy", "4:Cy", "5:Anne", "5:Anne", "6:Bob", "6:Bob"}
	if got := strs(got.Values()); !slices.Equal(got, want) {
		t.Errorf("joined %q, want %q", got, want)
	}
}

// wmSeen is what a function saw for one record.
type wmSeen struct {
	src    string
	ts, wm int64
}

func TestWatermarksAreMinCombined(t *testing.T) {
	// Source A runs ahead in event time (ts 100000+) and has sent all its
	// records and watermarks before B starts; A then stays open, so its
	// channel keeps its high watermark while B's records (ts 1000+) flow.
	// The operator's watermark must follow the slower input: no record
	// may look late. A max-combination would put every B record behind
	// the watermark.
	const bound = 50 // ms of out-of-orderness
	var fast, slow []event
	for i := 0; i < 100; i++ {
		fast = append(fast, event{Key: "A", Value: i, Ts: 100_000 + 10*int64(i)})
		slow = append(slow, event{Key: "B", Value: i, Ts: 1000 + 10*int64(i)})
	}
	strategy := punctuated[event](bound).WithTimestampAssigner(func(e event, _ int64) int64 { return e.Ts })
	sources := func(env *spate.Env) (a, b spate.Stream[event]) {
		aSent, bDone := make(chan struct{}), make(chan struct{})
		a = spate.FromSource(env, "A", spate.Source[event](&gatedSource[event]{recs: fast, emitted: aSent, hold: bDone}), strategy).Parallelism(1)
		b = spate.FromSource(env, "B", spate.Source[event](&gatedSource[event]{recs: slow, wait: aSent, done: bDone}), strategy).Parallelism(1)
		return a, b
	}
	check := func(t *testing.T, seen []wmSeen) {
		t.Helper()
		if len(seen) != len(fast)+len(slow) {
			t.Fatalf("saw %d records, want %d", len(seen), len(fast)+len(slow))
		}
		maxB := int64(math.MinInt64)
		late := 0
		for _, s := range seen {
			if s.wm >= s.ts-bound {
				if late++; late <= 5 {
					t.Errorf("record %s@%d saw watermark %d >= its timestamp minus the %dms bound", s.src, s.ts, s.wm, bound)
				}
			}
			if s.src == "B" {
				maxB = max(maxB, s.wm)
			}
		}
		if late > 5 {
			t.Errorf("... %d records in all saw a watermark past them", late)
		}
		// B's own watermark does reach the operator: the check above is
		// not passing merely because the watermark never moved.
		if maxB < 1000 {
			t.Errorf("the highest watermark B's records saw is %d; want B's watermark (>= 1000) to reach the operator", maxB)
		}
	}

	for _, p := range []int{1, 2} {
		t.Run(fmt.Sprintf("union/parallelism=%d", p), func(t *testing.T) {
			env := newEnv(p)
			a, b := sources(env)
			var mu sync.Mutex
			var seen []wmSeen
			out := spate.Process(spate.Union(a, b).Rebalance(), func() spate.ProcessFunction[event, int] {
				return spate.ProcessFunc[event, int](func(ctx *spate.Context[int], e event) error {
					if ctx.Timestamp() != e.Ts {
						return fmt.Errorf("record %v has timestamp %d", e, ctx.Timestamp())
					}
					mu.Lock()
					seen = append(seen, wmSeen{e.Key, ctx.Timestamp(), ctx.CurrentWatermark()})
					mu.Unlock()
					return nil
				})
			})
			spate.Collect(out)
			execute(t, env)
			check(t, seen)
		})
		t.Run(fmt.Sprintf("connect/parallelism=%d", p), func(t *testing.T) {
			env := newEnv(p)
			a, b := sources(env)
			var mu sync.Mutex
			var seen []wmSeen
			record := func(ctx *spate.Context[int], e event) error {
				if ctx.Timestamp() != e.Ts {
					return fmt.Errorf("record %v has timestamp %d", e, ctx.Timestamp())
				}
				mu.Lock()
				seen = append(seen, wmSeen{e.Key, ctx.Timestamp(), ctx.CurrentWatermark()})
				mu.Unlock()
				return nil
			}
			out := spate.CoProcess(spate.Connect(a.Rebalance(), b.Rebalance()), func() spate.CoProcessFunction[event, event, int] {
				return coFuncs[event, event, int]{record, record}
			})
			spate.Collect(out)
			execute(t, env)
			check(t, seen)
		})
	}
	t.Run("keyed connect", func(t *testing.T) {
		env := newEnv(2)
		a, b := sources(env)
		var mu sync.Mutex
		var seen []wmSeen
		record := func(ctx *spate.KeyedContext[string, int], e event) error {
			mu.Lock()
			seen = append(seen, wmSeen{e.Key, ctx.Timestamp(), ctx.CurrentWatermark()})
			mu.Unlock()
			return nil
		}
		out := spate.KeyedCoProcess(spate.KeyBy(a, byKey), spate.KeyBy(b, byKey), func() spate.KeyedCoProcessFunction[string, event, event, int] {
			return keyedCoFuncs[event, event, int]{record, record}
		})
		spate.Collect(out)
		execute(t, env)
		check(t, seen)
	})
}

// coFuncs makes a CoProcessFunction of two functions.
type coFuncs[A, B, O any] struct {
	f1 func(*spate.Context[O], A) error
	f2 func(*spate.Context[O], B) error
}

func (c coFuncs[A, B, O]) ProcessElement1(ctx *spate.Context[O], v A) error { return c.f1(ctx, v) }
func (c coFuncs[A, B, O]) ProcessElement2(ctx *spate.Context[O], v B) error { return c.f2(ctx, v) }

// keyedCoFuncs makes a KeyedCoProcessFunction keyed by string of two
// functions.
type keyedCoFuncs[A, B, O any] struct {
	f1 func(*spate.KeyedContext[string, O], A) error
	f2 func(*spate.KeyedContext[string, O], B) error
}

func (c keyedCoFuncs[A, B, O]) ProcessElement1(ctx *spate.KeyedContext[string, O], v A) error {
	return c.f1(ctx, v)
}
func (c keyedCoFuncs[A, B, O]) ProcessElement2(ctx *spate.KeyedContext[string, O], v B) error {
	return c.f2(ctx, v)
}

var (
	oddTag    = spate.NewOutputTag[string]("odd")
	fivesTag  = spate.NewOutputTag[int]("multiples of five")
	unusedTag = spate.NewOutputTag[int]("nobody reads this")
)

// splitRecord sends even values to the main output, odd ones (as text) to
// oddTag, multiples of five also to fivesTag, and everything to unusedTag.
func splitRecord(ctx spate.SideEmitter, collect func(int), e event) {
	if e.Value%2 == 0 {
		collect(e.Value)
	} else {
		oddTag.Emit(ctx, fmt.Sprint(e.Value))
	}
	if e.Value%5 == 0 {
		fivesTag.Emit(ctx, e.Value)
	}
	unusedTag.Emit(ctx, e.Value)
}

func TestSideOutputs(t *testing.T) {
	var in []event
	for i := 1; i <= 40; i++ {
		in = append(in, event{Key: fmt.Sprint(i % 3), Value: i, Ts: int64(i * 10)})
	}
	for _, tc := range []struct {
		name  string
		apply func(s spate.Stream[event]) spate.Stream[int]
	}{
		{"Process", func(s spate.Stream[event]) spate.Stream[int] {
			return spate.Process(s, func() spate.ProcessFunction[event, int] {
				return spate.ProcessFunc[event, int](func(ctx *spate.Context[int], e event) error {
					splitRecord(ctx, ctx.Collect, e)
					return nil
				})
			})
		}},
		{"KeyedProcess", func(s spate.Stream[event]) spate.Stream[int] {
			return spate.KeyedProcess(spate.KeyBy(s, byKey), func() spate.KeyedProcessFunction[string, event, int] {
				return spate.KeyedProcessFunc[string, event, int](func(ctx *spate.KeyedContext[string, int], e event) error {
					splitRecord(ctx, ctx.Collect, e)
					return nil
				})
			})
		}},
		{"CoProcess", func(s spate.Stream[event]) spate.Stream[int] {
			none := spate.FromSlice(s.Env(), []string{})
			f := func(ctx *spate.Context[int], e event) error {
				splitRecord(ctx, ctx.Collect, e)
				return nil
			}
			return spate.CoProcess(spate.Connect(s, none), func() spate.CoProcessFunction[event, string, int] {
				return coFuncs[event, string, int]{f, func(*spate.Context[int], string) error { return nil }}
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(2)
			main := tc.apply(events(env, in, 0))
			evens := spate.Collect(main)
			// The side outputs go to operators of another parallelism, so
			// they cross an (encoded) exchange; a process function shows
			// the timestamps they carry.
			odd := spate.Collect(spate.Process(spate.SideOutput(main, oddTag).Rebalance(), stampOf).Parallelism(3))
			oddAgain := spate.Collect(spate.SideOutput(main, oddTag))
			fives := spate.Collect(spate.SideOutput(main, fivesTag).Rebalance())
			execute(t, env)
			var wantEvens, wantFives []int
			var wantOdd, wantOddPlain []string
			for i := 1; i <= 40; i++ {
				if i%2 == 0 {
					wantEvens = append(wantEvens, i)
				} else {
					wantOdd = append(wantOdd, fmt.Sprintf("%d ts=%d", i, i*10))
					wantOddPlain = append(wantOddPlain, fmt.Sprint(i))
				}
				if i%5 == 0 {
					wantFives = append(wantFives, i)
				}
			}
			if got := sorted(evens.Values()); !slices.Equal(got, wantEvens) {
				t.Errorf("main output %v, want %v", got, wantEvens)
			}
			if got := sorted(odd.Values()); !slices.Equal(got, sorted(wantOdd)) {
				t.Errorf("side output %q with timestamps: %q, want %q", oddTag.ID, got, sorted(wantOdd))
			}
			if got := sorted(oddAgain.Values()); !slices.Equal(got, sorted(wantOddPlain)) {
				t.Errorf("second consumer of side output %q: %q, want %q", oddTag.ID, got, sorted(wantOddPlain))
			}
			if got := sorted(fives.Values()); !slices.Equal(got, wantFives) {
				t.Errorf("side output %q: %v, want %v", fivesTag.ID, got, wantFives)
			}
		})
	}
}
