package spate_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

// keyedFunc is a keyed process function made of closures: open declares
// state, process handles records and onTimer (if set) handles timers. Tests
// make a fresh one per subtask in the newFn they give KeyedProcess.
type keyedFunc[T, O any] struct {
	open    func(ctx *spate.KeyedContext[string, O]) error
	process func(ctx *spate.KeyedContext[string, O], v T) error
	onTimer func(ctx *spate.KeyedContext[string, O], ts int64) error
}

func (f *keyedFunc[T, O]) Open(ctx *spate.KeyedContext[string, O]) error {
	if f.open == nil {
		return nil
	}
	return f.open(ctx)
}

func (f *keyedFunc[T, O]) ProcessElement(ctx *spate.KeyedContext[string, O], v T) error {
	return f.process(ctx, v)
}

func (f *keyedFunc[T, O]) OnTimer(ctx *spate.KeyedContext[string, O], ts int64) error {
	if f.onTimer == nil {
		return fmt.Errorf("unexpected timer at %d for key %q", ts, ctx.Key())
	}
	return f.onTimer(ctx, ts)
}

// stIn is an input record of the state tests.
type stIn struct {
	Key string
	V   int
}

// stOut is what a state test function emits after each record: the key
// (from the context) and a rendering of the key's state.
type stOut struct {
	Key string
	Out string
}

// stateInput interleaves the keys; per key the values are
// a: 1 2 -1 3, b: 10 20 -10, c: 7 7, d: 4. A negative value means "remove"
// for the functions that remove.
var stateInput = []stIn{
	{"a", 1}, {"b", 10}, {"a", 2}, {"c", 7}, {"a", -1},
	{"b", 20}, {"a", 3}, {"c", 7}, {"b", -10}, {"d", 4},
}

// avgAgg aggregates ints into "sum/count".
type avgAgg struct{}

type avgAcc struct{ Sum, N int }

func (avgAgg) CreateAccumulator() avgAcc  { return avgAcc{} }
func (avgAgg) Add(a avgAcc, v int) avgAcc { return avgAcc{a.Sum + v, a.N + 1} }
func (avgAgg) Result(a avgAcc) string     { return fmt.Sprintf("%d/%d", a.Sum, a.N) }
func (avgAgg) Merge(a, b avgAcc) avgAcc   { return avgAcc{a.Sum + b.Sum, a.N + b.N} }
func checkKey(ctx interface{ Key() string }, v stIn) error {
	if ctx.Key() != v.Key {
		return fmt.Errorf("ctx.Key() = %q while processing a record of key %q", ctx.Key(), v.Key)
	}
	return nil
}

type stFn = keyedFunc[stIn, stOut]
type stCtx = spate.KeyedContext[string, stOut]

