package operator

import "github.com/spate-dev/spate/internal/exec"

// NewReduce makes a keyed rolling-reduce operator instance: per key (by
// key), the result of combining every record so far with f, emitted after
// each record.
func NewReduce[K comparable, T any](in *Instance, key func(T) K, f func(acc, v T) T) *Spec {
	op := &reduceOp[K, T]{task: in.Task, name: in.Name, key: key, f: f, out: Out[T](in), acc: makeCOWMap[K, T](), kc: newKeyCoder[K](in.MaxParallelism)}
	return &Spec{Inputs: []any{exec.Output[T](op)}, State: op}
}

type reduceOp[K comparable, T any] struct {
	task *exec.Task
	name string
	key  func(T) K
	f    func(T, T) T
	out  exec.Output[T]
	acc  cowMap[K, T]
	kc   *keyCoder[K]
}

func (o *reduceOp[K, T]) Collect(v T, ts int64) {
	o.task.Current = o.name
	k := o.key(v)
	if a, ok := o.acc.get(k); ok {
		v = o.f(a, v)
	}
	o.acc.set(k, v)
	o.out.Collect(v, ts)
}
func (o *reduceOp[K, T]) Watermark(wm int64) { o.out.Watermark(wm) }
func (o *reduceOp[K, T]) Finish()            { o.out.Finish() }
