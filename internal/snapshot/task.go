package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/keygroup"
)

// Operator is an operator with state.
type Operator interface {
	// SnapshotState runs on the task's goroutine at checkpoint id's barrier
	// (exec.EndOfInput when the task finished). It captures the state, with
	// a copy cheap enough for the barrier's path, and returns what encodes
	// the capture into entries: that runs on another goroutine while
	// records flow, so it must not touch what the operator goes on
	// changing. The entries' Operator fields are filled in by the caller.
	SnapshotState(id int64) (func() ([]Entry, error), error)
	// RestoreState hands the operator its entries of the checkpoint the
	// task restores, before the task opens. It is not called when the
	// task starts empty.
	RestoreState(entries []Entry) error
}

// Committer is an operator whose output becomes visible in two phases (a
// transactional sink): it pre-commits in SnapshotState and commits once the
// checkpoint is complete. See docs/sinks.md.
type Committer interface {
	// CommitCheckpoint commits what was pre-committed for checkpoint id and
	// every earlier one not committed yet. It may run on any goroutine,
	// concurrently with the task, and must be idempotent.
	CommitCheckpoint(id int64) error
	// AbortCheckpoint drops what was pre-committed for checkpoint id alone:
	// it will never complete.
	AbortCheckpoint(id int64)
}

// Handle locates the state file of one subtask in a checkpoint.
type Handle struct {
	// URL is the file in checkpoint storage; empty when Inline holds the
	// bytes.
	URL    string
	Inline []byte
	// Size is the file's length and SHA256 the hex SHA-256 of its bytes.
	Size   int64
	SHA256 string
	// KeyGroups is the inclusive range of key groups the file's keyed
	// entries belong to.
	KeyGroups [2]int32
	// Remap, for a restore, says that the file holds the state of one
	// operator of the chain, Operator: all its entries (From < 0) or
	// those of StreamNode From. UID names the operator in errors. Without
	// Remap the file is a chain's, its entries under their own ids.
	Remap    bool
	Operator int32
	From     int32
	UID      string
}

// Store keeps state files. Implementations are safe for concurrent use.
type Store interface {
	// Put stores data, the state file name of checkpoint id, and returns
	// its handle.
	Put(ctx context.Context, id int64, name string, data []byte) (Handle, error)
	// Get returns the bytes h locates, checked against its SHA-256.
	Get(ctx context.Context, h Handle) ([]byte, error)
}

// InlineStore keeps state files in their handles: for the local executor
// and small state, where the coordinator holds the handles anyway.
type InlineStore struct{}

// Put returns a handle holding data.
func (InlineStore) Put(_ context.Context, _ int64, _ string, data []byte) (Handle, error) {
	return Handle{Inline: data, Size: int64(len(data)), SHA256: Sum(data)}, nil
}

// Get returns the handle's bytes, checked.
func (InlineStore) Get(_ context.Context, h Handle) ([]byte, error) {
	if h.URL != "" {
		return nil, fmt.Errorf("state file %s is not inline: this store reads inline state only", h.URL)
	}
	return h.Inline, Check(h, h.Inline)
}

// LocalStore keeps state files in their handles, as InlineStore, and
// reads them inline or at file:// URLs (a savepoint's, a retained
// checkpoint's), checked against their handles.
type LocalStore struct{}

// Put returns a handle holding data.
func (LocalStore) Put(ctx context.Context, id int64, name string, data []byte) (Handle, error) {
	return InlineStore{}.Put(ctx, id, name, data)
}

// Get returns the bytes h locates, checked.
func (LocalStore) Get(ctx context.Context, h Handle) ([]byte, error) {
	if h.URL == "" {
		return InlineStore{}.Get(ctx, h)
	}
	u, err := url.Parse(h.URL)
	if err != nil || u.Scheme != "file" {
		return nil, fmt.Errorf("state file %s: only file:// URLs can be read", h.URL)
	}
	data, err := os.ReadFile(u.Path)
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	return data, Check(h, data)
}

// Sum returns the hex SHA-256 of data.
func Sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// Check verifies that data is what h describes.
func Check(h Handle, data []byte) error {
	if int64(len(data)) != h.Size || Sum(data) != h.SHA256 {
		return fmt.Errorf("%w: state file %s has %d bytes with SHA-256 %s, its handle says %d bytes with %s", ErrCorrupt, h.name(), len(data), Sum(data), h.Size, h.SHA256)
	}
	return nil
}

func (h Handle) name() string {
	if h.URL != "" {
		return h.URL
	}
	return "(inline)"
}

