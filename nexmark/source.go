package nexmark

import (
	"context"
	"io"
	"time"

	"github.com/spate-dev/spate"
)

// NewSource returns a Spate source of the Nexmark events described by cfg.
// Subtask k of a source with parallelism n reads split k of n of the
// sequence (see Generator: splits are by stride, so every subtask's events
// are in event-time order and together they are exactly the unsplit
// sequence). With a bounded cfg.NumEvents each reader returns io.EOF once
// its split is exhausted; with 0 it never ends.
//
// By default a reader produces events as fast as it is read. With
// cfg.RateLimited it releases each event only once the wallclock time since
// the reader's first Read has caught up with the event's offset from the
// base time, like the Flink reference source; Read then returns (0, nil)
// after a short wait when no event is due.
func NewSource(cfg Config) spate.Source[Event] {
	return source{cfg: cfg}
}

type source struct {
	cfg Config
}

func (s source) Open(ctx context.Context, split spate.Split) (spate.SourceReader[Event], error) {
	g, err := NewGenerator(s.cfg, split.Subtask, split.Parallelism)
	if err != nil {
		return nil, err
	}
	return &reader{g: g, limited: s.cfg.RateLimited, split: splitID(int64(split.Subtask), int64(split.Parallelism))}, nil
}

type reader struct {
	g        *Generator
	limited  bool
	started  bool
	wallBase time.Time // wallclock time of the base time, when limited
	split    string    // the split's ID (splits.go)
}

// maxIdleWait bounds how long a rate-limited Read waits for the next event
// before returning (0, nil).
const maxIdleWait = 10 * time.Millisecond

func (r *reader) Read(ctx context.Context, buf []Event) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(buf) == 0 {
		return 0, nil
	}
	if r.g.NextEventNumber() < 0 {
		return 0, io.EOF
	}
	if !r.limited {
		return r.g.Fill(buf), nil
	}
	if !r.started {
		r.started, r.wallBase = true, time.Now()
	}
	// Events become due in the order of their (unadjusted) event numbers:
	// count those due now and generate them in one go.
	g := r.g
	elapsedMs := time.Since(r.wallBase).Milliseconds()
	n := 0
	for num := g.pos; n < len(buf) && num < g.end; num += g.stride {
		if dueMs := g.p.timestampMs(num) - g.p.baseMs; dueMs > elapsedMs {
			if n == 0 {
				wait := min(time.Duration(dueMs-elapsedMs)*time.Millisecond, maxIdleWait)
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return 0, ctx.Err()
				case <-t.C:
				}
			}
			break
		}
		n++
		if num > g.end-g.stride {
			break
		}
	}
	return g.Fill(buf[:n]), nil
}

func (r *reader) Close() error {
	return nil
}
