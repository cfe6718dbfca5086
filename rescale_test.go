package spate_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
	"github.com/spate-dev/spate/connector/file"
	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/localexec"
)

// The rescale property: a job stopped mid-way at parallelism p1 and
// restored from its latest checkpoint at p2 commits, over both runs,
// exactly what an uninterrupted run commits. Pairs (p1, p2) are drawn from
// 1..16 with a seeded random, plus the extremes; each case runs the job
// twice (the stopped run and the restored one) into one exactly-once file
// sink directory.

// rescaleConf is the local runs' configuration: frequent checkpoints, no
// restart (an injected failure stops the first run for good).
var rescaleConf = map[string]string{
	"execution.checkpointing.interval": "10ms",
	"restart-strategy.type":            "none",
	"pipeline.auto-watermark-interval": "0",
	"pipeline.max-parallelism":         "64",
}

// rescalePairs returns the (p1, p2) cases: the extremes, a few fixed ones,
// and n drawn with seed.
func rescalePairs(seed uint64, n int) [][2]int {
	pairs := [][2]int{{1, 16}, {16, 1}, {2, 4}, {4, 2}}
	r := rand.New(rand.NewPCG(seed, seed))
	for len(pairs) < 4+n {
		p1, p2 := 1+r.IntN(16), 1+r.IntN(16)
		if p1 != p2 {
			pairs = append(pairs, [2]int{p1, p2})
		}
	}
	return pairs
}

// runRescaled runs job at p1 until stopAt records went through the
// injection point after a checkpoint completed, then at p2 from that
// checkpoint, both into dir, and returns the committed lines.
func runRescaled(t *testing.T, dir string, p1, p2 int, stopAt int64, job func(env *spate.Env, dir string, inject func() error)) []string {
	t.Helper()
	return runStages(t, dir, []int{p1, p2}, []int64{stopAt}, job)
}

// runStages runs job at pars[0] until stops[0] records went through the
// injection point after a checkpoint completed, then at pars[1] from that
// checkpoint until stops[1] more did, and so on; the last stage runs to
// the end. Every stage writes into dir; runStages returns the committed
// lines.
func runStages(t *testing.T, dir string, pars []int, stops []int64, job func(env *spate.Env, dir string, inject func() error)) []string {
	t.Helper()
	var meta *checkpoint.Metadata
	for i, p := range pars {
		env := spate.NewEnv(spate.WithParallelism(p), spate.WithEncodedExchanges(true), spate.WithConfig(rescaleConf))
		if i == len(pars)-1 {
			spate.RestoreLocal(env, meta, nil, nil)
			job(env, dir, func() error { return nil })
			if err := env.Execute("rescale"); err != nil {
				t.Fatalf("restore checkpoint %d at parallelism %d: %v", meta.ID, p, err)
			}
			break
		}
		var completed, seen atomic.Int64
		restored := meta
		spate.RestoreLocal(env, restored, func(int64) { completed.Add(1) }, func(st localexec.Stats) { meta = st.Metadata })
		job(env, dir, func() error {
			if seen.Add(1) >= stops[i] && completed.Load() >= 1 {
				return errors.New("injected stop")
			}
			return nil
		})
		err := env.Execute("rescale")
		if err == nil || !strings.Contains(err.Error(), "injected stop") {
			t.Fatalf("the run at parallelism %d was to stop after %d records and a checkpoint: %v (%d records, %d checkpoints)", p, stops[i], err, seen.Load(), completed.Load())
		}
		if meta == nil || meta == restored {
			t.Fatalf("the run at parallelism %d stopped without a completed checkpoint", p)
		}
	}
	return committedLines(t, dir)
}

