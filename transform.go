package spate

import (
	"github.com/spate-dev/spate/internal/exec"
)

// Map applies f to every record.
func Map[T, U any](s Stream[T], f func(T) U) Stream[U] {
	n := s.env.addNode("map", "Map", kitOf[U]{}, func(bc *buildCtx) (*opSpec, error) {
		return &opSpec{inputs: []any{exec.Output[T](&mapOp[T, U]{task: bc.task, name: bc.name, f: f, out: out[U](bc)})}}, nil
	})
	connect(s, n, 0, nil)
	return newStream[U](s.env, n)
}

type mapOp[T, U any] struct {
	task *exec.Task
	name string
	f    func(T) U
	out  exec.Output[U]
}

func (o *mapOp[T, U]) Collect(v T, ts int64) {
	o.task.Current = o.name
	o.out.Collect(o.f(v), ts)
}
func (o *mapOp[T, U]) Watermark(wm int64) { o.out.Watermark(wm) }
func (o *mapOp[T, U]) Finish()            { o.out.Finish() }

// FlatMap calls f for every record; f emits zero or more records through
// emit.
func FlatMap[T, U any](s Stream[T], f func(v T, emit func(U))) Stream[U] {
	n := s.env.addNode("flatMap", "FlatMap", kitOf[U]{}, func(bc *buildCtx) (*opSpec, error) {
		op := &flatMapOp[T, U]{task: bc.task, name: bc.name, f: f, out: out[U](bc)}
		op.emit = func(u U) { op.out.Collect(u, op.ts); op.task.Current = op.name }
		return &opSpec{inputs: []any{exec.Output[T](op)}}, nil
	})
	connect(s, n, 0, nil)
	return newStream[U](s.env, n)
}

type flatMapOp[T, U any] struct {
	task *exec.Task
	name string
	f    func(T, func(U))
	out  exec.Output[U]
	emit func(U)
	ts   int64
}

func (o *flatMapOp[T, U]) Collect(v T, ts int64) {
	o.task.Current = o.name
	o.ts = ts
	o.f(v, o.emit)
}
func (o *flatMapOp[T, U]) Watermark(wm int64) { o.out.Watermark(wm) }
func (o *flatMapOp[T, U]) Finish()            { o.out.Finish() }

// Filter keeps the records for which keep returns true.
func Filter[T any](s Stream[T], keep func(T) bool) Stream[T] {
	n := s.env.addNode("filter", "Filter", kitOf[T]{}, func(bc *buildCtx) (*opSpec, error) {
		return &opSpec{inputs: []any{exec.Output[T](&filterOp[T]{task: bc.task, name: bc.name, f: keep, out: out[T](bc)})}}, nil
	})
	connect(s, n, 0, nil)
	return newStream[T](s.env, n)
}

type filterOp[T any] struct {
	task *exec.Task
	name string
	f    func(T) bool
	out  exec.Output[T]
}

func (o *filterOp[T]) Collect(v T, ts int64) {
	o.task.Current = o.name
	if o.f(v) {
		o.out.Collect(v, ts)
	}
}
func (o *filterOp[T]) Watermark(wm int64) { o.out.Watermark(wm) }
func (o *filterOp[T]) Finish()            { o.out.Finish() }

// SinkTo writes every record of s to sink and returns the sink operator's
// handle for naming and parallelism.
func SinkTo[T any](s Stream[T], sink Sink[T]) Stream[struct{}] {
	n := s.env.addNode("sink", "Sink", kitOf[struct{}]{}, func(bc *buildCtx) (*opSpec, error) {
		op := &sinkOp[T]{task: bc.task, name: bc.name, sink: sink, info: SinkInfo{Subtask: bc.subtask, Parallelism: bc.parallelism, JobName: bc.jobName}}
		// The writer is closed once the job's outcome in this process is
		// known, so that it publishes only the output of a job that
		// succeeded.
		bc.task.Ends = append(bc.task.Ends, op.end)
		return &opSpec{inputs: []any{exec.Output[T](op)}, open: op.open}, nil
	})
	connect(s, n, 0, nil)
	return newStream[struct{}](s.env, n)
}

type sinkOp[T any] struct {
	task *exec.Task
	name string
	sink Sink[T]
	info SinkInfo
	w    SinkWriter[T]
}

func (o *sinkOp[T]) open() error {
	o.task.Current = o.name
	w, err := o.sink.Open(o.task.Context(), o.info)
	if err != nil {
		return err
	}
	o.w = w
	if f, ok := w.(flusher); ok {
		o.task.Flushes = append(o.task.Flushes, func() {
			o.task.Current = o.name
			if err := f.flush(); err != nil {
				o.task.Fail(err)
			}
		})
	}
	return nil
}

// flusher is a SinkWriter of this package that batches records towards
// another process and sends its batch when the task has nothing else to
// do (the collect sink on a cluster).
type flusher interface{ flush() error }

func (o *sinkOp[T]) Collect(v T, _ int64) {
	o.task.Current = o.name
	if err := o.w.Write(v); err != nil {
		o.task.Fail(err)
	}
}
func (o *sinkOp[T]) Watermark(int64) {}
func (o *sinkOp[T]) Finish()         {}

// end closes the writer with the job's outcome in this process.
func (o *sinkOp[T]) end(err error) error {
	if o.w == nil {
		return nil
	}
	w := o.w
	o.w = nil
	o.task.Current = o.name
	return w.Close(err)
}
