package operator

import (
	"context"
	"errors"
	"sync"

	"github.com/spate-dev/spate/internal/exec"
)

// Writer writes a sink subtask's records: the method set of
// spate.SinkWriter.
type Writer[T any] interface {
	Write(v T) error
	Close(err error) error
}

// Flusher is a Writer that batches records towards another process and
// sends its batch when the task has nothing else to do (the Collect sink
// on a cluster).
type Flusher interface{ Flush() error }

// NewSink makes a sink operator instance: open opens the subtask's writer,
// which gets every record. The writer is closed once the job's outcome in
// this process is known, so that it publishes only the output of a job
// that succeeded. unionCommittables gives a transactional writer restored
// at another parallelism every old subtask's pending committables rather
// than a share (spate.UnionCommittables).
func NewSink[T any](in *Instance, open func(ctx context.Context) (Writer[T], error), unionCommittables bool) *Spec {
	op := &sinkOp[T]{task: in.Task, name: in.Name, openWriter: open, checkpointing: in.Checkpointing, attempt: in.Attempt, unionCommittables: unionCommittables}
	in.Task.Ends = append(in.Task.Ends, op.end)
	return &Spec{Inputs: []any{exec.Output[T](op)}, Open: op.open, State: op}
}

type sinkOp[T any] struct {
	task       *exec.Task
	name       string
	openWriter func(ctx context.Context) (Writer[T], error)
	w          Writer[T]

	// With checkpoints, a transactional writer (txn) commits what it
	// pre-committed at each barrier once the checkpoint completes;
	// restored holds the committables of a restored checkpoint (nil on a
	// fresh start).
	checkpointing bool
	attempt       int64
	txn           TxnWriter
	restored      [][]byte
	// unionCommittables: at another parallelism every subtask restores
	// every committable (see Distribution).
	unionCommittables bool
	mu                struct {
		sync.Mutex
		pending []pendingTxn
	}
}

func (o *sinkOp[T]) open() error {
	o.task.Current = o.name
	w, err := o.openWriter(o.task.Context())
	if err != nil {
		return err
	}
	o.w = w
	if t, ok := w.(TxnWriter); ok && o.checkpointing {
		o.txn = t
		if err := t.Begin(o.attempt, o.restored); err != nil {
			return err
		}
	}
	if f, ok := w.(Flusher); ok {
		o.task.Flushes = append(o.task.Flushes, func() {
			o.task.Current = o.name
			if err := f.Flush(); err != nil {
				o.task.Fail(err)
			}
		})
	}
	return nil
}

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
	if err == nil && o.txn != nil {
		if cerr := o.commitAll(); cerr != nil {
			return errors.Join(cerr, w.Close(cerr))
		}
	}
	return w.Close(err)
}