// Ack is one subtask's acknowledgement of a checkpoint.
type Ack struct {
	Vertex, Subtask int
	// Checkpoint is the checkpoint's id, exec.EndOfInput for the final
	// state of a finished subtask.
	Checkpoint int64
	// State is the subtask's state file; none (Size 0) for a subtask
	// without state.
	State *Handle
	// After is, for the final state (Checkpoint exec.EndOfInput), the
	// last checkpoint the subtask took a snapshot of or gave up: the final
	// state stands for the checkpoints after it only.
	After int64
	// Sync is how long records stopped for the snapshot, Async how long
	// writing it took afterwards, Alignment how long the subtask aligned
	// the checkpoint's barriers before.
	Sync, Async, Alignment time.Duration
}

// ErrSubsumed is the cause of a decline because a later checkpoint's
// barrier overtook the checkpoint at a subtask: the checkpoint was given up
// upstream, which does not count as a failure of its own.
var ErrSubsumed = errors.New("a later checkpoint's barrier overtook it")

// Acker receives the acknowledgements and declines of a run's subtasks,
// from the run's goroutines.
type Acker interface {
	Acknowledge(a Ack)
	Decline(vertex, subtask int, id int64, err error)
}

// Runner owns the goroutines that write the snapshots of one run of a job's
// tasks in this process.
type Runner struct {
	ctx   context.Context
	store Store
	acker Acker
	name  func(vertex, subtask int, id int64) string

	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	commits []Committer
}

// NewRunner returns a runner writing to store and acknowledging to acker
// until ctx ends. name gives the file name of a subtask's state file.
func NewRunner(ctx context.Context, store Store, acker Acker, name func(vertex, subtask int, id int64) string) *Runner {
	if name == nil {
		name = func(v, s int, id int64) string { return fmt.Sprintf("%d-%d-chk-%d", v, s, id) }
	}
	return &Runner{ctx: ctx, store: store, acker: acker, name: name}
}

// Bind sets the store and acker of a runner made without them, before its
// tasks run.
func (r *Runner) Bind(store Store, acker Acker) {
	r.store, r.acker = store, acker
}

// Close waits for the snapshots being written; later ones are dropped.
func (r *Runner) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *Runner) goAsync(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
	return true
}

