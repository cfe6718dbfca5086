package spate_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/spate-dev/spate"
)

// liveHeap returns the bytes and objects live on the heap after a
// collection.
func liveHeap() (bytes, objects int64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc), int64(m.HeapObjects)
}

// TestDeletedTimersAreFreed registers and deletes 100,000 timers of each
// kind on one key, then registers a burst of timers and deletes them all:
// the heap must come back to what it was (within a bound far below what
// the timers took), so a deleted timer keeps neither a heap entry, nor a
// set entry, nor its closure. The timers deleted never fire; one kept
// timer of each kind does.
func TestDeletedTimersAreFreed(t *testing.T) {
	const (
		churn = 100_000
		burst = 50_000
		// Far below the 40+ bytes per event-time timer and 60+ per
		// processing-time timer the runs above would leave behind.
		maxBytes   = 2 << 20
		maxObjects = 5_000
	)
	env := newEnv(1)
	var errs, report syncLog
	fired := map[spate.TimeDomain][]int64{}
	ks := spate.KeyBy(spate.FromSlice(env, []string{"k"}), func(k string) string { return k })
	out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, string, string] {
		return &keyedFunc[string, string]{
			process: func(ctx *evCtx, _ string) error {
				// Processing-time timers an hour ahead: none is due
				// while the test runs.
				far := ctx.CurrentProcessingTime() + 3_600_000
				cycle := func(n int) {
					for i := range int64(n) {
						ctx.RegisterEventTimeTimer(1_000 + i)
						ctx.DeleteEventTimeTimer(1_000 + i)
						ctx.RegisterProcessingTimeTimer(far + i)
						ctx.DeleteProcessingTimeTimer(far + i)
					}
				}
				cycle(1_000) // warm up
				b0, o0 := liveHeap()
				cycle(churn)
				b1, o1 := liveHeap()
				report.add("churn of %d: heap %+d bytes, %+d objects", churn, b1-b0, o1-o0)
				if b1-b0 > maxBytes || o1-o0 > maxObjects {
					errs.add("register+delete of %d timers of each kind left %d bytes in %d objects on the heap, want at most %d bytes in %d objects", churn, b1-b0, o1-o0, maxBytes, maxObjects)
				}
				for i := range int64(burst) {
					ctx.RegisterEventTimeTimer(2_000_000 + i)
					ctx.RegisterProcessingTimeTimer(far + i)
				}
				bPeak, _ := liveHeap()
				for i := range int64(burst) {
					ctx.DeleteEventTimeTimer(2_000_000 + i)
					ctx.DeleteProcessingTimeTimer(far + i)
				}
				b2, o2 := liveHeap()
				report.add("burst of %d: heap %+d bytes at the peak, %+d bytes and %+d objects after the deletes", burst, bPeak-b0, b2-b0, o2-o0)
				if b2-b0 > maxBytes || o2-o0 > maxObjects {
					errs.add("%d timers of each kind registered (%d bytes at the peak), then deleted, left %d bytes in %d objects on the heap, want at most %d bytes in %d objects", burst, bPeak-b0, b2-b0, o2-o0, maxBytes, maxObjects)
				}
				ctx.RegisterEventTimeTimer(500)
				ctx.RegisterProcessingTimeTimer(ctx.CurrentProcessingTime())
				return nil
			},
			onTimer: func(ctx *evCtx, ts int64) error {
				fired[ctx.TimeDomain()] = append(fired[ctx.TimeDomain()], ts)
				return nil
			},
		}
	})
	spate.Collect(out)
	execute(t, env)
	for _, l := range report.get() {
		t.Log(l)
	}
	for _, e := range errs.get() {
		t.Error(e)
	}
	if ev := fired[spate.EventTime]; fmt.Sprint(ev) != "[500]" {
		t.Errorf("event-time timers fired at %v, want only the kept one at 500", ev)
	}
	if pr := fired[spate.ProcessingTime]; len(pr) != 1 {
		t.Errorf("processing-time timers fired at %v, want only the kept one", pr)
	}
}
