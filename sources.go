package spate

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/operator"
)

// RecordErrors is the side output where a source emits malformed records
// instead of failing the job: SideOutput(stream, RecordErrors).
var RecordErrors = NewOutputTag[RecordError]("spate.record-errors")

// FromSource creates a stream from src, with event time per strategy. Its
// parallelism is the default unless set on the returned stream.
func FromSource[T any](env *Env, name string, src Source[T], strategy WatermarkStrategy[T]) Stream[T] {
	n := env.addNode("source", name, operator.TypeOf[T](), func(in *operator.Instance) (*operator.Spec, error) {
		split := Split{Subtask: in.Subtask, Parallelism: in.Parallelism}
		var errOut exec.Output[RecordError]
		if o, ok := in.Sides[RecordErrors.ID]; ok {
			errOut = o.(exec.Output[RecordError])
		}
		open := func(ctx context.Context, restore *operator.Restore) (operator.Reader[T], error) {
			return openSource(ctx, in.Name, src, split, restore)
		}
		_, union := src.(UnionSplits)
		return operator.NewSource(in, open, strategy.runtime(), func(err error) error { return routeRecordError(err, errOut) }, union)
	})
	return newStream[T](env, n)
}

// routeRecordError sends a malformed record's error to errOut, the side
// output RecordErrors if it is consumed, and returns nil; any other error,
// or a malformed record without errOut, it returns, failing the source.
func routeRecordError(err error, errOut exec.Output[RecordError]) error {
	var re *RecordError
	if !errors.As(err, &re) {
		return fmt.Errorf("read source: %w", err)
	}
	if errOut == nil {
		return fmt.Errorf("read source: %w (to route malformed records elsewhere instead of failing, consume spate.SideOutput(stream, spate.RecordErrors))", err)
	}
	errOut.Collect(*re, exec.NoTimestamp)
	return nil
}

// FromSlice creates a bounded stream of the given records, in order. Its
// parallelism is 1 unless set; with more, subtask i reads records i, i+p, ...
func FromSlice[T any](env *Env, records []T) Stream[T] {
	s := FromSource(env, "Slice", Source[T](sliceSource[T](records)), NoWatermarks[T]())
	return s.Parallelism(1)
}

type sliceSource[T any] []T

func (s sliceSource[T]) Open(_ context.Context, sp Split) (SourceReader[T], error) {
	return &sliceReader[T]{recs: s, next: sp.Subtask, first: sp.Subtask, step: sp.Parallelism}, nil
}

type sliceReader[T any] struct {
	recs              []T
	next, first, step int
}

func (r *sliceReader[T]) Read(_ context.Context, buf []T) (int, error) {
	n := 0
	for n < len(buf) && r.next < len(r.recs) {
		buf[n] = r.recs[r.next]
		n++
		r.next += r.step
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *sliceReader[T]) Close() error { return nil }