// CommitCheckpoint tells every committer of the run that checkpoint id is
// complete, and returns the first failure.
func (r *Runner) CommitCheckpoint(id int64) error {
	r.mu.Lock()
	cs := append([]Committer(nil), r.commits...)
	r.mu.Unlock()
	var errs []error
	for _, c := range cs {
		if err := c.CommitCheckpoint(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AbortCheckpoint tells every committer of the run that checkpoint id will
// not complete.
func (r *Runner) AbortCheckpoint(id int64) {
	r.mu.Lock()
	cs := append([]Committer(nil), r.commits...)
	r.mu.Unlock()
	for _, c := range cs {
		c.AbortCheckpoint(id)
	}
}

// TaskState is the state of one subtask: the operators of its chain that
// have state.
type TaskState struct {
	r               *Runner
	Vertex, Subtask int
	KeyGroups       [2]int32
	// parallelism and maxParallelism are the vertex's, for a restore at
	// another parallelism (KeyedTask); 0 when not told.
	parallelism, maxParallelism int
	ops                         []registered
	// last is the latest checkpoint snapshotted or given up, alignment
	// the task's barrier alignment before the snapshot being taken; only
	// the task's goroutine touches them.
	last      int64
	alignment time.Duration
}

type registered struct {
	id int32
	op Operator
}

// Task returns the state of subtask s of vertex v, whose keyed state covers
// key groups [kgStart, kgEnd).
func (r *Runner) Task(v, s, kgStart, kgEnd int) *TaskState {
	return &TaskState{r: r, Vertex: v, Subtask: s, KeyGroups: [2]int32{int32(kgStart), int32(kgEnd - 1)}}
}

// KeyedTask returns the state of subtask s of vertex v of parallelism p
// and max parallelism maxPar: its keyed state covers the key groups
// keygroup.Range gives it, and it can restore its share of state taken at
// another parallelism (RestoreShared).
func (r *Runner) KeyedTask(v, s, p, maxPar int) *TaskState {
	start, end := keygroup.Range(s, maxPar, p)
	t := r.Task(v, s, start, end)
	t.parallelism, t.maxParallelism = p, maxPar
	return t
}

// Add registers operator op, the chain's operator id.
func (t *TaskState) Add(id int32, op Operator) {
	t.ops = append(t.ops, registered{id: id, op: op})
	if c, ok := op.(Committer); ok {
		t.r.mu.Lock()
		t.r.commits = append(t.r.commits, c)
		t.r.mu.Unlock()
	}
}

// Empty reports whether no operator of the chain has state.
func (t *TaskState) Empty() bool { return len(t.ops) == 0 }

// Snapshot is the task's exec.Checkpointing.Snapshot: it captures every
// operator's state on the task's goroutine, then encodes, stores and
// acknowledges it on one of the runner's goroutines.
func (t *TaskState) Snapshot(id int64) {
	after := t.last
	if id != exec.EndOfInput {
		t.last = id
	}
	start := time.Now()
	encs := make([]func() ([]Entry, error), len(t.ops))
	for i, o := range t.ops {
		enc, err := o.op.SnapshotState(id)
		if err != nil {
			t.r.acker.Decline(t.Vertex, t.Subtask, id, fmt.Errorf("snapshot of operator %d: %w", o.id, err))
			return
		}
		encs[i] = enc
	}
	sync := time.Since(start)
	alignment := t.alignment
	t.r.goAsync(func() {
		astart := time.Now()
		ack := Ack{Vertex: t.Vertex, Subtask: t.Subtask, Checkpoint: id, After: after, Sync: sync, Alignment: alignment}
		if len(encs) > 0 {
			var all []Entry
			for i, enc := range encs {
				es, err := enc()
				if err != nil {
					t.r.acker.Decline(t.Vertex, t.Subtask, id, fmt.Errorf("encode the state of operator %d: %w", t.ops[i].id, err))
					return
				}
				for j := range es {
					es[j].Operator = t.ops[i].id
				}
				all = append(all, es...)
			}
			h, err := t.r.store.Put(t.r.ctx, id, t.r.name(t.Vertex, t.Subtask, id), Encode(nil, all))
			if err != nil {
				t.r.acker.Decline(t.Vertex, t.Subtask, id, fmt.Errorf("write state: %w", err))
				return
			}
			h.KeyGroups = t.KeyGroups
			ack.State = &h
		}
		ack.Async = time.Since(astart)
		t.r.acker.Acknowledge(ack)
	})
}

// Restore reads the subtask's state file h and hands each operator its
// entries.
func (t *TaskState) Restore(ctx context.Context, store Store, h Handle) error {
	data, err := store.Get(ctx, h)
	if err != nil {
		return fmt.Errorf("restore subtask %d of vertex %d: %w", t.Subtask, t.Vertex, err)
	}
	entries, err := Decode(data)
	if err != nil {
		return fmt.Errorf("restore subtask %d of vertex %d from %s: %w", t.Subtask, t.Vertex, h.name(), err)
	}
	if h.Remap {
		mine := h.remap(entries)
		for _, o := range t.ops {
			if o.id == h.Operator {
				if err := o.op.RestoreState(mine); err != nil {
					return fmt.Errorf("restore operator %d (uid %q) of subtask %d of vertex %d from %s: %w", o.id, h.UID, t.Subtask, t.Vertex, h.name(), err)
				}
				return nil
			}
		}
		if len(mine) == 0 {
			return nil
		}
		return fmt.Errorf("restore subtask %d of vertex %d: state of operator uid %q was assigned to operator %d, which has no state in this build", t.Subtask, t.Vertex, h.UID, h.Operator)
	}
	return t.restoreEntries(entries, h.name())
}

// remap returns the entries of entries that are the operator's whose
// state h locates, under its id in the chain (h.Remap set).
func (h Handle) remap(entries []Entry) []Entry {
	var mine []Entry
	for _, e := range entries {
		if h.From < 0 || e.Operator == h.From {
			e.Operator = h.Operator
			mine = append(mine, e)
		}
	}
	return mine
}

// restoreEntries hands each operator its entries, read from what.
func (t *TaskState) restoreEntries(entries []Entry, what string) error {
	byOp := map[int32][]Entry{}
	for _, e := range entries {
		byOp[e.Operator] = append(byOp[e.Operator], e)
	}
	for _, o := range t.ops {
		if err := o.op.RestoreState(byOp[o.id]); err != nil {
			return fmt.Errorf("restore operator %d of subtask %d of vertex %d from %s: %w", o.id, t.Subtask, t.Vertex, what, err)
		}
		delete(byOp, o.id)
	}
	for id := range byOp {
		return fmt.Errorf("restore subtask %d of vertex %d: the checkpoint holds state of operator %d, which the job no longer has (a changed job needs operator uids and a savepoint)", t.Subtask, t.Vertex, id)
	}
	return nil
}

// Hook returns the exec.Checkpointing of task, whose state t is, with
// barrier alignment (aligned) holding at most maxAligned bytes (0: no
// bound); abort, if not nil, hears of the checkpoints the task gave up and
// why: ErrSubsumed, or an error wrapping exec.ErrAlignmentLimit.
func (t *TaskState) Hook(task *exec.Task, aligned bool, maxAligned int64, abort func(id int64, cause error)) exec.Checkpointing {
	snap := func(id int64) {
		t.alignment = 0
		if id != exec.EndOfInput {
			t.alignment = task.Alignment()
		}
		t.Snapshot(id)
	}
	return exec.Checkpointing{Aligned: aligned, MaxAlignedBytes: maxAligned, Snapshot: snap, Abort: func(id int64, cause error) {
		t.last = max(t.last, id)
		if cause == nil {
			cause = ErrSubsumed
		}
		if abort != nil {
			abort(id, cause)
		}
	}}
}

// Kinds of state handles a restore is given besides a subtask's own state
// file (a chain's entries under their StreamNode ids): the state of one
// operator, restored as the operator Handle.Operator of the chain,
// whatever id the file names it by.
const (
	// KindOperator: every entry of the file is the operator's (a
	// savepoint's file, internal/savepoint).
	KindOperator = "operator"
	// kindChainPrefix + node: the entries of StreamNode node in a chain's
	// state file (a retained checkpoint restored by a changed job).
	kindChainPrefix = "chain/"
	// kindSharedPrefix + kind: a handle of kind given to every new
	// subtask of a vertex restored at another parallelism, each of which
	// restores its share of it (RestoreShared): a savepoint's operator
	// states restored at another parallelism. The bare checkpoint.KindShared
	// is a subtask's state file so shared.
	kindSharedPrefix = checkpoint.KindShared + "/"
)

// ChainKind is the kind of a handle that takes node's entries of a chain's
// state file.
func ChainKind(node int32) string { return kindChainPrefix + strconv.FormatInt(int64(node), 10) }

// SharedKind is the kind of a handle of kind (KindOperator, ChainKind)
// that every new subtask of a vertex restored at another parallelism is
// given, to restore its share of it (RestoreShared).
func SharedKind(kind string) string { return kindSharedPrefix + kind }

// Kind is what the kind of a restore handle says (ParseKind).
type Kind struct {
	// Shared: the handle is one of the files every new subtask of a
	// vertex restored at another parallelism is given, of which it
	// restores its share (RestoreShared); else the subtask restores the
	// file whole (Restore).
	Shared bool
	// Remap: the file holds the state of one operator, to be restored as
	// the chain's operator Handle.Operator: every entry (Whole) or those
	// of StreamNode From. Without Remap the file is a chain's, its
	// entries under their own ids.
	Remap, Whole bool
	From         int32
}

// ParseKind reads the kind of a restore handle: checkpoint.KindShared,
// KindOperator, ChainKind, either of those as SharedKind, or any other
// for a subtask's own state file.
func ParseKind(kind string) (Kind, error) {
	if kind == checkpoint.KindShared {
		return Kind{Shared: true}, nil
	}
	rest, shared := strings.CutPrefix(kind, kindSharedPrefix)
	if rest == KindOperator {
		return Kind{Shared: shared, Remap: true, Whole: true}, nil
	}
	node, found := strings.CutPrefix(rest, kindChainPrefix)
	if !found {
		if shared {
			return Kind{}, fmt.Errorf("state handle kind %q: want %s%s or %s%s<node id>", kind, kindSharedPrefix, KindOperator, kindSharedPrefix, kindChainPrefix)
		}
		return Kind{}, nil
	}
	n, err := strconv.ParseInt(node, 10, 32)
	if err != nil {
		return Kind{}, fmt.Errorf("state handle kind %q: want %s<node id>", kind, kindChainPrefix)
	}
	return Kind{Shared: shared, Remap: true, From: int32(n)}, nil
}

// Apply sets h's remapping as k says, to operator op of the chain (uid
// names it in errors).
func (k Kind) Apply(h Handle, op int32, uid string) Handle {
	if !k.Remap {
		return h
	}
	h.Remap, h.Operator, h.From, h.UID = true, op, k.From, uid
	if k.Whole {
		h.From = -1
	}
	return h
}
