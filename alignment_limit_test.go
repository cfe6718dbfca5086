package spate_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
)

// logRecorder is a slog.Handler that keeps the messages and attributes of
// every record, Debug included.
type logRecorder struct {
	mu    *sync.Mutex
	lines *[]string
}

func (h logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.mu.Lock()
	*h.lines = append(*h.lines, b.String())
	h.mu.Unlock()
	return nil
}
func (h logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logRecorder) WithGroup(string) slog.Handler      { return h }

// TestAlignmentLimitJob: a fast source and a slow one, whose barriers come
// only between its rare records, feed one keyed reduce with EXACTLY_ONCE
// checkpoints and task.checkpoint.alignment.max-size of 1 KiB: the reduce
// gives up the checkpoints whose alignment would hold more (alignment-failed,
// tolerated here) instead of holding what the fast source sends, and the
// job's results are exact.
func TestAlignmentLimitJob(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	prev := slog.Default()
	slog.SetDefault(slog.New(logRecorder{mu: &mu, lines: &lines}))
	defer slog.SetDefault(prev)

	const fastN, slowN = 100_000, 20
	env := spate.NewEnv(spate.WithParallelism(1), spate.WithConfig(map[string]string{
		"execution.checkpointing.interval":                     "20ms",
		"execution.checkpointing.tolerable-failed-checkpoints": "100000",
		"task.checkpoint.alignment.max-size":                   "1 kb",
	}))
	fast := spate.FromSource(env, "Fast", datagen.New(func(i int64) kv { return kv{Key: i % 10, Value: 1} }, datagen.Count(fastN), datagen.RatePerSecond(100_000)), spate.NoWatermarks[kv]())
	slow := spate.FromSource(env, "Slow", datagen.New(func(i int64) kv { return kv{Key: i % 10, Value: 1000} }, datagen.Count(slowN), datagen.RatePerSecond(20)), spate.NoWatermarks[kv]())
	sums := spate.Reduce(spate.KeyBy(spate.Union(fast, slow), func(v kv) int64 { return v.Key }), func(a, v kv) kv { a.Value += v.Value; return a })
	col := spate.Collect(sums)
	if err := env.Execute("alignment-limit"); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	got := col.Values()
	final := map[int64]int64{}
	for _, v := range got {
		final[v.Key] = max(final[v.Key], v.Value)
	}
	if len(got) != fastN+slowN {
		t.Fatalf("%d results, want one per record, %d", len(got), fastN+slowN)
	}
	for k := range int64(10) {
		if want := int64(fastN/10 + slowN/10*1000); final[k] != want {
			t.Fatalf("key %d: final sum %d, want %d", k, final[k], want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	gaveUp := 0
	for _, l := range lines {
		if strings.Contains(l, "alignment-failed") {
			gaveUp++
		}
	}
	if gaveUp == 0 {
		t.Fatalf("no checkpoint was given up for its alignment: the limit was never reached, the test proves nothing; log:\n%s", strings.Join(lines, "\n"))
	}
	t.Logf("%d checkpoints given up for their alignment", gaveUp)
}