func TestKeyedState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		newFn func() *stFn
		// want is, per key, what the function emits after each of the
		// key's records, in order.
		want map[string][]string
	}{
		{
			name: "ValueState counts per key",
			newFn: func() *stFn {
				var n *spate.ValueState[string, int]
				return &stFn{
					open: func(ctx *stCtx) error {
						n = spate.NewValueState[int](ctx.State(), "count")
						return nil
					},
					process: func(ctx *stCtx, v stIn) error {
						c, _ := n.Value()
						n.Update(c + 1)
						got, ok := n.Value()
						if !ok {
							return errors.New("ValueState unset right after Update")
						}
						ctx.Collect(stOut{ctx.Key(), fmt.Sprint(got)})
						return checkKey(ctx, v)
					},
				}
			},
			want: map[string][]string{
				"a": {"1", "2", "3", "4"}, "b": {"1", "2", "3"}, "c": {"1", "2"}, "d": {"1"},
			},
		},
		{
			name: "ValueState Clear unsets only the current key",
			newFn: func() *stFn {
				var n *spate.ValueState[string, int]
				return &stFn{
					open: func(ctx *stCtx) error {
						n = spate.NewValueState[int](ctx.State(), "sum")
						return nil
					},
					process: func(ctx *stCtx, v stIn) error {
						if v.V < 0 {
							n.Clear()
						} else {
							s, _ := n.Value()
							n.Update(s + v.V)
						}
						s, ok := n.Value()
						out := fmt.Sprint(s)
						if !ok {
							out = "unset"
						}
						ctx.Collect(stOut{ctx.Key(), out})
						return checkKey(ctx, v)
					},
				}
			},
			want: map[string][]string{
				"a": {"1", "3", "unset", "3"}, "b": {"10", "30", "unset"}, "c": {"7", "14"}, "d": {"4"},
			},
		},
		{
			name: "ListState Add, Update and Get per key",
			newFn: func() *stFn {
				var l *spate.ListState[string, int]
				return &stFn{
					open: func(ctx *stCtx) error {
						l = spate.NewListState[int](ctx.State(), "list")
						return nil
					},
					process: func(ctx *stCtx, v stIn) error {
						if v.V < 0 {
							var keep []int
							for _, x := range l.Get() {
								if x != -v.V {
									keep = append(keep, x)
								}
							}
							l.Update(keep)
						} else {
							l.Add(v.V)
						}
						ctx.Collect(stOut{ctx.Key(), fmt.Sprint(l.Get())})
						return checkKey(ctx, v)
					},
				}
			},
			want: map[string][]string{
				"a": {"[1]", "[1 2]", "[2]", "[2 3]"}, "b": {"[10]", "[10 20]", "[20]"}, "c": {"[7]", "[7 7]"}, "d": {"[4]"},
			},
		},
		{
			name: "MapState Put, Get, Remove, All and Len per key",
			newFn: func() *stFn {
				var m *spate.MapState[string, int, int]
				return &stFn{
					open: func(ctx *stCtx) error {
						m = spate.NewMapState[int, int](ctx.State(), "squares")
						return nil
					},
					process: func(ctx *stCtx, v stIn) error {
						if v.V < 0 {
							m.Remove(-v.V)
							if _, ok := m.Get(-v.V); ok {
								return fmt.Errorf("entry %d still there after Remove", -v.V)
							}
						} else {
							m.Put(v.V, v.V*v.V)
							if got, ok := m.Get(v.V); !ok || got != v.V*v.V {
								return fmt.Errorf("Get(%d) = %d, %v after Put(%d, %d)", v.V, got, ok, v.V, v.V*v.V)
							}
						}
						all := map[int]int{}
						for k, x := range m.All() {
							all[k] = x
						}
						if m.Len() != len(all) {
							return fmt.Errorf("Len() = %d but All() yields %d entries", m.Len(), len(all))
						}
						var parts []string
						for _, k := range slices.Sorted(maps.Keys(all)) {
							parts = append(parts, fmt.Sprintf("%d:%d", k, all[k]))
						}
						ctx.Collect(stOut{ctx.Key(), fmt.Sprintf("n=%d [%s]", m.Len(), strings.Join(parts, " "))})
						return checkKey(ctx, v)
					},
				}
			},
			want: map[string][]string{
				"a": {"n=1 [1:1]", "n=2 [1:1 2:4]", "n=1 [2:4]", "n=2 [2:4 3:9]"},
				"b": {"n=1 [10:100]", "n=2 [10:100 20:400]", "n=1 [20:400]"},
				"c": {"n=1 [7:49]", "n=1 [7:49]"}, // the second Put overwrites
				"d": {"n=1 [4:16]"},
			},
		},
		{
			name: "ReducingState sums per key",
			newFn: func() *stFn {
				var r *spate.ReducingState[string, int]
				return &stFn{
					open: func(ctx *stCtx) error {
						r = spate.NewReducingState(ctx.State(), "sum", func(acc, v int) int { return acc + v })
						if _, ok := r.Get(); ok {
							return errors.New("ReducingState set before anything was added")
						}
						return nil
					},
					process: func(ctx *stCtx, v stIn) error {
						r.Add(v.V)
						s, ok := r.Get()
						if !ok {
							return errors.New("ReducingState unset after Add")
						}
						ctx.Collect(stOut{ctx.Key(), fmt.Sprint(s)})
						return checkKey(ctx, v)
					},
				}
			},
			want: map[string][]string{
				"a": {"1", "3", "2", "5"}, "b": {"10", "30", "20"}, "c": {"7", "14"}, "d": {"4"},
			},
		},
		{
			name: "AggregatingState averages per key",
			newFn: func() *stFn {
				var a *spate.AggregatingState[string, int, avgAcc, string]
				seen := map[string]bool{}
				return &stFn{
					open: func(ctx *stCtx) error {
						a = spate.NewAggregatingState(ctx.State(), "avg", spate.AggregateFunction[int, avgAcc, string](avgAgg{}))
						return nil
					},
					process: func(ctx *stCtx, v stIn) error {
						if _, ok := a.Get(); ok != seen[v.Key] {
							return fmt.Errorf("key %q: AggregatingState set = %v before adding %v", v.Key, ok, v)
						}
						seen[v.Key] = true
						a.Add(v.V)
						res, ok := a.Get()
						if !ok {
							return errors.New("AggregatingState unset after Add")
						}
						ctx.Collect(stOut{ctx.Key(), res})
						return checkKey(ctx, v)
					},
				}
			},
			want: map[string][]string{
				"a": {"1/1", "3/2", "2/3", "5/4"}, "b": {"10/1", "30/2", "20/3"}, "c": {"7/1", "14/2"}, "d": {"4/1"},
			},
		},
	} {
		for _, p := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/parallelism=%d", tc.name, p), func(t *testing.T) {
				env := newEnv(p)
				ks := spate.KeyBy(spate.FromSlice(env, stateInput), func(v stIn) string { return v.Key })
				out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, stIn, stOut] { return tc.newFn() })
				got := spate.Collect(out)
				execute(t, env)
				perKey := map[string][]string{}
				for _, o := range got.Values() {
					perKey[o.Key] = append(perKey[o.Key], o.Out)
				}
				if !maps.EqualFunc(perKey, tc.want, slices.Equal) {
					t.Errorf("per key outputs:\n got %v\nwant %v", perKey, tc.want)
				}
			})
		}
	}
}

