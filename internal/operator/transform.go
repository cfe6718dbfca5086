package operator

import "github.com/spate-dev/spate/internal/exec"

// NewMap makes a map operator instance: f applied to every record.
func NewMap[T, U any](in *Instance, f func(T) U) *Spec {
	return &Spec{Inputs: []any{exec.Output[T](&mapOp[T, U]{task: in.Task, name: in.Name, f: f, out: Out[U](in)})}}
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

// NewFlatMap makes a flatMap operator instance: f called for every record,
// emitting zero or more records through its emit.
func NewFlatMap[T, U any](in *Instance, f func(v T, emit func(U))) *Spec {
	op := &flatMapOp[T, U]{task: in.Task, name: in.Name, f: f, out: Out[U](in)}
	op.emit = func(u U) { op.out.Collect(u, op.ts); op.task.Current = op.name }
	return &Spec{Inputs: []any{exec.Output[T](op)}}
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

// NewFilter makes a filter operator instance: it keeps the records for
// which keep returns true.
func NewFilter[T any](in *Instance, keep func(T) bool) *Spec {
	return &Spec{Inputs: []any{exec.Output[T](&filterOp[T]{task: in.Task, name: in.Name, f: keep, out: Out[T](in)})}}
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
