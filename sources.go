package spate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// RecordErrors is the side output where a source emits malformed records
// instead of failing the job: SideOutput(stream, RecordErrors).
var RecordErrors = NewOutputTag[RecordError]("spate.record-errors")

// sourceReadBatch is how many records a source reads per call.
const sourceReadBatch = 256

// FromSource creates a stream from src, with event time per strategy. Its
// parallelism is the default unless set on the returned stream.
func FromSource[T any](env *Env, name string, src Source[T], strategy WatermarkStrategy[T]) Stream[T] {
	var n *node
	n = env.addNode("source", name, kitOf[T]{}, func(bc *buildCtx) (*opSpec, error) {
		r, err := newStrategyRun(bc, strategy)
		if err != nil {
			return nil, err
		}
		op := &sourceOp[T]{
			task: bc.task, name: bc.name, src: src, strategy: r,
			split: Split{Subtask: bc.subtask, Parallelism: bc.parallelism},
		}
		if o, ok := bc.sides[RecordErrors.ID]; ok {
			op.errOut = o.(exec.Output[RecordError])
		}
		return &opSpec{source: op.run, close: op.close}, nil
	})
	return newStream[T](env, n)
}

// FromSlice creates a bounded stream of the given records, in order. Its
// parallelism is 1 unless set; with more, subtask i reads records i, i+p, ...
func FromSlice[T any](env *Env, records []T) Stream[T] {
	s := FromSource(env, "Slice", Source[T](sliceSource[T](records)), NoWatermarks[T]())
	return s.Parallelism(1)
}

type sliceSource[T any] []T

func (s sliceSource[T]) Open(_ context.Context, sp Split) (SourceReader[T], error) {
	return &sliceReader[T]{recs: s, next: sp.Subtask, step: sp.Parallelism}, nil
}

type sliceReader[T any] struct {
	recs       []T
	next, step int
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

type sourceOp[T any] struct {
	task     *exec.Task
	name     string
	src      Source[T]
	strategy *strategyRun[T]
	split    Split
	reader   SourceReader[T]
	errOut   exec.Output[RecordError]
}

func (o *sourceOp[T]) run(ctx context.Context) error {
	o.task.Current = o.name
	r, err := o.src.Open(ctx, o.split)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	o.reader = r
	run := o.strategy
	out := run.wm.out
	buf := make([]T, sourceReadBatch)
	run.start()
	defer run.stop()
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		o.task.Current = o.name
		n, err := r.Read(ctx, buf)
		if n > 0 {
			run.active(n)
		}
		if run.perRecord() {
			for i := 0; i < n; i++ {
				o.task.Current = o.name
				ts := run.timestamp(buf[i], exec.NoTimestamp)
				out.Collect(buf[i], ts)
				o.task.Current = o.name
				run.observe(buf[i], ts)
			}
		} else {
			for i := 0; i < n; i++ {
				out.Collect(buf[i], exec.NoTimestamp)
			}
		}
		o.task.Current = o.name // chained operators ran; what follows is the source's
		o.task.FireProcTimers()
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			run.stop()
			run.wm.EmitWatermark(exec.MaxWatermark)
			out.Finish()
			return nil
		default:
			var re *RecordError
			if !errors.As(err, &re) {
				return fmt.Errorf("read source: %w", err)
			}
			if o.errOut == nil {
				return fmt.Errorf("read source: %w (to route malformed records elsewhere instead of failing, consume spate.SideOutput(stream, spate.RecordErrors))", err)
			}
			o.errOut.Collect(*re, exec.NoTimestamp)
			continue
		}
		if n > 0 {
			continue
		}
		// Nothing to read now: send what is buffered and wait a little (or
		// until a timer is due: the strategy's ticks are timers).
		o.task.FlushOutputs()
		o.task.WaitTimers(time.Millisecond)
	}
}

func (o *sourceOp[T]) close() error {
	if o.reader == nil {
		return nil
	}
	r := o.reader
	o.reader = nil
	return r.Close()
}
