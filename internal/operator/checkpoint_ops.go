package operator

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/snapshot"
)

// The snapshot.Operator of each operator with state.

var (
	_ snapshot.Operator  = (*keyedProcessOp[int, int, int])(nil)
	_ snapshot.Operator  = (*keyedCoOp[int, int, int, int])(nil)
	_ snapshot.Operator  = (*windowOp[int, int, int, int])(nil)
	_ snapshot.Operator  = (*reduceOp[int, int])(nil)
	_ snapshot.Operator  = (*sourceOp[int])(nil)
	_ snapshot.Operator  = (*sinkOp[int])(nil)
	_ snapshot.Committer = (*sinkOp[int])(nil)
	_ snapshot.Committer = (*sourceOp[int])(nil)
	// At another parallelism a source's splits are dealt out; a sink's
	// pending committables are split too (any writer may commit any
	// committable: Commit is idempotent), unless the sink asks for all.
	_ snapshot.Distributor = (*sourceOp[int])(nil)
	_ snapshot.Distributor = (*sinkOp[int])(nil)
	// The keyed operators' state is all keyed: a rescale reads only the
	// old state files that hold their key groups, unless their chain has
	// operator state too.
	_ snapshot.KeyedOnly = (*keyedProcessOp[int, int, int])(nil)
	_ snapshot.KeyedOnly = (*keyedCoOp[int, int, int, int])(nil)
	_ snapshot.KeyedOnly = (*windowOp[int, int, int, int])(nil)
	_ snapshot.KeyedOnly = (*reduceOp[int, int])(nil)
)

// KeyedOnly implements snapshot.KeyedOnly.
func (o *keyedProcessOp[K, T, O]) KeyedOnly() {}

// KeyedOnly implements snapshot.KeyedOnly.
func (o *keyedCoOp[K, A, B, O]) KeyedOnly() {}

// KeyedOnly implements snapshot.KeyedOnly.
func (o *windowOp[K, T, A, O]) KeyedOnly() {}

// KeyedOnly implements snapshot.KeyedOnly.
func (o *reduceOp[K, T]) KeyedOnly() {}

func unknownEntries(es []snapshot.Entry) error {
	if len(es) == 0 {
		return nil
	}
	return fmt.Errorf("the checkpoint holds state %q this operator does not have", es[0].Name)
}

// SnapshotState implements snapshot.Operator.
func (o *keyedProcessOp[K, T, O]) SnapshotState(int64) (func() ([]snapshot.Entry, error), error) {
	return o.ctx.snapshotKeyed()
}

// RestoreState implements snapshot.Operator.
func (o *keyedProcessOp[K, T, O]) RestoreState(es []snapshot.Entry) error {
	rest, err := o.ctx.restoreKeyed(es)
	if err != nil {
		return err
	}
	return unknownEntries(rest)
}

// SnapshotState implements snapshot.Operator.
func (o *keyedCoOp[K, A, B, O]) SnapshotState(int64) (func() ([]snapshot.Entry, error), error) {
	return o.ctx.snapshotKeyed()
}

// RestoreState implements snapshot.Operator.
func (o *keyedCoOp[K, A, B, O]) RestoreState(es []snapshot.Entry) error {
	rest, err := o.ctx.restoreKeyed(es)
	if err != nil {
		return err
	}
	return unknownEntries(rest)
}

// SnapshotState implements snapshot.Operator: the rolling aggregate of
// every key.
func (o *reduceOp[K, T]) SnapshotState(int64) (func() ([]snapshot.Entry, error), error) {
	vc := newValueCoder[T]()
	if err := check(o.kc, vc); err != nil {
		return nil, err
	}
	acc, release := o.acc.freeze()
	return func() ([]snapshot.Entry, error) {
		defer release()
		g := o.kc.groups()
		for k, v := range acc {
			vc.put(g.record(k, Window{}), v)
		}
		return g.entries("reduce/acc"), nil
	}, nil
}

