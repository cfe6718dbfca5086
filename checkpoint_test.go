package spate_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
	"github.com/spate-dev/spate/connector/file"
)

// ev is a record of the checkpointed job: a key, an event time and a value.
type ev struct {
	Key int
	T   int64
	V   int
}

// everyRecord is a punctuated watermark generator: a watermark after each
// record, so that where timers and windows fire among the records is the
// same in every run, restarts included.
type everyRecord struct{}

func (everyRecord) OnEvent(_ ev, ts int64, out spate.WatermarkOutput) { out.EmitWatermark(ts - 1) }
func (everyRecord) OnPeriodicEmit(spate.WatermarkOutput)              {}

// stateful keeps keyed state of every kind and registers event-time
// timers; each timer emits a summary of the key's state.
type stateful struct {
	count *spate.ValueState[int, int]
	last  *spate.ListState[int, int]
	byMod *spate.MapState[int, int, int]
	sum   *spate.ReducingState[int, int]
	avg   *spate.AggregatingState[int, int, [2]int, int]
}

type meanAgg struct{}

func (meanAgg) CreateAccumulator() [2]int  { return [2]int{} }
func (meanAgg) Add(a [2]int, v int) [2]int { return [2]int{a[0] + v, a[1] + 1} }
func (meanAgg) Result(a [2]int) int        { return a[0] / max(a[1], 1) }
func (meanAgg) Merge(a, b [2]int) [2]int   { return [2]int{a[0] + b[0], a[1] + b[1]} }
func (s *stateful) Open(ctx *spate.KeyedContext[int, string]) error {
	st := ctx.State()
	s.count = spate.NewValueState[int](st, "count")
	s.last = spate.NewListState[int](st, "last")
	s.byMod = spate.NewMapState[int, int](st, "byMod")
	s.sum = spate.NewReducingState(st, "sum", func(a, b int) int { return a + b })
	s.avg = spate.NewAggregatingState[int, [2]int, int](st, "avg", meanAgg{})
	return nil
}

func (s *stateful) ProcessElement(ctx *spate.KeyedContext[int, string], e ev) error {
	n, _ := s.count.Value()
	s.count.Update(n + 1)
	s.last.Add(e.V)
	if l := s.last.Get(); len(l) > 3 {
		s.last.Update(l[len(l)-3:])
	}
	m, _ := s.byMod.Get(e.V % 5)
	s.byMod.Put(e.V%5, m+1)
	s.sum.Add(e.V)
	s.avg.Add(e.V)
	if n%7 == 0 {
		ctx.RegisterEventTimeTimer(e.T + 250)
	}
	return nil
}

func (s *stateful) OnTimer(ctx *spate.KeyedContext[int, string], ts int64) error {
	n, _ := s.count.Value()
	sum, _ := s.sum.Get()
	avg, _ := s.avg.Get()
	ctx.Collect(fmt.Sprintf("timer key=%d ts=%d count=%d last=%v mods=%d sum=%d avg=%d", ctx.Key(), ts, n, s.last.Get(), s.byMod.Len(), sum, avg))
	return nil
}

