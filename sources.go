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
		op := &sourceOp[T]{
			task: bc.task, name: bc.name, src: src, ws: strategy,
			split: Split{Subtask: bc.subtask, Parallelism: bc.parallelism},
			wm:    wmState[T]{out: out[T](bc), last: exec.MinWatermark},
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
	task   *exec.Task
	name   string
	src    Source[T]
	ws     WatermarkStrategy[T]
	split  Split
	reader SourceReader[T]
	wm     wmState[T]
	errOut exec.Output[RecordError]
}

func (o *sourceOp[T]) run(ctx context.Context) error {
	o.task.Current = o.name
	r, err := o.src.Open(ctx, o.split)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	o.reader = r
	var gen WatermarkGenerator[T]
	if o.ws.newGen != nil {
		gen = o.ws.newGen()
	}
	out := o.wm.out
	buf := make([]T, sourceReadBatch)
	lastActive := time.Now()
	idle := false
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		o.task.Current = o.name
		n, err := r.Read(ctx, buf)
		if n > 0 && idle {
			idle = false
			o.task.SetIdle(false)
		}
		for i := 0; i < n; i++ {
			ts := exec.NoTimestamp
			if o.ws.timestamp != nil {
				o.task.Current = o.name
				ts = o.ws.timestamp(buf[i], ts)
			}
			if gen != nil {
				o.task.Current = o.name
				gen.OnEvent(buf[i], ts, &o.wm)
			}
			out.Collect(buf[i], ts)
		}
		o.task.Current = o.name // chained operators ran; what follows is the source's
		if gen != nil {
			gen.OnPeriodicEmit(&o.wm)
		}
		o.task.FireProcTimers()
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			o.wm.EmitWatermark(exec.MaxWatermark)
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
			lastActive = time.Now()
			continue
		}
		// Nothing to read now: send what is buffered, maybe go idle, and
		// wait a little.
		o.task.FlushOutputs()
		if o.ws.idle > 0 && !idle && time.Since(lastActive) >= o.ws.idle {
			idle = true
			o.task.SetIdle(true)
		}
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
