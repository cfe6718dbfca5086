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
	"strconv"
	"strings"
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
	r := &reader[T]{gen: s.gen, seqs: []seq{{first: int64(sp.Subtask), step: int64(sp.Parallelism), next: int64(sp.Subtask)}}, count: s.cfg.count}
	if s.cfg.rate > 0 {
		r.perRecord = time.Duration(float64(time.Second) * float64(sp.Parallelism) / s.cfg.rate)
		r.start = time.Now()
	}
	return r, nil
}

// seq is one split: the records first, first+step, ..., next the index
// of the next one to make.
type seq struct{ first, step, next int64 }

type reader[T any] struct {
	gen       func(int64) T
	seqs      []seq
	turn      int // the split whose turn it is
	count     int64
	perRecord time.Duration
	start     time.Time
	emitted   int64
}

func (r *reader[T]) done(q seq) bool { return r.count > 0 && q.next >= r.count }

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
		skipped := 0
		for skipped < len(r.seqs) && r.done(r.seqs[r.turn]) {
			r.turn = (r.turn + 1) % len(r.seqs)
			skipped++
		}
		if skipped == len(r.seqs) {
			break
		}
		q := &r.seqs[r.turn]
		buf[n] = r.gen(q.next)
		q.next += q.step
		n++
		r.turn = (r.turn + 1) % len(r.seqs)
	}
	r.emitted += int64(n)
	if n == 0 && limit > 0 && r.exhausted() {
		return 0, io.EOF
	}
	return n, nil
}

// exhausted tells that every split was read to its end: a bounded source
// read, or a reader restored without splits.
func (r *reader[T]) exhausted() bool {
	for _, q := range r.seqs {
		if !r.done(q) {
			return false
		}
	}
	return true
}

func (r *reader[T]) Close() error { return nil }

// Splits (spate.CheckpointedReader): the records of subtask i of p are one
// split, "datagen/<i>/<p>", positioned at the index of its next record. A
// restore at another parallelism deals the splits out among the readers,
// which read theirs in turn: p1 splits stay p1 splits.

// SnapshotSplits implements spate.CheckpointedReader.
func (r *reader[T]) SnapshotSplits() ([]spate.SplitState, error) {
	out := make([]spate.SplitState, len(r.seqs))
	for i, q := range r.seqs {
		out[i] = spate.SplitState{ID: splitID(q.first, q.step), Position: binary.AppendVarint(nil, q.next)}
	}
	return out, nil
}

func splitID(first, step int64) string { return fmt.Sprintf("datagen/%d/%d", first, step) }

// parseSplit reads a split's state back.
func parseSplit(st spate.SplitState) (seq, error) {
	var q seq
	rest, ok := strings.CutPrefix(st.ID, "datagen/")
	a, b, ok2 := strings.Cut(rest, "/")
	first, err1 := strconv.ParseInt(a, 10, 64)
	step, err2 := strconv.ParseInt(b, 10, 64)
	next, n := binary.Varint(st.Position)
	if !ok || !ok2 || err1 != nil || err2 != nil || step <= 0 || first < 0 || first >= step ||
		n <= 0 || n != len(st.Position) || next < first || (next-first)%step != 0 {
		return q, fmt.Errorf("datagen: malformed split %q at %x in the checkpoint", st.ID, st.Position)
	}
	return seq{first: first, step: step, next: next}, nil
}

// Restore implements spate.RestorableSource: the subtask goes on with the
// splits it is given, each at the index of the checkpoint (a rate limit
// counts afresh from there). At the checkpoint's parallelism a subtask
// gets its own split back; at another, its share of all of them.
func (s *source[T]) Restore(ctx context.Context, sp spate.Split, splits []spate.SplitState) (spate.SourceReader[T], error) {
	rr, err := s.Open(ctx, sp)
	if err != nil {
		return nil, err
	}
	r := rr.(*reader[T])
	r.seqs = r.seqs[:0]
	for _, st := range splits {
		q, err := parseSplit(st)
		if err != nil {
			return nil, err
		}
		r.seqs = append(r.seqs, q)
	}
	return r, nil
}

// Pending tells how many records the reader has left (the runtime's
// pendingRecords metric): -1 for an unbounded source; bytes are unknown.
func (r *reader[T]) Pending() (records, bytes int64) {
	if r.count <= 0 {
		return -1, -1
	}
	var left int64
	for _, q := range r.seqs {
		if !r.done(q) {
			left += (r.count - q.next + q.step - 1) / q.step
		}
	}
	return left, -1
}