// TestValueStateManyKeys spreads many keys over several subtasks: every
// key's counter must see exactly its own records, in order.
func TestValueStateManyKeys(t *testing.T) {
	const keys, perKey = 97, 40
	var in []stIn
	for i := 0; i < keys*perKey; i++ {
		in = append(in, stIn{Key: fmt.Sprintf("k%d", i%keys), V: i / keys})
	}
	env := newEnv(3)
	ks := spate.KeyBy(spate.FromSlice(env, in).Parallelism(2), func(v stIn) string { return v.Key })
	out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, stIn, stOut] {
		var n *spate.ValueState[string, int]
		return &stFn{
			open: func(ctx *stCtx) error {
				n = spate.NewValueState[int](ctx.State(), "count")
				return nil
			},
			process: func(ctx *stCtx, v stIn) error {
				c, _ := n.Value()
				n.Update(c + 1)
				ctx.Collect(stOut{ctx.Key(), fmt.Sprintf("%d:%d:%d", c+1, v.V, ctx.Subtask())})
				return nil
			},
		}
	})
	got := spate.Collect(out)
	execute(t, env)
	counts := map[string][]int{}
	subtasks := map[int]bool{}
	for _, o := range got.Values() {
		var n, v, sub int
		if _, err := fmt.Sscanf(o.Out, "%d:%d:%d", &n, &v, &sub); err != nil {
			t.Fatal(err)
		}
		counts[o.Key] = append(counts[o.Key], n)
		subtasks[sub] = true
	}
	if len(counts) != keys {
		t.Fatalf("got outputs for %d keys, want %d", len(counts), keys)
	}
	for k, ns := range counts {
		// Two source subtasks: a key's records may interleave between
		// them, but the counter must still go 1, 2, ..., perKey.
		want := make([]int, perKey)
		for i := range want {
			want[i] = i + 1
		}
		if !slices.Equal(ns, want) {
			t.Errorf("key %s: counts %v, want 1..%d", k, ns, perKey)
		}
	}
	if len(subtasks) < 2 {
		t.Errorf("all %d keys ran on subtasks %v; want them spread over several", keys, subtasks)
	}
}

func TestStateNameDeclaredTwice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		declare func(s *spate.StateStore[string])
		want    []string // in the job error
	}{
		{
			name: "value of another type",
			declare: func(s *spate.StateStore[string]) {
				spate.NewValueState[int](s, "count")
				spate.NewValueState[string](s, "count")
			},
			want: []string{`"count"`, "ValueState[string,int]", "ValueState[string,string]"},
		},
		{
			name: "list under a value's name",
			declare: func(s *spate.StateStore[string]) {
				spate.NewValueState[int](s, "count")
				spate.NewListState[int](s, "count")
			},
			want: []string{`"count"`, "ValueState", "ListState"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(1)
			ks := spate.KeyBy(spate.FromSlice(env, stateInput), func(v stIn) string { return v.Key })
			processed := 0
			out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, stIn, stOut] {
				return &stFn{
					open: func(ctx *stCtx) error {
						tc.declare(ctx.State())
						return nil
					},
					process: func(ctx *stCtx, v stIn) error {
						processed++
						return nil
					},
				}
			}).Name("counter")
			spate.Collect(out)
			err := env.Execute(t.Name())
			if err == nil {
				t.Fatal("Execute succeeded although a state name was declared with two types")
			}
			for _, w := range append(tc.want, `operator "counter"`) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
			if processed != 0 {
				t.Errorf("%d records processed although Open failed", processed)
			}
		})
	}

	t.Run("same type twice is the same state", func(t *testing.T) {
		env := newEnv(1)
		ks := spate.KeyBy(spate.FromSlice(env, stateInput), func(v stIn) string { return v.Key })
		out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, stIn, stOut] {
			var a, b *spate.ValueState[string, int]
			return &stFn{
				open: func(ctx *stCtx) error {
					a = spate.NewValueState[int](ctx.State(), "count")
					b = spate.NewValueState[int](ctx.State(), "count")
					return nil
				},
				process: func(ctx *stCtx, v stIn) error {
					c, _ := a.Value()
					a.Update(c + 1)
					got, _ := b.Value()
					ctx.Collect(stOut{ctx.Key(), fmt.Sprint(got)})
					return nil
				},
			}
		})
		got := spate.Collect(out)
		execute(t, env)
		last := map[string]string{}
		for _, o := range got.Values() {
			last[o.Key] = o.Out
		}
		want := map[string]string{"a": "4", "b": "3", "c": "2", "d": "1"}
		if !maps.Equal(last, want) {
			t.Errorf("second handle of the same name sees %v, want %v", last, want)
		}
	})
}