// checkpointedJob declares a job with state of every kind: keyed state and
// event-time timers, tumbling, session and count windows, and a rolling
// reduce; it writes everything to the exactly-once file sink in dir, and
// collects it too.
func checkpointedJob(env *spate.Env, dir string, n int64, inject func(ev) error) *spate.Collected[string] {
	gen := datagen.New(func(i int64) ev {
		k := int(i % 6)
		t := i * 10
		if k == 5 && (i/60)%3 == 0 {
			t += 5 // key 5 has gaps and bursts for its sessions
		}
		return ev{Key: k, T: t, V: int(i*7919) % 1000}
	}, datagen.Count(n), datagen.RatePerSecond(20000))
	src := spate.FromSource(env, "Events", gen, spate.ForGenerator(func() spate.WatermarkGenerator[ev] { return everyRecord{} }).
		WithTimestampAssigner(func(e ev, _ int64) int64 { return e.T })).Parallelism(1)
	src = spate.Map(src, func(e ev) ev {
		if err := inject(e); err != nil {
			panic(err)
		}
		return e
	}).Name("Inject")
	keyed := spate.KeyBy(src, func(e ev) int { return e.Key })
	timers := spate.KeyedProcess(keyed, func() spate.KeyedProcessFunction[int, ev, string] { return &stateful{} })
	tumbling := spate.Map(spate.ReduceWindow(spate.Windowed(keyed, spate.TumblingEventTimeWindows(200*time.Millisecond)),
		func(a, b ev) ev { return ev{Key: a.Key, T: max(a.T, b.T), V: a.V + b.V} }), func(e ev) string { return fmt.Sprintf("tumbling %+v", e) })
	sessions := spate.ProcessWindow(spate.Windowed(spate.KeyBy(spate.Filter(src, func(e ev) bool { return e.Key == 5 && (e.T/600)%2 == 0 }), func(e ev) int { return e.Key }),
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
	out := spate.Union(timers, tumbling, sessions, counts, rolling)
	spate.SinkTo(out, file.Sink[string](dir))
	return spate.Collect(out)
}

// committedLines returns the lines of dir's committed files, sorted.
func committedLines(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	slices.Sort(lines)
	return lines
}

// TestCheckpointedStateSurvivesFailures runs a job with state of every kind
// in the local executor, with checkpoints, and fails it twice: each time
// it restarts from its latest checkpoint, and the committed output is the
// failure-free run's, line for line.
func TestCheckpointedStateSurvivesFailures(t *testing.T) {
	const n = 6000
	conf := map[string]string{
		"execution.checkpointing.interval":      "10ms",
		"restart-strategy.type":                 "fixed-delay",
		"restart-strategy.fixed-delay.delay":    "0s",
		"restart-strategy.fixed-delay.attempts": "5",
		"pipeline.auto-watermark-interval":      "0",
	}
	run := func(dir string, inject func(ev) error) {
		env := spate.NewEnv(spate.WithParallelism(2), spate.WithEncodedExchanges(true), spate.WithConfig(conf))
		col := checkpointedJob(env, dir, n, inject)
		if err := env.Execute("checkpointed"); err != nil {
			t.Fatalf("Execute: %v", err)
		}
		// Collect commits with the checkpoints too.
		got := col.Values()
		slices.Sort(got)
		if want := committedLines(t, dir); !slices.Equal(got, want) {
			extra, missing := diffLines(got, want)
			t.Fatalf("Collect gathered %d records, the file sink committed %d; extra %q, missing %q", len(got), len(want), extra, missing)
		}
	}
	clean := t.TempDir()
	run(clean, func(ev) error { return nil })
	want := committedLines(t, clean)
	kinds := map[string]int{}
	for _, l := range want {
		kinds[strings.Fields(l)[0]]++
	}
	for _, k := range []string{"timer", "tumbling", "session", "count", "rolling"} {
		if kinds[k] == 0 {
			t.Fatalf("the failure-free run has no %s lines: %v", k, kinds)
		}
	}

	dir := t.TempDir()
	var seen atomic.Int64
	var failures atomic.Int32
	run(dir, func(ev) error {
		switch seen.Add(1) {
		case 1500, 4000:
			failures.Add(1)
			return errors.New("injected failure")
		}
		return nil
	})
	if failures.Load() != 2 {
		t.Fatalf("%d failures injected, want 2", failures.Load())
	}
	if got := committedLines(t, dir); !slices.Equal(got, want) {
		extra, missing := diffLines(got, want)
		t.Fatalf("with failures: %d lines, failure-free %d; extra %q, missing %q", len(got), len(want), extra, missing)
	}
}

// diffLines returns (up to 5 of) the lines only in got and only in want,
// both sorted.
func diffLines(got, want []string) (extra, missing []string) {
	i, j := 0, 0
	for i < len(got) || j < len(want) {
		switch {
		case j == len(want) || i < len(got) && got[i] < want[j]:
			extra = append(extra, got[i])
			i++
		case i == len(got) || want[j] < got[i]:
			missing = append(missing, want[j])
			j++
		default:
			i++
			j++
		}
	}
	return extra[:min(5, len(extra))], missing[:min(5, len(missing))]
}
