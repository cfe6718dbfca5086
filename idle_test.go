package spate_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

// openEnded emits its events, then stays open with nothing to read, like a
// quiet topic.
type openEnded []event

func (o openEnded) Open(context.Context, spate.Split) (spate.SourceReader[event], error) {
	return &openEndedReader{evs: o}, nil
}

type openEndedReader struct {
	evs []event
	i   int
}

func (r *openEndedReader) Read(_ context.Context, buf []event) (int, error) {
	if r.i >= len(r.evs) {
		return 0, nil
	}
	buf[0] = r.evs[r.i]
	r.i++
	return 1, nil
}

func (r *openEndedReader) Close() error { return nil }

// cancelOnWrite cancels the job when it gets its first record.
type cancelOnWrite struct {
	cancel context.CancelFunc
	got    atomic.Pointer[winResult]
}

func (c *cancelOnWrite) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[winResult], error) {
	return c, nil
}
func (c *cancelOnWrite) Write(r winResult) error {
	c.got.CompareAndSwap(nil, &r)
	c.cancel()
	return nil
}
func (c *cancelOnWrite) Close(error) error { return nil }

// quietSource has nothing to read and never ends, like a silent topic. It
// advances the injected clock by step on every Read and cancels the job
// once the clock passes stopAt.
type quietSource struct {
	clock  *atomic.Int64
	step   int64
	stopAt int64
	cancel context.CancelFunc
}

func (q *quietSource) Open(context.Context, spate.Split) (spate.SourceReader[event], error) {
	return q, nil
}

func (q *quietSource) Read(context.Context, []event) (int, error) {
	if q.clock.Add(q.step) > q.stopAt {
		q.cancel()
	}
	return 0, nil
}

func (q *quietSource) Close() error { return nil }

// TestIdleInputDoesNotHoldBackWatermark unions a source that has data with
// one that never has any: only because the silent one is marked idle does
// the watermark advance and the window fire. The idleness is the silent
// source's strategy's, or that of AssignTimestampsAndWatermarks after it.
// Processing time is the injected clock, which the silent source advances
// on every read; it stops the job after 20 s of it (40 idleness
// timeouts), so the cases without idleness end without waiting on the
// wall clock.
func TestIdleInputDoesNotHoldBackWatermark(t *testing.T) {
	for _, tc := range []struct {
		name     string
		assigner bool
		idleness time.Duration
		wantFire bool
	}{
		{"source/with idleness", false, 500 * time.Millisecond, true},
		{"source/without idleness", false, 0, false},
		{"assigner/with idleness", true, 500 * time.Millisecond, true},
		{"assigner/without idleness", true, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clock atomic.Int64
			const start = 1_000_000
			clock.Store(start)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			env := newEnv(1, spate.WithClock(clock.Load))
			ts := func(e event, _ int64) int64 { return e.Ts }
			busy := spate.FromSource(env, "busy", spate.Source[event](openEnded{{"a", 1, 100}, {"a", 2, 500}, {"a", 3, 2500}}),
				spate.ForMonotonousTimestamps[event]().WithTimestampAssigner(ts))
			silent := spate.Source[event](&quietSource{clock: &clock, step: 50, stopAt: start + 20_000, cancel: cancel})
			strategy := spate.ForMonotonousTimestamps[event]().WithTimestampAssigner(ts).WithIdleness(tc.idleness)
			var quiet spate.Stream[event]
			if tc.assigner {
				quiet = spate.AssignTimestampsAndWatermarks(spate.FromSource(env, "quiet", silent, spate.NoWatermarks[event]()), strategy)
			} else {
				quiet = spate.FromSource(env, "quiet", silent, strategy)
			}
			w := spate.Windowed(spate.KeyBy(spate.Union(busy, quiet), byKey), spate.TumblingEventTimeWindows(time.Second))
			res := spate.AggregateWindowWith(w, spate.AggregateFunction[event, sumAcc, sumAcc](sumAgg{}), toResult)
			sink := &cancelOnWrite{cancel: cancel}
			spate.SinkTo(res, spate.Sink[winResult](sink))
			err := env.ExecuteContext(ctx, "idle")
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Execute returned %v, want context.Canceled", err)
			}
			got := sink.got.Load()
			if tc.wantFire {
				if got == nil || got.String() != "a[0,1000)=3/2" {
					t.Fatalf("window result %v, want a[0,1000)=3/2: the idle input held the watermark back", got)
				}
				return
			}
			if got != nil {
				t.Fatalf("window fired (%v) although a silent, non-idle input holds the watermark back", got)
			}
		})
	}
}
