package spate

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/spate-dev/spate/internal/role"
)

// Print returns a sink that writes each record as a line to standard
// output. With parallelism above one, each line starts with the writing
// subtask's number (from 1) and "> ", as Flink's print sink does.
func Print[T any]() Sink[T] { return &printSink[T]{w: os.Stdout} }

// PrintTo is Print writing to w instead of standard output.
func PrintTo[T any](w io.Writer) Sink[T] { return &printSink[T]{w: w} }

type printSink[T any] struct {
	mu sync.Mutex // one line per Write call, never interleaved
	w  io.Writer
}

func (p *printSink[T]) Open(_ context.Context, info SinkInfo) (SinkWriter[T], error) {
	prefix := ""
	if info.Parallelism > 1 {
		prefix = strconv.Itoa(info.Subtask+1) + "> "
	}
	return &printWriter[T]{sink: p, prefix: prefix}, nil
}

type printWriter[T any] struct {
	sink   *printSink[T]
	prefix string
	buf    []byte
}

func (w *printWriter[T]) Write(v T) error {
	w.buf = append(w.buf[:0], w.prefix...)
	w.buf = fmt.Append(w.buf, v)
	w.buf = append(w.buf, '\n')
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	if _, err := w.sink.w.Write(w.buf); err != nil {
		return fmt.Errorf("print sink: %w", err)
	}
	return nil
}

// Close implements SinkWriter; printed lines are out whatever the outcome.
func (w *printWriter[T]) Close(error) error { return nil }

// Collected gathers the records of a stream in the program that runs the
// job, for tests, examples and small results; read them with Values after
// Execute returns.
type Collected[T any] struct {
	mu   sync.Mutex
	vals []T
	sink int // the Collect sink's operator id
	// pending holds, with checkpoints, the records pre-committed and not
	// committed yet, by transaction (collect_txn.go).
	pending map[string][]T
}

// Collect adds a sink to s that gathers its records, and returns it.
//
// Run locally, the records are gathered in this process. On a cluster the
// sink's subtasks send them, in T's codec, through the JobManager to the
// program that submitted the job, which fills the Collected as the job
// runs (as Flink's executeAndCollect); Execute returns once all of them
// are in. T then needs a codec, and the submission must not be detached:
// either is refused before the job is submitted.
func Collect[T any](s Stream[T]) *Collected[T] {
	c := &Collected[T]{}
	n := SinkTo(s, Sink[T](c)).Name("Collect").node("Collect")
	n.collect = c
	c.sink = n.id
	return c
}

// Values returns the records gathered so far, in the order they arrived
// (interleaved arbitrarily between parallel subtasks).
func (c *Collected[T]) Values() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.vals...)
}

// Open implements Sink.
func (c *Collected[T]) Open(ctx context.Context, info SinkInfo) (SinkWriter[T], error) {
	if p := role.CollectPusher(ctx); p != nil {
		return newRemoteCollectWriter(ctx, c, p, info)
	}
	return &collectWriter[T]{c: c, subtask: info.Subtask}, nil
}

type collectWriter[T any] struct {
	c   *Collected[T]
	buf []T
	// With checkpoints (txn), records become Values only when their
	// checkpoint commits.
	txn          bool
	subtask, seq int
	attempt      int64
}

func (w *collectWriter[T]) Write(v T) error {
	w.buf = append(w.buf, v)
	if !w.txn && len(w.buf) >= 1024 {
		w.flush()
	}
	return nil
}

func (w *collectWriter[T]) flush() {
	w.c.mu.Lock()
	w.c.vals = append(w.c.vals, w.buf...)
	w.c.mu.Unlock()
	w.buf = w.buf[:0]
}

// Close implements SinkWriter. The records of a failed job gathered
// before the failure stay readable, as those of a local run always were:
// Execute's error tells that they are not the whole result.
func (w *collectWriter[T]) Close(err error) error {
	if w.txn && err != nil {
		w.buf = nil // not committed: a restart replays them
		return nil
	}
	w.flush()
	return nil
}