// keyedStateJob is checkpointedJob with its source side at parallelism 1
// (one source keeps the event-time order, so timers and windows fire at
// the same records at every parallelism) and everything keyed at the
// default parallelism: keyed state of every kind, event-time timers,
// tumbling, session and count windows and a rolling reduce.
func keyedStateJob(n int64, keys, mult int) func(env *spate.Env, dir string, inject func() error) {
	return func(env *spate.Env, dir string, inject func() error) {
		gen := datagen.New(func(i int64) ev {
			k := int(i*int64(mult)) % keys
			t := i * 10
			if k%5 == 0 && (i/60)%3 == 0 {
				t += 5
			}
			return ev{Key: k, T: t, V: int(i*7919) % 1000}
		}, datagen.Count(n), datagen.RatePerSecond(15000))
		src := spate.FromSource(env, "Events", gen, spate.ForGenerator(func() spate.WatermarkGenerator[ev] { return everyRecord{} }).
			WithTimestampAssigner(func(e ev, _ int64) int64 { return e.T })).Parallelism(1)
		src = spate.Map(src, func(e ev) ev {
			if err := inject(); err != nil {
				panic(err)
			}
			return e
		}).Name("Inject").Parallelism(1)
		keyed := spate.KeyBy(src, func(e ev) int { return e.Key })
		timers := spate.KeyedProcess(keyed, func() spate.KeyedProcessFunction[int, ev, string] { return &stateful{} })
		tumbling := spate.Map(spate.ReduceWindow(spate.Windowed(keyed, spate.TumblingEventTimeWindows(200*time.Millisecond)),
			func(a, b ev) ev { return ev{Key: a.Key, T: max(a.T, b.T), V: a.V + b.V} }), func(e ev) string { return fmt.Sprintf("tumbling %+v", e) })
		sessions := spate.ProcessWindow(spate.Windowed(spate.KeyBy(spate.Filter(src, func(e ev) bool { return e.Key%5 == 0 && (e.T/600)%2 == 0 }).Parallelism(1), func(e ev) int { return e.Key }),
			spate.EventTimeSessionWindows(100*time.Millisecond)),
			func() spate.ProcessWindowFunction[int, ev, string] {
				return spate.ProcessWindowFunc[int, ev, string](func(ctx *spate.WindowContext[int, string], key int, recs []ev) error {
					ctx.Collect(fmt.Sprintf("session key=%d %v n=%d", key, ctx.Window(), len(recs)))
					return nil
				})
			})
		counts := spate.Map(spate.ReduceWindow(spate.CountWindow(keyed, 5), func(a, b ev) ev { return ev{Key: a.Key, T: b.T, V: a.V + b.V} }),
			func(e ev) string { return fmt.Sprintf("count %+v", e) })
		rolling := spate.Map(spate.Filter(spate.Reduce(keyed, func(a, b ev) ev { return ev{Key: a.Key, T: b.T, V: a.V + b.V} }), func(e ev) bool { return e.T%100 == 0 }),
			func(e ev) string { return fmt.Sprintf("rolling %+v", e) })
		spate.SinkTo(spate.Union(timers, tumbling, sessions, counts, rolling), file.Sink[string](dir))
	}
}

// TestRescaleKeyedState: keyed state, timers and windows restored at
// another parallelism give the uninterrupted run's output, line for line.
func TestRescaleKeyedState(t *testing.T) {
	const n = 4000
	r := rand.New(rand.NewPCG(1, 2))
	for _, pp := range rescalePairs(14, 4) {
		keys, mult := 1+r.IntN(40), 1+2*r.IntN(50)
		stopAt := int64(500 + r.IntN(n/2))
		t.Run(fmt.Sprintf("%d-to-%d/keys=%d", pp[0], pp[1], keys), func(t *testing.T) {
			job := keyedStateJob(n, keys, mult)
			clean := t.TempDir()
			env := spate.NewEnv(spate.WithParallelism(1+r.IntN(16)), spate.WithEncodedExchanges(true), spate.WithConfig(rescaleConf))
			job(env, clean, func() error { return nil })
			if err := env.Execute("rescale"); err != nil {
				t.Fatal(err)
			}
			want := committedLines(t, clean)
			kinds := map[string]int{}
			for _, l := range want {
				kinds[strings.Fields(l)[0]]++
			}
			for _, k := range []string{"timer", "tumbling", "session", "count", "rolling"} {
				if kinds[k] == 0 {
					t.Fatalf("the uninterrupted run has no %s lines: %v", k, kinds)
				}
			}
			got := runRescaled(t, t.TempDir(), pp[0], pp[1], stopAt, job)
			if !slices.Equal(got, want) {
				extra, missing := diffLines(got, want)
				t.Fatalf("stopped after %d records: %d lines, the uninterrupted run %d; extra %q, missing %q", stopAt, len(got), len(want), extra, missing)
			}
		})
	}
}