// RestoreState implements snapshot.Operator.
func (o *reduceOp[K, T]) RestoreState(es []snapshot.Entry) error {
	vc := newValueCoder[T]()
	for _, e := range es {
		if e.Name != "reduce/acc" {
			return unknownEntries([]snapshot.Entry{e})
		}
		if err := o.kc.records(e, func(k K, _ Window, r *snapshot.Reader) error {
			v, err := vc.get(r)
			o.acc.set(k, v)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// SnapshotState implements snapshot.Operator: the window contents
// (accumulators), the session windows and count-window buffers per key,
// the timers (the triggers: a window fires and is purged by its timers)
// and the window function's state.
func (o *windowOp[K, T, A, O]) SnapshotState(int64) (func() ([]snapshot.Entry, error), error) {
	kc := o.ctx.rt.kc
	ac, tc := newValueCoder[A](), newValueCoder[T]()
	if !o.acc.empty() {
		if err := check(kc, ac); err != nil {
			return nil, fmt.Errorf("window contents: %w", err)
		}
	}
	if len(o.counts) > 0 {
		if err := check(kc, tc); err != nil {
			return nil, fmt.Errorf("count windows: %w", err)
		}
	}
	acc, release := o.acc.freeze()
	sessions := make(map[K][]Window, len(o.sessions))
	for k, ws := range o.sessions {
		sessions[k] = slices.Clone(ws)
	}
	counts := make(map[K]countState[T], len(o.counts))
	for k, st := range o.counts {
		counts[k] = countState[T]{recs: slices.Clone(st.recs), seen: st.seen}
	}
	return o.ctx.snapshotKeyed(func() ([]snapshot.Entry, error) {
		defer release()
		g := kc.groups()
		for sc, a := range acc {
			ac.put(g.record(sc.key, sc.ns), a)
		}
		es := g.entries("w/acc")
		g = kc.groups()
		for k, ws := range sessions {
			b := g.record(k, Window{})
			b.Uint(uint64(len(ws)))
			for _, w := range ws {
				b.Int(w.Start)
				b.Int(w.End)
			}
		}
		es = append(es, g.entries("w/sessions")...)
		g = kc.groups()
		for k, st := range counts {
			b := g.record(k, Window{})
			b.Int(st.seen)
			b.Uint(uint64(len(st.recs)))
			for _, r := range st.recs {
				tc.put(b, r)
			}
		}
		return append(es, g.entries("w/counts")...), nil
	})
}

// RestoreState implements snapshot.Operator.
func (o *windowOp[K, T, A, O]) RestoreState(es []snapshot.Entry) error {
	rest, err := o.ctx.restoreKeyed(es)
	if err != nil {
		return err
	}
	kc := o.ctx.rt.kc
	ac, tc := newValueCoder[A](), newValueCoder[T]()
	for _, e := range rest {
		var f func(k K, ns Window, r *snapshot.Reader) error
		switch e.Name {
		case "w/acc":
			f = func(k K, ns Window, r *snapshot.Reader) error {
				a, err := ac.get(r)
				o.acc.set(scope[K]{key: k, ns: ns}, a)
				return err
			}
		case "w/sessions":
			f = func(k K, _ Window, r *snapshot.Reader) error {
				ws := make([]Window, r.Len())
				for i := range ws {
					ws[i] = Window{Start: r.Int(), End: r.Int()}
				}
				o.sessions[k] = ws
				return r.Err
			}
		case "w/counts":
			f = func(k K, _ Window, r *snapshot.Reader) error {
				st := &countState[T]{seen: r.Int()}
				st.recs = make([]T, r.Len())
				for i := range st.recs {
					v, err := tc.get(r)
					if err != nil {
						return err
					}
					st.recs[i] = v
				}
				o.counts[k] = st
				return r.Err
			}
		default:
			return unknownEntries([]snapshot.Entry{e})
		}
		if err := kc.records(e, f); err != nil {
			return err
		}
	}
	return nil
}

// SplitState is one split of a source with a reader's position in it, as
// Flink's FLIP-27 splits: the unit a source's work is divided in, and what
// a rescale redistributes among the readers.
type SplitState struct {
	// ID names the split within its source (a file's path, a generator's
	// range), the same in every run of the job.
	ID string
	// Position is where the reader stands in the split, after the records
	// it returned so far, in the source's own encoding.
	Position []byte
}

// SplitReader is a Reader whose position can be checkpointed: it says, at
// any point between two Reads, which splits it reads and where it stands
// in each.
type SplitReader interface {
	SnapshotSplits() ([]SplitState, error)
}

// Restore is what a source subtask restores: the splits of its reader.
type Restore struct {
	Splits []SplitState
}

// SnapshotState implements snapshot.Operator: the splits of the reader and
// the positions in them after the records emitted so far; a source that
// has finished only that.
func (o *sourceOp[T]) SnapshotState(id int64) (func() ([]snapshot.Entry, error), error) {
	if id == exec.EndOfInput || o.finished {
		return func() ([]snapshot.Entry, error) {
			return []snapshot.Entry{{Name: "source/finished", KeyGroup: snapshot.NoKeyGroup}}, nil
		}, nil
	}
	sr, ok := o.reader.(SplitReader)
	if !ok {
		return nil, fmt.Errorf("source %s cannot be checkpointed: its reader %T does not tell its position (implement spate.CheckpointedReader), so a restore could not resume it", o.name, o.reader)
	}
	splits, err := sr.SnapshotSplits()
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", o.name, err)
	}
	for i := range splits {
		splits[i].Position = slices.Clone(splits[i].Position)
	}
	if id != exec.EndOfInput {
		o.checkpoints.taken(id, splits)
	}
	return func() ([]snapshot.Entry, error) {
		es := make([]snapshot.Entry, len(splits))
		for i, s := range splits {
			var b snapshot.Buffer
			b.String(s.ID)
			b.Bytes(s.Position)
			es[i] = snapshot.Entry{Name: "source/split", KeyGroup: snapshot.NoKeyGroup, Data: b.B}
		}
		if len(es) == 0 {
			// A reader without splits (it read them all) restores as one.
			es = append(es, snapshot.Entry{Name: "source/none", KeyGroup: snapshot.NoKeyGroup})
		}
		return es, nil
	}, nil
}

// Distribution implements snapshot.Distributor: at another parallelism
// the splits are dealt out evenly among the readers (a reader without one
// reads nothing), or, for a source that assigns its splits to readers
// itself (spate.UnionSplits), given to every reader; the marks that a
// reader had none, or had finished, are its own.
func (o *sourceOp[T]) Distribution(name string) snapshot.Distribution {
	switch {
	case name == "source/split" && o.unionSplits:
		return snapshot.Union
	case name == "source/split":
		return snapshot.Split
	}
	return snapshot.Dropped
}

// RestoreState implements snapshot.Operator.
func (o *sourceOp[T]) RestoreState(es []snapshot.Entry) error {
	o.restore = &Restore{}
	for _, e := range es {
		switch e.Name {
		case "source/finished":
			o.finished = true
		case "source/none":
		case "source/split":
			r := snapshot.NewReader(e.Data)
			s := SplitState{ID: r.String(), Position: slices.Clone(r.Bytes())}
			if err := r.Done(); err != nil {
				return fmt.Errorf("source %s: split state: %w", o.name, err)
			}
			o.restore.Splits = append(o.restore.Splits, s)
		default:
			return unknownEntries([]snapshot.Entry{e})
		}
	}
	return nil
}

// CommitCheckpoint implements snapshot.Committer: a CheckpointListener
// reader hears that checkpoint id completed, with its splits then. Its
// failure is logged: what it does is for monitoring (a Kafka source
// commits its group's offsets), not part of the checkpoint.
func (o *sourceOp[T]) CommitCheckpoint(id int64) error {
	l, t := o.checkpoints.complete(id)
	if l == nil || t == nil {
		return nil
	}
	if err := l.NotifyCheckpointComplete(t.id, t.splits); err != nil {
		slog.Warn("source could not act on a completed checkpoint", "source", o.name, "checkpoint", t.id, "err", err)
	}
	return nil
}

// AbortCheckpoint implements snapshot.Committer.
func (o *sourceOp[T]) AbortCheckpoint(id int64) { o.checkpoints.abort(id) }

// TxnWriter is a Writer that commits in two phases with checkpoints: the
// method set of spate.TransactionalSinkWriter (see docs/sinks.md).
type TxnWriter interface {
	Begin(attempt int64, restored [][]byte) error
	PrepareCommit(checkpoint int64) ([]byte, error)
	Commit(committable []byte) error
}

// pendingTxn is a committable waiting for its checkpoint to complete.
type pendingTxn struct {
	checkpoint int64
	c          []byte
}

// SnapshotState implements snapshot.Operator: a transactional writer
// pre-commits, and the committables not committed yet are the state.
func (o *sinkOp[T]) SnapshotState(id int64) (func() ([]snapshot.Entry, error), error) {
	if o.txn == nil {
		return func() ([]snapshot.Entry, error) { return nil, nil }, nil
	}
	o.task.Current = o.name
	c, err := o.txn.PrepareCommit(id)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	if c != nil {
		o.mu.pending = append(o.mu.pending, pendingTxn{checkpoint: id, c: c})
	}
	all := slices.Clone(o.mu.pending)
	o.mu.Unlock()
	return func() ([]snapshot.Entry, error) {
		es := make([]snapshot.Entry, len(all))
		for i, p := range all {
			es[i] = snapshot.Entry{Name: "sink/committable", KeyGroup: snapshot.NoKeyGroup, Data: p.c}
		}
		return es, nil
	}, nil
}

// RestoreState implements snapshot.Operator: the committables go to the
// writer's Begin, which commits them.
func (o *sinkOp[T]) RestoreState(es []snapshot.Entry) error {
	o.restored = [][]byte{}
	for _, e := range es {
		if e.Name != "sink/committable" {
			return unknownEntries([]snapshot.Entry{e})
		}
		o.restored = append(o.restored, slices.Clone(e.Data))
	}
	return nil
}

// Distribution implements snapshot.Distributor: at another parallelism
// the pending committables are dealt out among the writers, or, for a
// sink that names its transactions by subtask (spate.UnionCommittables),
// given to every writer, which commits those it takes over and aborts
// what their old subtasks left open.
func (o *sinkOp[T]) Distribution(string) snapshot.Distribution {
	if o.unionCommittables {
		return snapshot.Union
	}
	return snapshot.Split
}

// CommitCheckpoint implements snapshot.Committer: it commits the
// committables of checkpoint id and the earlier ones.
func (o *sinkOp[T]) CommitCheckpoint(id int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	keep := o.mu.pending[:0]
	var first error
	for _, p := range o.mu.pending {
		if p.checkpoint == exec.EndOfInput || p.checkpoint > id || first != nil {
			keep = append(keep, p)
			continue
		}
		if err := o.txn.Commit(p.c); err != nil {
			first = fmt.Errorf("sink %s: commit checkpoint %d: %w", o.name, p.checkpoint, err)
			keep = append(keep, p)
		}
	}
	o.mu.pending = keep
	return first
}

// AbortCheckpoint implements snapshot.Committer. What was pre-committed
// for an aborted checkpoint stays pending: the next checkpoint that
// completes commits it.
func (o *sinkOp[T]) AbortCheckpoint(int64) {}

// commitAll commits every pending committable, at the job's successful end.
func (o *sinkOp[T]) commitAll() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, p := range o.mu.pending {
		if err := o.txn.Commit(p.c); err != nil {
			o.mu.pending = o.mu.pending[i:]
			return fmt.Errorf("sink %s: commit at the end of the job: %w", o.name, err)
		}
	}
	o.mu.pending = nil
	return nil
}
