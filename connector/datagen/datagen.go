// Package datagen is a source that generates records from their index: a
// bounded or unbounded sequence, optionally rate limited, split among the
// parallel subtasks (subtask i makes records i, i+p, i+2p, ...). It is
// Flink's DataGeneratorSource.
package datagen

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/spate-dev/spate"
)

// Option configures a generator source.
type Option func(*config)

type config struct {
	count int64
	rate  float64
}

// Count bounds the source to n records in all (0, the default, is unbounded).
func Count(n int64) Option { return func(c *config) { c.count = n } }

// RatePerSecond limits the source to about r records per second in all,
// shared evenly among the subtasks.
func RatePerSecond(r float64) Option { return func(c *config) { c.rate = r } }

// New returns a source of gen(0), gen(1), ... per opts. gen must be
// deterministic and safe to call from several goroutines.
func New[T any](gen func(index int64) T, opts ...Option) spate.Source[T] {
	c := config{}
	for _, o := range opts {
		o(&c)
	}
	if c.count < 0 {
		panic(fmt.Sprintf("datagen: count %d must not be negative", c.count))
	}
	return &source[T]{gen: gen, cfg: c}
}

type source[T any] struct {
	gen func(int64) T
	cfg config
}

func (s *source[T]) Open(_ context.Context, sp spate.Split) (spate.SourceReader[T], error) {
	r := &reader[T]{gen: s.gen, next: int64(sp.Subtask), step: int64(sp.Parallelism), count: s.cfg.count}
	if s.cfg.rate > 0 {
		r.perRecord = time.Duration(float64(time.Second) * float64(sp.Parallelism) / s.cfg.rate)
		r.start = time.Now()
	}
	return r, nil
}

type reader[T any] struct {
	gen        func(int64) T
	next, step int64
	count      int64
	perRecord  time.Duration
	start      time.Time
	emitted    int64
}

func (r *reader[T]) Read(_ context.Context, buf []T) (int, error) {
	limit := len(buf)
	if r.perRecord > 0 {
		// How many records the rate allows by now.
		allowed := int64(time.Since(r.start)/r.perRecord) + 1 - r.emitted
		if allowed <= 0 {
			return 0, nil
		}
		limit = int(min(int64(limit), allowed))
	}
	n := 0
	for n < limit {
		if r.count > 0 && r.next >= r.count {
			break
		}
		buf[n] = r.gen(r.next)
		r.next += r.step
		n++
	}
	r.emitted += int64(n)
	if n == 0 && r.count > 0 && r.next >= r.count {
		return 0, io.EOF
	}
	return n, nil
}

func (r *reader[T]) Close() error { return nil }

// Splits (spate.CheckpointedReader): a subtask's records are one split,
// "datagen/<subtask>/<parallelism>", positioned at the index of its next
// record.

// SnapshotSplits implements spate.CheckpointedReader.
func (r *reader[T]) SnapshotSplits() ([]spate.SplitState, error) {
	return []spate.SplitState{{ID: splitID(r.next%r.step, r.step), Position: binary.AppendVarint(nil, r.next)}}, nil
}

func splitID(first, step int64) string { return fmt.Sprintf("datagen/%d/%d", first, step) }

// Restore implements spate.RestorableSource: the subtask goes on at the
// index of the checkpoint (a rate limit counts afresh from there).
func (s *source[T]) Restore(ctx context.Context, sp spate.Split, splits []spate.SplitState) (spate.SourceReader[T], error) {
	rr, err := s.Open(ctx, sp)
	if err != nil {
		return nil, err
	}
	r := rr.(*reader[T])
	want := splitID(int64(sp.Subtask), int64(sp.Parallelism))
	for _, st := range splits {
		next, n := binary.Varint(st.Position)
		if st.ID != want || n <= 0 || n != len(st.Position) || next < 0 || next%r.step != int64(sp.Subtask) {
			return nil, fmt.Errorf("datagen: split %q at %x in the checkpoint, want split %q (restoring at another parallelism is not supported yet)", st.ID, st.Position, want)
		}
		r.next = next
	}
	return r, nil
}

// Pending tells how many records the reader has left (the runtime's
// pendingRecords metric): -1 for an unbounded source; bytes are unknown.
func (r *reader[T]) Pending() (records, bytes int64) {
	if r.count <= 0 {
		return -1, -1
	}
	if r.next >= r.count {
		return 0, -1
	}
	return (r.count - r.next + r.step - 1) / r.step, -1
}
