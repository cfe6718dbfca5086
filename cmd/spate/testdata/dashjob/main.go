// Command dashjob is the job the dashboard and progress tests watch: an
// unbounded, rate-limited stream of generated clicks, counted per page in
// one-second event-time windows, the counts of three pages printed. It runs
// until cancelled, so that the tests see it RUNNING with live figures.
//
//	dashjob [-rate N] [-events N] [-slow D]
//
// -rate is the records per second in all (default 2000); -events bounds
// the job; -slow adds a second branch whose sink takes D per record, so
// that the sink is busy and the clicks' vertex backpressured.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
)

// Click is one generated page view.
type Click struct {
	Page int64
	Ts   int64 // event time, ms
}

// PageCount is how often a page was viewed in a window.
type PageCount struct {
	Page      int64
	WindowEnd int64
	Views     int64
}

// slowSink takes its delay over each record and drops it.
type slowSink struct{ delay time.Duration }

func (s slowSink) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[PageCount], error) {
	return s, nil
}

func (s slowSink) Write(PageCount) error {
	time.Sleep(s.delay) // the deliberate slowness
	return nil
}

func (s slowSink) Close(error) error { return nil }

func main() {
	rate := flag.Float64("rate", 2000, "records per second, in all")
	events := flag.Int64("events", 0, "records in all (0: unbounded)")
	slow := flag.Duration("slow", 0, "add a sink that takes this long per record (0: none)")
	flag.Parse()
	env := spate.NewEnv(spate.WithParallelism(2))
	// Event time is the time of generation, so that windows close every
	// second of wall time however slowly the job goes (the tests need
	// nothing replayed, and so no determinism).
	gen := func(i int64) Click { return Click{Page: i % 20, Ts: time.Now().UnixMilli()} }
	ws := spate.ForBoundedOutOfOrderness[Click](100 * time.Millisecond).WithTimestampAssigner(func(c Click, _ int64) int64 { return c.Ts })
	clicks := spate.FromSource(env, "Clicks", datagen.New(gen, datagen.RatePerSecond(*rate), datagen.Count(*events)), ws)
	views := spate.Map(clicks, func(c Click) PageCount { return PageCount{Page: c.Page, WindowEnd: c.Ts, Views: 1} })
	perPage := spate.Windowed(spate.KeyBy(views, func(p PageCount) int64 { return p.Page }), spate.TumblingEventTimeWindows(time.Second))
	counts := spate.ReduceWindow(perPage, func(a, b PageCount) PageCount {
		return PageCount{Page: a.Page, WindowEnd: max(a.WindowEnd, b.WindowEnd), Views: a.Views + b.Views}
	})
	busy := spate.Filter(counts, func(p PageCount) bool { return p.Page < 3 })
	spate.SinkTo(busy, spate.Print[PageCount]()).Parallelism(1)
	if *slow > 0 {
		spate.SinkTo(views.Rebalance(), spate.Sink[PageCount](slowSink{*slow})).Name("Slow sink").Parallelism(1)
	}
	if err := env.Execute("dashboard demo"); err != nil {
		fmt.Fprintln(os.Stderr, "dashjob:", err)
		os.Exit(1)
	}
}
