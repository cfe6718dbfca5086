package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// Reader reads a source subtask's records: the method set of
// spate.SourceReader.
type Reader[T any] interface {
	Read(ctx context.Context, buf []T) (n int, err error)
	Close() error
}

// readBatch is how many records a source asks its reader for at once.
const readBatch = 256

// NewSource makes a source operator instance: open opens the subtask's
// reader (resuming the splits of restore when the subtask restores a
// checkpoint; nil otherwise), whose records get timestamps and watermarks
// by strategy. A read
// error other than io.EOF goes to readError, which returns nil if the
// error was a malformed record it routed elsewhere (the source reads on),
// or the error that fails the subtask. unionSplits gives a reader
// restored at another parallelism every old reader's splits rather than
// a share (spate.UnionSplits).
func NewSource[T any](in *Instance, open func(ctx context.Context, restore *Restore) (Reader[T], error), strategy Strategy[T], readError func(error) error, unionSplits bool) (*Spec, error) {
	r, err := newStrategyRun(in, strategy)
	if err != nil {
		return nil, err
	}
	op := &sourceOp[T]{task: in.Task, name: in.Name, open: open, strategy: r, readError: readError, unionSplits: unionSplits}
	return &Spec{Source: op.run, Close: op.close, State: op}, nil
}

type sourceOp[T any] struct {
	task      *exec.Task
	name      string
	open      func(ctx context.Context, restore *Restore) (Reader[T], error)
	strategy  *strategyRun[T]
	reader    Reader[T]
	readError func(error) error
	// restore is the restored checkpoint's state, nil on a fresh start;
	// finished tells that the source had ended.
	restore  *Restore
	finished bool
	// unionSplits: at another parallelism every reader restores every
	// split (see Distribution).
	unionSplits bool
	// checkpoints tells a CheckpointListener reader of completed ones.
	checkpoints sourceCheckpoints
}

// run reads records until the reader's io.EOF, or ctx's end. Between
// reads it fires due processing-time timers; when the reader has nothing,
// it flushes the outputs and waits a moment for a timer.
func (o *sourceOp[T]) run(ctx context.Context) error {
	o.task.Current = o.name
	if o.finished {
		// Restored after it had ended: nothing more to read.
		o.strategy.wm.EmitWatermark(exec.MaxWatermark)
		o.strategy.wm.out.Finish()
		return nil
	}
	r, err := o.open(ctx, o.restore)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	o.reader = r
	if l, ok := r.(CheckpointListener); ok {
		o.checkpoints.setListener(l)
	}
	run := o.strategy
	out := run.wm.out
	buf := make([]T, readBatch)
	// A reader that tells each record's timestamp and split gets them
	// used, and per-split watermarks.
	er, _ := r.(EventReader[T])
	var events []SourceEvent
	if er != nil {
		events = make([]SourceEvent, readBatch)
		run.perSplit = run.gen != nil
	}
	// A reader that knows what it has left tells it (pendingRecords,
	// pendingBytes).
	pending, _ := r.(interface{ Pending() (records, bytes int64) })
	run.start()
	defer run.stop()
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		o.task.Current = o.name
		var n int
		if er != nil {
			n, err = er.ReadEvents(ctx, buf, events)
			if run.perSplit {
				run.growSplits(er.Splits())
			}
		} else {
			n, err = r.Read(ctx, buf)
		}
		if n > 0 {
			run.active(n)
		}
		switch {
		case er != nil:
			// Current names the source at the start of each turn: set
			// before the read, and again after each Collect.
			for i := 0; i < n; i++ {
				ts := run.timestamp(buf[i], events[i].Timestamp)
				out.Collect(buf[i], ts)
				o.task.Current = o.name
				if run.perSplit {
					run.observeSplit(buf[i], ts, events[i].Split)
				} else {
					run.observe(buf[i], ts)
				}
			}
		case run.perRecord():
			for i := 0; i < n; i++ {
				ts := run.timestamp(buf[i], exec.NoTimestamp)
				out.Collect(buf[i], ts)
				o.task.Current = o.name
				run.observe(buf[i], ts)
			}
		default:
			for i := 0; i < n; i++ {
				out.Collect(buf[i], exec.NoTimestamp)
			}
		}
		o.task.Current = o.name // chained operators ran; what follows is the source's
		if !errors.Is(err, io.EOF) {
			// Between reads the reader's position matches what was
			// emitted: where a barrier goes.
			o.task.PollCheckpoint()
		}
		o.task.PublishMetrics()
		if pending != nil {
			o.task.M.SetPending(pending.Pending())
		}
		o.task.FireProcTimers()
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			o.finished = true
			run.stop()
			run.wm.EmitWatermark(exec.MaxWatermark)
			out.Finish()
			return nil
		default:
			if err := o.readError(err); err != nil {
				return err
			}
			continue
		}
		if n > 0 {
			continue
		}
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
