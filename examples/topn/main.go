// Command topn prints, for every 10-second window of event time, the three
// most viewed pages of a generated click stream.
//
//	go run ./examples/topn [-p N] [-events N] [-n 3]
//
// Stage one counts views per page and window (an incremental aggregate on
// tumbling event-time windows); stage two keys the counts by window and
// keeps the top N until the watermark passes the window's end.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
)

// View is one page view.
type View struct {
	Page string
	User int64
	Ts   int64 // event time, ms
}

// PageCount is how often a page was viewed in a window.
type PageCount struct {
	Page      string
	WindowEnd int64
	Views     int64
}

// Top is the ranking of one window.
type Top struct {
	WindowEnd int64
	Pages     []PageCount
}

func (t Top) String() string {
	parts := make([]string, len(t.Pages))
	for i, p := range t.Pages {
		parts[i] = fmt.Sprintf("%s=%d", p.Page, p.Views)
	}
	return fmt.Sprintf("window ending %s: %s", time.UnixMilli(t.WindowEnd).UTC().Format(time.TimeOnly), strings.Join(parts, " "))
}

// Generate makes the i-th view: 100 views per second of event time over 50
// pages, with a skew towards low page numbers.
func Generate(i int64) View {
	h := uint64(i) * 0x9E3779B97F4A7C15
	page := (h >> 33) % 50
	page = page * page / 50 // skew
	return View{Page: fmt.Sprintf("/page/%d", page), User: int64(h>>20) % 1000, Ts: i * 10}
}

func main() {
	p := flag.Int("p", 0, "parallelism (default: from configuration, else the number of CPUs)")
	events := flag.Int64("events", 10_000, "number of views to generate")
	n := flag.Int("n", 3, "pages per window")
	flag.Parse()
	env := spate.NewEnv(spate.WithParallelism(*p))
	spate.SinkTo(Pipeline(env, *events, *n), spate.Print[Top]()).Parallelism(1)
	if err := env.Execute("topn"); err != nil {
		fmt.Fprintln(os.Stderr, "topn:", err)
		os.Exit(1)
	}
}

// Pipeline declares the top-n job over events generated views.
func Pipeline(env *spate.Env, events int64, n int) spate.Stream[Top] {
	ws := spate.ForBoundedOutOfOrderness[View](time.Second).WithTimestampAssigner(func(v View, _ int64) int64 { return v.Ts })
	views := spate.FromSource(env, "Views", datagen.New(Generate, datagen.Count(events)), ws)
	perPage := spate.Windowed(spate.KeyBy(views, func(v View) string { return v.Page }), spate.TumblingEventTimeWindows(10*time.Second))
	counts := spate.AggregateWindowWith(perPage, spate.AggregateFunction[View, int64, int64](countAgg{}),
		func(page string, w spate.Window, c int64) PageCount {
			return PageCount{Page: page, WindowEnd: w.End, Views: c}
		})
	byWindow := spate.KeyBy(counts, func(c PageCount) int64 { return c.WindowEnd })
	return spate.KeyedProcess(byWindow, func() spate.KeyedProcessFunction[int64, PageCount, Top] { return &topN{n: n} }).Name("TopN")
}

type countAgg struct{}

func (countAgg) CreateAccumulator() int64  { return 0 }
func (countAgg) Add(a int64, _ View) int64 { return a + 1 }
func (countAgg) Result(a int64) int64      { return a }
func (countAgg) Merge(a, b int64) int64    { return a + b }

// topN gathers a window's page counts and ranks them once the watermark
// says all have arrived.
type topN struct {
	n      int
	counts *spate.ListState[int64, PageCount]
}

func (t *topN) Open(ctx *spate.KeyedContext[int64, Top]) error {
	t.counts = spate.NewListState[PageCount](ctx.State(), "counts")
	return nil
}

func (t *topN) ProcessElement(ctx *spate.KeyedContext[int64, Top], c PageCount) error {
	t.counts.Add(c)
	ctx.RegisterEventTimeTimer(c.WindowEnd) // window results carry End-1
	return nil
}

func (t *topN) OnTimer(ctx *spate.KeyedContext[int64, Top], _ int64) error {
	all := slices.Clone(t.counts.Get())
	slices.SortFunc(all, func(a, b PageCount) int {
		if a.Views != b.Views {
			return int(b.Views - a.Views)
		}
		return strings.Compare(a.Page, b.Page)
	})
	ctx.Collect(Top{WindowEnd: ctx.Key(), Pages: all[:min(t.n, len(all))]})
	t.counts.Clear()
	return nil
}
