package spate_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

func msDur(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

func TestStatelessChain(t *testing.T) {
	for _, p := range []int{1, 4} {
		t.Run(fmt.Sprintf("parallelism=%d", p), func(t *testing.T) {
			env := newEnv(p)
			nums := make([]int, 1000)
			for i := range nums {
				nums[i] = i
			}
			src := spate.FromSlice(env, nums).Parallelism(2)
			doubled := spate.Map(src, func(v int) int { return v * 2 })
			even := spate.Filter(doubled, func(v int) bool { return v%4 == 0 })
			words := spate.FlatMap(even, func(v int, emit func(string)) {
				emit(fmt.Sprint(v))
				emit("x")
			})
			got := spate.Collect(words)
			execute(t, env)
			var want []string
			for i := 0; i < 1000; i++ {
				if (2*i)%4 == 0 {
					want = append(want, fmt.Sprint(2*i), "x")
				}
			}
			if !slices.Equal(sorted(got.Values()), sorted(want)) {
				t.Fatalf("got %d records, want %d", len(got.Values()), len(want))
			}
		})
	}
}

type count struct {
	Word string
	N    int
}

func TestRollingAggregates(t *testing.T) {
	in := []count{{"a", 3}, {"b", 1}, {"a", 1}, {"b", 7}, {"a", 5}, {"c", 2}}
	last := func(xs []count) map[string]count {
		m := map[string]count{}
		for _, x := range xs {
			m[x.Word] = x
		}
		return m
	}
	key := func(c count) string { return c.Word }
	n := func(c *count) *int { return &c.N }
	for _, tc := range []struct {
		name string
		op   func(spate.KeyedStream[string, count]) spate.Stream[count]
		want map[string]int
	}{
		{"sum", func(k spate.KeyedStream[string, count]) spate.Stream[count] { return spate.Sum(k, n) }, map[string]int{"a": 9, "b": 8, "c": 2}},
		{"min", func(k spate.KeyedStream[string, count]) spate.Stream[count] { return spate.Min(k, n) }, map[string]int{"a": 1, "b": 1, "c": 2}},
		{"max", func(k spate.KeyedStream[string, count]) spate.Stream[count] { return spate.Max(k, n) }, map[string]int{"a": 5, "b": 7, "c": 2}},
		{"minBy", func(k spate.KeyedStream[string, count]) spate.Stream[count] {
			return spate.MinBy(k, func(c count) int { return c.N })
		}, map[string]int{"a": 1, "b": 1, "c": 2}},
		{"maxBy", func(k spate.KeyedStream[string, count]) spate.Stream[count] {
			return spate.MaxBy(k, func(c count) int { return c.N })
		}, map[string]int{"a": 5, "b": 7, "c": 2}},
		{"reduce", func(k spate.KeyedStream[string, count]) spate.Stream[count] {
			return spate.Reduce(k, func(a, b count) count { return count{a.Word, a.N*10 + b.N} })
		}, map[string]int{"a": 315, "b": 17, "c": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(3)
			got := spate.Collect(tc.op(spate.KeyBy(spate.FromSlice(env, in), key)))
			execute(t, env)
			vals := got.Values()
			if len(vals) != len(in) {
				t.Fatalf("rolling aggregate emitted %d records, want one per input (%d)", len(vals), len(in))
			}
			// Per key the emissions arrive in order; the last is the final value.
			final := last(vals)
			for k, want := range tc.want {
				if final[k].N != want {
					t.Errorf("key %s: final %d, want %d", k, final[k].N, want)
				}
			}
		})
	}
}

func TestUnionRebalanceBroadcast(t *testing.T) {
	env := newEnv(3)
	a := spate.FromSlice(env, []int{1, 2, 3})
	b := spate.FromSlice(env, []int{10, 20})
	u := spate.Union(a, b)
	reb := spate.Map(u.Rebalance(), func(v int) int { return v + 1 })
	all := spate.Collect(reb)
	bc := spate.Map(spate.FromSlice(env, []int{7}).Broadcast(), func(v int) int { return v })
	bcast := spate.Collect(bc)
	execute(t, env)
	if got, want := sorted(all.Values()), []int{2, 3, 4, 11, 21}; !slices.Equal(got, want) {
		t.Errorf("union: got %v, want %v", got, want)
	}
	if got := bcast.Values(); !slices.Equal(got, []int{7, 7, 7}) {
		t.Errorf("broadcast to 3 subtasks: got %v, want [7 7 7]", got)
	}
}

func TestWordCountPerKeyOrderKept(t *testing.T) {
	// Records of one key keep their order through a hash exchange.
	env := newEnv(4)
	var in []count
	for i := 0; i < 5000; i++ {
		in = append(in, count{Word: fmt.Sprint(i % 7), N: i})
	}
	src := spate.FromSlice(env, in)
	got := spate.Collect(spate.Map(spate.KeyBy(src, func(c count) string { return c.Word }).Stream(), func(c count) count { return c }))
	ks := spate.KeyBy(src, func(c count) string { return c.Word })
	seq := spate.Collect(spate.Reduce(ks, func(a, b count) count {
		if b.N < a.N {
			panic("out of order")
		}
		return b
	}))
	execute(t, env)
	if len(got.Values()) != 5000 || len(seq.Values()) != 5000 {
		t.Fatalf("lost records: %d %d", len(got.Values()), len(seq.Values()))
	}
}

func TestPlanIsDeterministicAndChains(t *testing.T) {
	build := func(p int, name string) string {
		env := newEnv(2)
		s := spate.Map(spate.FromSlice(env, []int{1}).Parallelism(2), func(v int) int { return v }).Name(name)
		k := spate.KeyBy(s, func(v int) int { return v })
		spate.SinkTo(spate.Sum(k, func(v *int) *int { return v }), spate.Print[int]()).Parallelism(p)
		plan, err := env.Plan("job")
		if err != nil {
			t.Fatal(err)
		}
		return string(plan)
	}
	a, b := build(2, "m"), build(2, "m")
	if a != b {
		t.Fatal("the same program gave two different plans")
	}
	fp := func(plan string) string {
		i := strings.Index(plan, `"fingerprint": "`)
		return plan[i+16 : i+16+64]
	}
	if fp(build(3, "m")) == fp(a) {
		t.Error("fingerprint unchanged after a parallelism change")
	}
	if fp(build(2, "other")) == fp(a) {
		t.Error("fingerprint unchanged after an operator rename")
	}
	if !strings.Contains(a, `"name": "Slice -\u003e m"`) && !strings.Contains(a, `"name": "Slice -> m"`) {
		t.Errorf("source and map with equal parallelism not chained:\n%s", a)
	}
}