// totals keeps per key a count, a sum and the values seen by residue, and
// emits them when its input ends (an event-time timer at the end of time).
type totals struct {
	count *spate.ValueState[int, int]
	sum   *spate.ReducingState[int, int64]
	mods  *spate.MapState[int, int, int]
}

func (s *totals) Open(ctx *spate.KeyedContext[int, string]) error {
	st := ctx.State()
	s.count = spate.NewValueState[int](st, "count")
	s.sum = spate.NewReducingState(st, "sum", func(a, b int64) int64 { return a + b })
	s.mods = spate.NewMapState[int, int](st, "mods")
	return nil
}

func (s *totals) ProcessElement(ctx *spate.KeyedContext[int, string], v int64) error {
	c, _ := s.count.Value()
	if c == 0 {
		ctx.RegisterEventTimeTimer(1 << 50)
	}
	s.count.Update(c + 1)
	s.sum.Add(v)
	m, _ := s.mods.Get(int(v % 7))
	s.mods.Put(int(v%7), m+1)
	return nil
}

func (s *totals) OnTimer(ctx *spate.KeyedContext[int, string], ts int64) error {
	c, _ := s.count.Value()
	sum, _ := s.sum.Get()
	var mods []string
	for r := range 7 {
		if m, ok := s.mods.Get(r); ok {
			mods = append(mods, fmt.Sprintf("%d:%d", r, m))
		}
	}
	ctx.Collect(fmt.Sprintf("key=%d count=%d sum=%d mods=%s", ctx.Key(), c, sum, strings.Join(mods, ",")))
	return nil
}

// splitsJob reads a generator at the default parallelism, so that its
// splits are dealt out among other readers on a rescale, into keyed
// totals emitted at the end.
func splitsJob(n int64, keys, mult int) func(env *spate.Env, dir string, inject func() error) {
	return func(env *spate.Env, dir string, inject func() error) {
		gen := datagen.New(func(i int64) int64 { return i }, datagen.Count(n), datagen.RatePerSecond(20000))
		src := spate.Map(spate.FromSource(env, "Numbers", gen, spate.ForMonotonousTimestamps[int64]().WithTimestampAssigner(func(v int64, _ int64) int64 { return v })),
			func(v int64) int64 {
				if err := inject(); err != nil {
					panic(err)
				}
				return v
			}).Name("Inject")
		out := spate.KeyedProcess(spate.KeyBy(src, func(v int64) int { return int(v*int64(mult)) % keys }),
			func() spate.KeyedProcessFunction[int, int64, string] { return &totals{} })
		spate.SinkTo(out, file.Sink[string](dir))
	}
}

// TestRescaleSourceSplits: a source's splits dealt out among the readers
// of another parallelism (some with none on a scale up) go on from their
// checkpointed positions: every record is counted once.
func TestRescaleSourceSplits(t *testing.T) {
	const n = 6000
	r := rand.New(rand.NewPCG(3, 4))
	for _, pp := range rescalePairs(15, 4) {
		keys, mult := 1+r.IntN(60), 1+2*r.IntN(1000)
		stopAt := int64(500 + r.IntN(n/2))
		t.Run(fmt.Sprintf("%d-to-%d/keys=%d", pp[0], pp[1], keys), func(t *testing.T) {
			got := runRescaled(t, t.TempDir(), pp[0], pp[1], stopAt, splitsJob(n, keys, mult))
			if want := totalsOf(n, keys, mult); !slices.Equal(got, want) {
				extra, missing := diffLines(got, want)
				t.Fatalf("stopped after %d records: %d lines, want %d; extra %q, missing %q", stopAt, len(got), len(want), extra, missing)
			}
		})
	}
}

