package spate_test

import (
	"cmp"
	"context"
	"io"
	"math"
	"slices"
	"testing"

	"github.com/spate-dev/spate"
)

// newEnv returns an environment as the test suite runs them: every
// exchange between subtasks goes through the records' codecs, so a type
// that could not cross a process boundary fails here.
func newEnv(p int, opts ...spate.Option) *spate.Env {
	return spate.NewEnv(append([]spate.Option{spate.WithParallelism(p), spate.WithEncodedExchanges(true)}, opts...)...)
}

func sorted[T cmp.Ordered](xs []T) []T {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs
}

func execute(t *testing.T, env *spate.Env) {
	t.Helper()
	if err := env.Execute(t.Name()); err != nil {
		t.Fatalf("Execute: %v", err)
	}
}

// event is a record with an event time in milliseconds.
type event struct {
	Key   string
	Value int
	Ts    int64
}

// events makes a bounded source of evs whose timestamps are their Ts, with
// the given out-of-orderness. Its watermark follows every record (see
// punctuated), so tests know exactly what is late.
func events(env *spate.Env, evs []event, delayMs int64) spate.Stream[event] {
	ws := punctuated[event](delayMs).WithTimestampAssigner(func(e event, _ int64) int64 { return e.Ts })
	return spate.FromSource(env, "events", spate.Source[event](ordered(evs)), ws).Parallelism(1)
}

// punctuated is the strategy of bounded out-of-orderness whose generator
// emits its watermark after every record rather than periodically in
// processing time: the watermark then moves between records exactly as
// their order says, whatever the speed of the machine.
func punctuated[T any](delayMs int64) spate.WatermarkStrategy[T] {
	return spate.ForGenerator(func() spate.WatermarkGenerator[T] {
		return &punctuatedGen[T]{delay: delayMs, max: math.MinInt64 + delayMs + 1}
	})
}

type punctuatedGen[T any] struct{ delay, max int64 }

func (g *punctuatedGen[T]) OnEvent(_ T, ts int64, out spate.WatermarkOutput) {
	if ts > g.max {
		g.max = ts
		out.EmitWatermark(ts - g.delay - 1)
	}
}

func (g *punctuatedGen[T]) OnPeriodicEmit(spate.WatermarkOutput) {}

// ordered is a source that emits its records one per Read call, so that
// the watermark advances between records exactly as their order says.
type ordered []event

func (o ordered) Open(context.Context, spate.Split) (spate.SourceReader[event], error) {
	return &orderedReader{evs: o}, nil
}

type orderedReader struct {
	evs []event
	i   int
}

func (r *orderedReader) Read(_ context.Context, buf []event) (int, error) {
	if r.i >= len(r.evs) {
		return 0, io.EOF
	}
	buf[0] = r.evs[r.i]
	r.i++
	return 1, nil
}

func (r *orderedReader) Close() error { return nil }
