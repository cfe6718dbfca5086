package spate_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

// timedWindow is a process window function that, the first time each
// window fires, registers an event-time timer 551 ms after the window's end
// and, for the first window, a processing-time timer due at once.
type timedWindow struct {
	log *syncLog
}

func (f *timedWindow) Process(ctx *spate.WindowContext[string, string], key string, recs []event) error {
	w := ctx.Window()
	f.log.add("fire %s %v n=%d", key, w, len(recs))
	fired := spate.NewValueState[bool](ctx.WindowState(), "fired")
	if _, ok := fired.Value(); ok {
		return nil
	}
	fired.Update(true)
	ctx.RegisterEventTimeTimer(w.MaxTimestamp() + 551)
	if w.Start == 0 {
		ctx.RegisterProcessingTimeTimer(ctx.CurrentProcessingTime())
	}
	return nil
}

// OnTimer makes timedWindow a spate.WindowTimerHandler.
func (f *timedWindow) OnTimer(ctx *spate.WindowContext[string, string], ts int64) error {
	if ctx.TimeDomain() == spate.ProcessingTime {
		f.log.add("timer %s %v processing", ctx.Key(), ctx.Window())
		return nil
	}
	if ctx.Timestamp() != ts {
		return fmt.Errorf("event-time timer %d has timestamp %d", ts, ctx.Timestamp())
	}
	f.log.add("timer %s %v event %d", ctx.Key(), ctx.Window(), ts)
	return nil
}

// TestWindowFunctionTimersReachOnTimer registers timers in a process
// window function. They reach its OnTimer, with the window they were
// registered in, and leave the window alone: a late record within the
// allowed lateness still finds all the window's records (a processing-time
// timer used to purge the window, and an event-time one to vanish).
func TestWindowFunctionTimersReachOnTimer(t *testing.T) {
	var log syncLog
	env := newEnv(1, spate.WithClock(func() int64 { return 5_000 }))
	in := []event{
		{"a", 1, 100}, {"a", 2, 200}, {"a", 3, 300},
		{"a", 4, 1500}, // watermark 1499: [0,1000) fires
		{"a", 5, 1600}, // watermark 1599: the timer at 1550 fires
		{"a", 6, 500},  // late, within the lateness: [0,1000) fires again
		{"a", 7, 3000}, // watermark 2999: [1000,2000) fires, then its timer
	}
	w := spate.Windowed(spate.KeyBy(events(env, in, 0), byKey), spate.TumblingEventTimeWindows(time.Second)).
		AllowedLateness(5 * time.Second)
	spate.Collect(spate.ProcessWindow(w, func() spate.ProcessWindowFunction[string, event, string] {
		return &timedWindow{log: &log}
	}))
	execute(t, env)
	want := []string{
		"fire a [0, 1000) n=3",
		"timer a [0, 1000) processing",
		"timer a [0, 1000) event 1550",
		"fire a [0, 1000) n=4",
		"fire a [1000, 2000) n=2",
		"timer a [1000, 2000) event 2550",
		"fire a [3000, 4000) n=1", // at the end of the input
		"timer a [3000, 4000) event 4550",
	}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("window firings and timers:\n got %q\nwant %q", got, want)
	}
}

// TestWindowFunctionTimersWithoutOnTimerFail registers a timer in a window
// function that cannot receive it: the job fails, naming the operator and
// the method to implement, rather than dropping the timer or purging the
// window with it.
func TestWindowFunctionTimersWithoutOnTimerFail(t *testing.T) {
	for name, domain := range map[string]spate.TimeDomain{"event time": spate.EventTime, "processing time": spate.ProcessingTime} {
		t.Run(name, func(t *testing.T) {
			env := newEnv(1)
			in := []event{{"a", 1, 100}, {"a", 2, 1500}}
			w := spate.Windowed(spate.KeyBy(events(env, in, 0), byKey), spate.TumblingEventTimeWindows(time.Second))
			out := spate.ProcessWindow(w, func() spate.ProcessWindowFunction[string, event, string] {
				return spate.ProcessWindowFunc[string, event, string](func(ctx *spate.WindowContext[string, string], key string, recs []event) error {
					if domain == spate.EventTime {
						ctx.RegisterEventTimeTimer(ctx.Window().End + 100)
					} else {
						ctx.RegisterProcessingTimeTimer(ctx.CurrentProcessingTime() + 10)
					}
					ctx.Collect(key)
					return nil
				})
			}).Name("Timed window")
			spate.Collect(out)
			err := env.Execute(t.Name())
			if err == nil {
				t.Fatal("Execute succeeded; want the timer refused")
			}
			for _, s := range []string{`"Timed window"`, "OnTimer", "WindowTimerHandler"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
}
