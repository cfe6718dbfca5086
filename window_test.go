package spate_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

type winResult struct {
	Key        string
	Start, End int64
	Sum        int
	N          int
}

func (r winResult) String() string {
	return fmt.Sprintf("%s[%d,%d)=%d/%d", r.Key, r.Start, r.End, r.Sum, r.N)
}

// sumAgg sums values and counts records.
type sumAgg struct{}

type sumAcc struct{ Sum, N int }

func (sumAgg) CreateAccumulator() sumAcc    { return sumAcc{} }
func (sumAgg) Add(a sumAcc, e event) sumAcc { return sumAcc{a.Sum + e.Value, a.N + 1} }
func (sumAgg) Result(a sumAcc) sumAcc       { return a }
func (sumAgg) Merge(a, b sumAcc) sumAcc     { return sumAcc{a.Sum + b.Sum, a.N + b.N} }
func toResult(k string, w spate.Window, a sumAcc) winResult {
	return winResult{Key: k, Start: w.Start, End: w.End, Sum: a.Sum, N: a.N}
}

func strs[T fmt.Stringer](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	slices.Sort(out)
	return out
}

func byKey(e event) string { return e.Key }

func TestEventTimeWindows(t *testing.T) {
	// Out of order within the 1s bound; the record at 1500 is late for
	// [0,2000) once the watermark passed 1999 (after ts 3100 arrives).
	in := []event{
		{"a", 1, 100}, {"a", 2, 1900}, {"b", 5, 500}, {"a", 4, 1200}, // out of order, in bound
		{"a", 8, 2500}, {"a", 16, 3100}, {"a", 32, 1500}, // 1500: late (watermark 2099)
		{"b", 64, 5000},
	}
	for _, tc := range []struct {
		name     string
		assigner spate.WindowAssigner
		lateness time.Duration
		want     []string
		wantLate []int
	}{
		{
			name: "tumbling", assigner: spate.TumblingEventTimeWindows(2 * time.Second),
			want:     []string{"a[0,2000)=7/3", "a[2000,4000)=24/2", "b[0,2000)=5/1", "b[4000,6000)=64/1"},
			wantLate: []int{32},
		},
		{
			name: "tumbling with lateness", assigner: spate.TumblingEventTimeWindows(2 * time.Second), lateness: time.Second,
			// The late record re-fires its window with the updated sum.
			want: []string{"a[0,2000)=39/4", "a[0,2000)=7/3", "a[2000,4000)=24/2", "b[0,2000)=5/1", "b[4000,6000)=64/1"},
		},
		{
			name: "sliding", assigner: spate.SlidingEventTimeWindows(2*time.Second, time.Second),
			want: []string{
				"a[-1000,1000)=1/1", "a[0,2000)=7/3", "a[1000,3000)=46/4", "a[2000,4000)=24/2", "a[3000,5000)=16/1",
				"b[-1000,1000)=5/1", "b[0,2000)=5/1", "b[4000,6000)=64/1", "b[5000,7000)=64/1",
			},
			// 1500 is late for [0,2000) but still on time for [1000,3000),
			// so it is not a late record.
		},
		{
			name: "session", assigner: spate.EventTimeSessionWindows(700 * time.Millisecond),
			// a: 100 | 1200,1900,2500,3100 merge into one session; 1500 is late
			// for it? No: the session [1200,3800) is still open at watermark
			// 2099, so 1500 joins it.
			want: []string{"a[100,800)=1/1", "a[1200,3800)=62/5", "b[500,1200)=5/1", "b[5000,5700)=64/1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(2)
			late := spate.NewOutputTag[event]("late")
			w := spate.Windowed(spate.KeyBy(events(env, in, 1000), byKey), tc.assigner).
				AllowedLateness(tc.lateness).SideOutputLateData(late)
			res := spate.AggregateWindowWith(w, spate.AggregateFunction[event, sumAcc, sumAcc](sumAgg{}), toResult)
			got := spate.Collect(res)
			lateGot := spate.Collect(spate.SideOutput(res, late))
			execute(t, env)
			if g := strs(got.Values()); !slices.Equal(g, sorted(tc.want)) {
				t.Errorf("windows:\n got  %v\n want %v", g, sorted(tc.want))
			}
			var lv []int
			for _, e := range lateGot.Values() {
				lv = append(lv, e.Value)
			}
			if !slices.Equal(lv, tc.wantLate) {
				t.Errorf("late records: got %v, want %v", lv, tc.wantLate)
			}
		})
	}
}

