package spate_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

// clockedSource emits its records one per Read and advances the injected
// processing-time clock by step before each: processing time then passes
// exactly as the test says, on the reading subtask's own goroutine.
type clockedSource struct {
	recs  []event
	clock *atomic.Int64
	step  int64
}

func (c *clockedSource) Open(context.Context, spate.Split) (spate.SourceReader[event], error) {
	return &clockedReader{src: c}, nil
}

type clockedReader struct {
	src *clockedSource
	i   int
}

func (r *clockedReader) Read(_ context.Context, buf []event) (int, error) {
	if r.i >= len(r.src.recs) {
		return 0, io.EOF
	}
	r.src.clock.Add(r.src.step)
	buf[0] = r.src.recs[r.i]
	r.i++
	return 1, nil
}

func (r *clockedReader) Close() error { return nil }

// TestPeriodicWatermarksFollowProcessingTime checks that watermarks are
// emitted every pipeline.auto-watermark-interval of processing time (the
// injected clock), by a source's strategy and by
// AssignTimestampsAndWatermarks alike: neither after every batch read nor
// after every 512 records. The source advances the clock by 100 ms per
// record, so with a 200 ms interval the watermark moves after every second
// record, trailing the records by one.
func TestPeriodicWatermarksFollowProcessingTime(t *testing.T) {
	const n = 9 // far fewer records than a batch
	var in []event
	for i := 1; i <= n; i++ {
		in = append(in, event{Key: "a", Value: i, Ts: int64(10 * i)})
	}
	minWM := fmt.Sprint(int64(math.MinInt64))
	// Record i sees the watermark emitted at the last tick before it:
	// ticks at 200 ms, 400 ms, ... fire after records 2, 4, ..., each
	// giving the highest timestamp so far minus one.
	every200 := []string{minWM, minWM, "19", "19", "39", "39", "59", "59", "79"}
	never := slices.Repeat([]string{minWM}, n)
	for _, tc := range []struct {
		name     string
		assign   bool // AssignTimestampsAndWatermarks rather than the source's strategy
		interval string
		want     []string
	}{
		{"source/200ms", false, "200 ms", every200},
		{"assigner/200ms", true, "200ms", every200},
		{"source/disabled", false, "0", never},
		{"assigner/disabled", true, "0", never},
		{"source/default", false, "", every200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clock atomic.Int64
			clock.Store(1_000_000)
			opts := []spate.Option{spate.WithClock(clock.Load)}
			if tc.interval != "" {
				opts = append(opts, spate.WithConfig(map[string]string{"pipeline.auto-watermark-interval": tc.interval}))
			}
			env := newEnv(1, opts...)
			ws := spate.ForMonotonousTimestamps[event]().WithTimestampAssigner(func(e event, _ int64) int64 { return e.Ts })
			src := &clockedSource{recs: in, clock: &clock, step: 100}
			var s spate.Stream[event]
			if tc.assign {
				s = spate.AssignTimestampsAndWatermarks(spate.FromSource(env, "clocked", spate.Source[event](src), spate.NoWatermarks[event]()), ws)
			} else {
				s = spate.FromSource(env, "clocked", spate.Source[event](src), ws)
			}
			var mu sync.Mutex
			var seen []string
			spate.Collect(spate.Process(s, func() spate.ProcessFunction[event, int] {
				return spate.ProcessFunc[event, int](func(ctx *spate.Context[int], e event) error {
					mu.Lock()
					seen = append(seen, fmt.Sprint(ctx.CurrentWatermark()))
					mu.Unlock()
					return nil
				})
			}))
			execute(t, env)
			if !slices.Equal(seen, tc.want) {
				t.Errorf("watermarks seen by the records:\n got %v\nwant %v", seen, tc.want)
			}
		})
	}
}

func TestAutoWatermarkIntervalOption(t *testing.T) {
	// The option sets the key: at 300 ms the ticks come after records 3
	// and 6.
	var clock atomic.Int64
	env := newEnv(1, spate.WithClock(clock.Load), spate.WithAutoWatermarkInterval(300*time.Millisecond))
	in := []event{{"a", 1, 10}, {"a", 2, 20}, {"a", 3, 30}, {"a", 4, 40}, {"a", 5, 50}, {"a", 6, 60}, {"a", 7, 70}}
	ws := spate.ForMonotonousTimestamps[event]().WithTimestampAssigner(func(e event, _ int64) int64 { return e.Ts })
	s := spate.FromSource(env, "clocked", spate.Source[event](&clockedSource{recs: in, clock: &clock, step: 100}), ws)
	var seen []int64
	spate.Collect(spate.Process(s, func() spate.ProcessFunction[event, int] {
		return spate.ProcessFunc[event, int](func(ctx *spate.Context[int], e event) error {
			seen = append(seen, ctx.CurrentWatermark())
			return nil
		})
	}))
	execute(t, env)
	m := int64(math.MinInt64)
	if want := []int64{m, m, m, 29, 29, 29, 59}; !slices.Equal(seen, want) {
		t.Errorf("watermarks seen: got %v, want %v", seen, want)
	}
}

func TestAutoWatermarkIntervalMalformed(t *testing.T) {
	for _, v := range []string{"fast", "-5 s", "10 parsecs"} {
		env := newEnv(1, spate.WithConfig(map[string]string{"pipeline.auto-watermark-interval": v}))
		spate.Collect(spate.FromSlice(env, []int{1, 2, 3}))
		err := env.Execute("malformed")
		if err == nil {
			t.Fatalf("pipeline.auto-watermark-interval=%q: Execute succeeded, want an error naming the key", v)
		}
		for _, want := range []string{"pipeline.auto-watermark-interval", fmt.Sprintf("%q", v), "10 s"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("pipeline.auto-watermark-interval=%q: error %q does not mention %s", v, err, want)
			}
		}
	}
}
