package spate

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/spate-dev/spate/internal/operator"
)

// Checkpoints (execution.checkpointing.interval): sources that can rewind
// and sinks that commit in two phases.
//
// A source takes part through its reader: a CheckpointedReader tells, at
// every barrier, the splits it reads and its position in each; a
// RestorableSource opens a reader that resumes them. Splits are the unit
// of a source's work (a file, a range of a generator), as in Flink's
// FLIP-27, and what a later rescale redistributes among the readers. A
// source whose reader cannot tell its position fails every checkpoint.
//
// A sink is exactly-once when its writer is a TransactionalSinkWriter (see
// docs/sinks.md for the contract); any other writer gets every record at
// least once.

// SplitState is one split of a source and a reader's position in it.
type SplitState = operator.SplitState

// CheckpointedReader is a SourceReader whose position can be checkpointed.
type CheckpointedReader[T any] interface {
	SourceReader[T]
	// SnapshotSplits returns the reader's splits and its position in
	// each, after the records Read returned so far. It is called between
	// Reads; the positions are copied.
	SnapshotSplits() ([]SplitState, error)
}

// RestorableSource is a Source whose readers can resume from a checkpoint.
type RestorableSource[T any] interface {
	Source[T]
	// Restore opens the reader of split's subtask resuming splits, the
	// split states its reader had at the restored checkpoint: each
	// continues right after the last record emitted before it.
	Restore(ctx context.Context, split Split, splits []SplitState) (SourceReader[T], error)
}

// SourceEvent is what an EventReader tells of one record besides its
// value: its event timestamp from the source and the split it came from.
type SourceEvent = operator.SourceEvent

// EventReader is a SourceReader whose records carry an event timestamp
// from their source (a Kafka record's) and the index of their split.
// The runtime then stamps each record with that timestamp (a timestamp
// assigner receives it as the previous one) and, with a watermark
// strategy, runs a watermark generator per split: the subtask's
// watermark is the least of its splits', and with WithIdleness a split
// without records for the timeout stops holding it back, as with
// Flink's per-split watermarks.
type EventReader[T any] interface {
	SourceReader[T]
	// ReadEvents is Read that also fills events[i] for each buf[i].
	ReadEvents(ctx context.Context, buf []T, events []SourceEvent) (n int, err error)
	// Splits returns how many splits the reader has; their indexes are
	// [0, Splits()), and a split once counted stays.
	Splits() int
}

// CheckpointListener is a SourceReader that hears when a checkpoint
// completes: NotifyCheckpointComplete(id, splits) gets the splits the
// reader had in checkpoint id. It may run on any goroutine,
// concurrently with Read; an error is logged, not fatal (a Kafka source
// commits its consumer group's offsets there, for monitoring).
type CheckpointListener = operator.CheckpointListener

// TransactionalSinkWriter is a SinkWriter that commits its output in two
// phases with checkpoints, for exactly-once results (Flink's Sink V2
// committer); see docs/sinks.md.
type TransactionalSinkWriter[T any] interface {
	SinkWriter[T]
	// Begin is called before the first Write when the job takes
	// checkpoints: the writer's output becomes visible only through
	// Commit from then on. attempt is the run's attempt (1, then one more
	// per restart), to name transactions by. restored holds, when the
	// subtask restores a checkpoint, the committables that checkpoint had
	// not seen committed: Begin commits them, and aborts anything else an
	// earlier attempt left open.
	Begin(attempt int64, restored [][]byte) error
	// PrepareCommit is called at every checkpoint's barrier: the writer
	// makes what it wrote since the last call durable but invisible
	// (flush, sync) and returns its committable, which the checkpoint
	// keeps; nil if there is nothing to commit.
	PrepareCommit(checkpoint int64) ([]byte, error)
	// Commit makes a committable's output visible, once its checkpoint
	// is complete; it may run on any goroutine, concurrently with Write,
	// and must be idempotent: after a restore, the same committable may
	// be committed again.
	Commit(committable []byte) error
}

// UnionCommittables is a Sink of TransactionalSinkWriters whose Begin,
// when the job restores a checkpoint at another parallelism, receives
// the pending committables of every old subtask (as Flink's union list
// state) instead of a share of them. A sink that names its transactions
// by subtask needs them all to restore safely: each writer commits the
// committables of the old subtasks it takes over, and only then aborts
// what those subtasks left open, so that no writer aborts a transaction
// another is about to commit.
type UnionCommittables interface {
	UnionCommittables()
}

// UnionSplits is a RestorableSource whose readers assign the splits to
// themselves, by a rule of the subtask and the parallelism (the Kafka
// source's readers each take the partitions Flink's enumerator would give
// them, and discover new ones by the same rule): when the job restores a
// checkpoint at another parallelism, each reader's Restore receives every
// old reader's splits instead of a share of them, keeps those the rule
// gives it, and knows the others for splits another reader resumes, not
// new ones to read from their start.
type UnionSplits interface {
	UnionSplits()
}

// openSource opens the reader of a source subtask, resuming restore's
// splits if it restores a checkpoint.
func openSource[T any](ctx context.Context, name string, src Source[T], split Split, restore *operator.Restore) (operator.Reader[T], error) {
	if restore == nil {
		return src.Open(ctx, split)
	}
	rs, ok := src.(RestorableSource[T])
	if !ok {
		return nil, fmt.Errorf("source %q cannot resume from a checkpoint: %T does not implement spate.RestorableSource", name, src)
	}
	return rs.Restore(ctx, split, restore.Splits)
}

// Splits of the slice source: one per subtask, positioned at the index of
// the next record.

func (r *sliceReader[T]) SnapshotSplits() ([]SplitState, error) {
	return []SplitState{{ID: fmt.Sprintf("slice/%d/%d", r.first, r.step), Position: binary.AppendUvarint(nil, uint64(r.next))}}, nil
}

func (s sliceSource[T]) Restore(_ context.Context, sp Split, splits []SplitState) (SourceReader[T], error) {
	r := &sliceReader[T]{recs: s, next: len(s), first: sp.Subtask, step: sp.Parallelism}
	for _, st := range splits {
		want := fmt.Sprintf("slice/%d/%d", sp.Subtask, sp.Parallelism)
		if st.ID != want {
			return nil, fmt.Errorf("slice source: split %q in the checkpoint, want %q (restoring at another parallelism is not supported by this source)", st.ID, want)
		}
		next, n := binary.Uvarint(st.Position)
		if n <= 0 || next > uint64(len(s)+sp.Parallelism) {
			return nil, fmt.Errorf("slice source: malformed position of split %q", st.ID)
		}
		r.next = int(next)
	}
	return r, nil
}