// TestRescaleTwice: a job rescaled p1 -> p2 -> p3 (its second restore
// reads checkpoints taken after the first, finished readers' final states
// included) still counts every record once.
func TestRescaleTwice(t *testing.T) {
	const n, keys, mult = 6000, 29, 7
	for _, pars := range [][]int{{3, 7, 2}, {8, 1, 5}, {1, 16, 4}} {
		t.Run(fmt.Sprint(pars), func(t *testing.T) {
			got := runStages(t, t.TempDir(), pars, []int64{800, 1500}, splitsJob(n, keys, mult))
			if want := totalsOf(n, keys, mult); !slices.Equal(got, want) {
				extra, missing := diffLines(got, want)
				t.Fatalf("%d lines, want %d; extra %q, missing %q", len(got), len(want), extra, missing)
			}
		})
	}
}

// totalsOf is what splitsJob emits, computed plainly: per key of the
// numbers 0..n-1, their count, sum and counts by residue mod 7, sorted.
func totalsOf(n int64, keys, mult int) []string {
	type tot struct {
		c    int
		sum  int64
		mods [7]int
	}
	byKey := map[int]*tot{}
	for i := range n {
		k := int(i*int64(mult)) % keys
		if byKey[k] == nil {
			byKey[k] = &tot{}
		}
		t := byKey[k]
		t.c++
		t.sum += i
		t.mods[i%7]++
	}
	var out []string
	for k, t := range byKey {
		var ms []string
		for r, m := range t.mods {
			if m > 0 {
				ms = append(ms, fmt.Sprintf("%d:%d", r, m))
			}
		}
		out = append(out, fmt.Sprintf("key=%d count=%d sum=%d mods=%s", k, t.c, t.sum, strings.Join(ms, ",")))
	}
	slices.Sort(out)
	return out
}

// TestRescaleRefused: a checkpoint is not restored with another
// pipeline.max-parallelism (its key groups cannot move), nor at a
// parallelism above it; both errors name the key and the values.
func TestRescaleRefused(t *testing.T) {
	var meta *checkpoint.Metadata
	var completed atomic.Int64
	env := spate.NewEnv(spate.WithParallelism(2), spate.WithConfig(rescaleConf))
	spate.RestoreLocal(env, nil, func(int64) { completed.Add(1) }, func(st localexec.Stats) { meta = st.Metadata })
	var seen atomic.Int64
	splitsJob(6000, 7, 3)(env, t.TempDir(), func() error {
		if seen.Add(1) > 500 && completed.Load() > 0 {
			return errors.New("injected stop")
		}
		return nil
	})
	if err := env.Execute("rescale"); err == nil || meta == nil {
		t.Fatalf("the first run: %v, checkpoint %v; want it stopped after a checkpoint", err, meta)
	}
	for _, tc := range []struct {
		name string
		conf map[string]string
		want []string
	}{
		{"another max parallelism", map[string]string{"pipeline.max-parallelism": "128"},
			[]string{"taken with pipeline.max-parallelism=64", "the job has pipeline.max-parallelism=128", "set pipeline.max-parallelism=64"}},
		{"above the max parallelism", map[string]string{"parallelism.default": "65"},
			[]string{"parallelism 65", "max parallelism 64", "pipeline.max-parallelism"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := spate.NewEnv(spate.WithConfig(rescaleConf), spate.WithConfig(tc.conf))
			spate.RestoreLocal(env, meta, nil, nil)
			splitsJob(6000, 7, 3)(env, t.TempDir(), func() error { return nil })
			err := env.Execute("rescale")
			if err == nil {
				t.Fatal("restored")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
