package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate"
	nx "github.com/spate-dev/spate/nexmark"
)

// nexmarkProgressAfter is how long a query runs before its progress is
// shown: shorter runs print their result line only.
var nexmarkProgressAfter = 2 * time.Second

// nexmarkShow is how `spate nexmark` shows a query's progress: on w (standard
// error), a line redrawn in place when live, else a plain line every
// every; nothing when off.
type nexmarkShow struct {
	w     io.Writer
	live  bool
	every time.Duration
	off   bool
}

// newNexmarkShow is the display --progress and --progress-interval ask
// for, on w.
func newNexmarkShow(pf progressFlags, w *os.File) (nexmarkShow, error) {
	s := nexmarkShow{w: w, every: pf.interval}
	switch pf.mode {
	case "off":
		s.off = true
	case "auto":
		s.live = isTerminal(w) && os.Getenv("TERM") != "dumb"
	case "live":
		s.live = true
	case "plain":
	default:
		return s, fmt.Errorf("--progress %q: want auto, live, plain or off", pf.mode)
	}
	if pf.interval <= 0 {
		return s, fmt.Errorf("--progress-interval %v: want a positive duration, e.g. 10s", pf.interval)
	}
	return s, nil
}

// nexmarkProgress counts one query run's events as its source reads them
// and shows how far it is, from nexmarkProgressAfter on, until Close.
type nexmarkProgress struct {
	show   nexmarkShow
	query  string
	total  int64
	start  time.Time
	events atomic.Int64
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// start begins showing the progress of query over total events.
func (s nexmarkShow) start(query string, total int64) *nexmarkProgress {
	p := &nexmarkProgress{show: s, query: query, total: total, start: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{})}
	if s.off {
		close(p.done)
		return p
	}
	go p.run()
	return p
}

func (p *nexmarkProgress) run() {
	defer close(p.done)
	wait := time.NewTimer(nexmarkProgressAfter)
	defer wait.Stop()
	select {
	case <-p.stop:
		return
	case <-wait.C:
	}
	every := p.show.every
	if p.show.live {
		every = 250 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		p.print()
		select {
		case <-p.stop:
			if p.show.live {
				io.WriteString(p.show.w, "\r\x1b[K")
			}
			return
		case <-tick.C:
		}
	}
}

func (p *nexmarkProgress) print() {
	n := p.events.Load()
	el := time.Since(p.start)
	line := fmt.Sprintf("%s: %d%% of %s events after %s, %s events/s", p.query, n*100/max(p.total, 1),
		countString(p.total), shortDuration(el), rateString(float64(n)/max(el.Seconds(), 1e-9)))
	if n > 0 && n < p.total {
		left := time.Duration(float64(el) * float64(p.total-n) / float64(n))
		line += ", about " + shortDuration(left) + " left"
	}
	if p.show.live {
		fmt.Fprintf(p.show.w, "\r%s\x1b[K", line)
		return
	}
	fmt.Fprintln(p.show.w, line)
}

// Close stops showing the progress (a live line is erased).
func (p *nexmarkProgress) Close() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}

// source counts the events src's readers return.
func (p *nexmarkProgress) source(src spate.Source[nx.Event]) spate.Source[nx.Event] {
	return countingSource[nx.Event]{Source: src, n: &p.events}
}

// countingSource is a source whose readers count the records they read
// (an atomic add per batch, not per record).
type countingSource[T any] struct {
	spate.Source[T]
	n *atomic.Int64
}

func (s countingSource[T]) Open(ctx context.Context, sp spate.Split) (spate.SourceReader[T], error) {
	r, err := s.Source.Open(ctx, sp)
	if err != nil {
		return nil, err
	}
	if er, ok := r.(spate.EventReader[T]); ok {
		// Keep the reader's per-split timestamps and watermarks (Kafka's).
		return countingEventReader[T]{countingReader: countingReader[T]{SourceReader: r, n: s.n}, er: er}, nil
	}
	return countingReader[T]{SourceReader: r, n: s.n}, nil
}

type countingReader[T any] struct {
	spate.SourceReader[T]
	n *atomic.Int64
}

func (r countingReader[T]) Read(ctx context.Context, buf []T) (int, error) {
	n, err := r.SourceReader.Read(ctx, buf)
	r.n.Add(int64(n))
	return n, err
}

// countingEventReader is a countingReader of an EventReader, and one
// itself.
type countingEventReader[T any] struct {
	countingReader[T]
	er spate.EventReader[T]
}

func (r countingEventReader[T]) ReadEvents(ctx context.Context, buf []T, events []spate.SourceEvent) (int, error) {
	n, err := r.er.ReadEvents(ctx, buf, events)
	r.n.Add(int64(n))
	return n, err
}

func (r countingEventReader[T]) Splits() int { return r.er.Splits() }

// nexmarkEvents is queries.Events with the source's records counted by p.
func nexmarkEvents(env *spate.Env, cfg nx.Config, p *nexmarkProgress) spate.Stream[nx.Event] {
	ws := spate.ForBoundedOutOfOrderness[nx.Event](0).
		WithTimestampAssigner(func(e nx.Event, _ int64) int64 { return e.UnixMilli() })
	return spate.FromSource(env, "Nexmark", p.source(nx.NewSource(cfg)), ws)
}