func TestWindowFunctions(t *testing.T) {
	in := []event{{"a", 1, 10}, {"a", 2, 20}, {"b", 3, 30}, {"a", 4, 1010}}
	tumbling := spate.TumblingEventTimeWindows(time.Second)
	t.Run("reduce", func(t *testing.T) {
		env := newEnv(2)
		w := spate.Windowed(spate.KeyBy(events(env, in, 0), byKey), tumbling)
		got := spate.Collect(spate.ReduceWindow(w, func(a, b event) event { return event{a.Key, a.Value + b.Value, max(a.Ts, b.Ts)} }))
		execute(t, env)
		var vals []string
		for _, e := range got.Values() {
			vals = append(vals, fmt.Sprintf("%s=%d", e.Key, e.Value))
		}
		if want := []string{"a=3", "a=4", "b=3"}; !slices.Equal(sorted(vals), want) {
			t.Errorf("got %v, want %v", sorted(vals), want)
		}
	})
	t.Run("process with window state", func(t *testing.T) {
		env := newEnv(2)
		w := spate.Windowed(spate.KeyBy(events(env, in, 0), byKey), tumbling)
		got := spate.Collect(spate.ProcessWindow(w, func() spate.ProcessWindowFunction[string, event, string] {
			return spate.ProcessWindowFunc[string, event, string](func(ctx *spate.WindowContext[string, event2], key string, recs []event) error {
				return nil
			})
		}))
		_ = got
		execute(t, env)
	})
}

type event2 = string

func TestCountWindows(t *testing.T) {
	var in []event
	for i := 1; i <= 7; i++ {
		in = append(in, event{"k", i, int64(i)})
	}
	for _, tc := range []struct {
		name        string
		size, slide int64
		want        []int
	}{
		{"tumbling", 3, 3, []int{6, 15}},
		{"sliding", 3, 2, []int{3, 9, 15}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(2)
			w := spate.CountWindowSliding(spate.KeyBy(events(env, in, 0), byKey), tc.size, tc.slide)
			got := spate.Collect(spate.ReduceWindow(w, func(a, b event) event { return event{a.Key, a.Value + b.Value, b.Ts} }))
			execute(t, env)
			var sums []int
			for _, e := range got.Values() {
				sums = append(sums, e.Value)
			}
			if !slices.Equal(sums, tc.want) {
				t.Errorf("got %v, want %v", sums, tc.want)
			}
		})
	}
}

func TestProcessingTimeWindowsWithInjectedClock(t *testing.T) {
	// The clock stands still, so every record falls into one window, which
	// fires when the bounded input ends.
	now := int64(10_500)
	env := newEnv(2, spate.WithClock(func() int64 { return now }))
	in := []event{{"a", 1, 0}, {"a", 2, 0}, {"b", 3, 0}}
	w := spate.Windowed(spate.KeyBy(spate.FromSlice(env, in), byKey), spate.TumblingProcessingTimeWindows(time.Second))
	got := spate.Collect(spate.AggregateWindowWith(w, spate.AggregateFunction[event, sumAcc, sumAcc](sumAgg{}), toResult))
	execute(t, env)
	if g, want := strs(got.Values()), []string{"a[10000,11000)=3/2", "b[10000,11000)=3/1"}; !slices.Equal(g, want) {
		t.Errorf("got %v, want %v", g, want)
	}
}
