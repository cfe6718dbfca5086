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

// TestIdleSourceDoesNotHoldBackWatermark unions a source that has data
// with one that never has any: only because the silent one is marked idle
// does the watermark advance and the window fire.
func TestIdleSourceDoesNotHoldBackWatermark(t *testing.T) {
	for _, tc := range []struct {
		name     string
		idleness time.Duration
		wantFire bool
	}{
		{"with idleness", 20 * time.Millisecond, true},
		{"without idleness", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(1)
			ts := func(e event, _ int64) int64 { return e.Ts }
			busy := spate.FromSource(env, "busy", spate.Source[event](openEnded{{"a", 1, 100}, {"a", 2, 500}, {"a", 3, 2500}}),
				spate.ForMonotonousTimestamps[event]().WithTimestampAssigner(ts))
			quiet := spate.FromSource(env, "quiet", spate.Source[event](openEnded{}),
				spate.ForMonotonousTimestamps[event]().WithTimestampAssigner(ts).WithIdleness(tc.idleness))
			w := spate.Windowed(spate.KeyBy(spate.Union(busy, quiet), byKey), spate.TumblingEventTimeWindows(time.Second))
			res := spate.AggregateWindowWith(w, spate.AggregateFunction[event, sumAcc, sumAcc](sumAgg{}), toResult)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			sink := &cancelOnWrite{cancel: cancel}
			spate.SinkTo(res, spate.Sink[winResult](sink))
			err := env.ExecuteContext(ctx, "idle")
			got := sink.got.Load()
			if tc.wantFire {
				if got == nil || got.String() != "a[0,1000)=3/2" {
					t.Fatalf("window result %v (job: %v), want a[0,1000)=3/2", got, err)
				}
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Execute after cancel returned %v, want context.Canceled", err)
				}
				return
			}
			if got != nil {
				t.Fatalf("window fired (%v) although a silent, non-idle input holds the watermark back", got)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Execute returned %v, want the deadline", err)
			}
		})
	}
}
