package exec

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Checkpointing connects a task to checkpoints. The zero value leaves them
// off: barriers that arrive anyway are passed on without a snapshot.
//
// A checkpoint's barrier enters the job at the sources (TriggerCheckpoint)
// and travels in band, in the same queues and frames as records and
// watermarks. A task with inputs takes its snapshot when the barrier has
// come in on every input channel that has not ended (an ended channel has
// delivered every later barrier), then sends the barrier on through every
// outgoing channel:
//
//	               barrier n on channel c
//	idle ─────────────────────────────────────► aligning n (c blocked if Aligned)
//	 ▲                                              │  │
//	 │  snapshot(n), barrier n sent on,             │  │ barrier m > n on a channel:
//	 │  blocked channels replayed                   │  │ abort(n), aligning m
//	 └──── barrier n on every open channel ◄────────┘  ▼
//
// With Aligned (EXACTLY_ONCE) a channel that delivered the barrier is
// blocked: what it sends afterwards is held in the task, in order, until the
// checkpoint's snapshot is taken, so the snapshot holds exactly the records
// before the barrier. The task keeps reading its inbox meanwhile, so a
// blocked channel never stops the credits of the data plane or the other
// channels of the shared inbox (no deadlock); what it holds is what the
// blocked producers send before the last barrier arrives, up to
// MaxAlignedBytes: past it the task gives the checkpoint up (Abort with an
// error wrapping ErrAlignmentLimit) and processes what it held, as Flink's
// task.checkpoint.alignment.max-size did. Without Aligned (AT_LEAST_ONCE)
// nothing is held: records after a barrier may reach the snapshot, and are
// replayed after a restore.
type Checkpointing struct {
	// Aligned aligns barriers of tasks with several input channels
	// (EXACTLY_ONCE); false is AT_LEAST_ONCE.
	Aligned bool
	// MaxAlignedBytes bounds what an alignment holds (encoded batches by
	// their length, local ones by their records' shallow size); 0 is no
	// bound.
	MaxAlignedBytes int64
	// Snapshot is called on the task's goroutine at checkpoint id's
	// barrier, before the barrier is sent on: it captures the state of the
	// task's operators. What takes long (writing the state out, the
	// acknowledgement) it must leave to another goroutine, since records
	// wait meanwhile. It is also called once with id EndOfInput when the
	// task has finished its input: its final state stands for every later
	// checkpoint.
	Snapshot func(id int64)
	// Abort, if set, is called on the task's goroutine when the task gives
	// up checkpoint id before its snapshot: cause is nil when a later
	// checkpoint's barrier overtook it, and wraps ErrAlignmentLimit when
	// the alignment held more than MaxAlignedBytes.
	Abort func(id int64, cause error)
}

// ErrAlignmentLimit is why a task gave a checkpoint up whose barrier
// alignment held more than Checkpointing.MaxAlignedBytes; the error is an
// *AlignmentLimitError.
var ErrAlignmentLimit = errors.New("barrier alignment over its limit")

// AlignmentLimitError tells of a checkpoint given up because its barrier
// alignment held Held bytes, over Limit.
type AlignmentLimitError struct {
	Task        string
	Checkpoint  int64
	Held, Limit int64
}

func (e *AlignmentLimitError) Error() string {
	return fmt.Sprintf("%v: %s gave up checkpoint %d, having held %d bytes of its blocked input channels, more than the limit of %d bytes (task.checkpoint.alignment.max-size), waiting for the barriers of its other inputs; raise the limit, or use execution.checkpointing.mode AT_LEAST_ONCE", ErrAlignmentLimit, e.Task, e.Checkpoint, e.Held, e.Limit)
}

func (e *AlignmentLimitError) Unwrap() error { return ErrAlignmentLimit }

// EndOfInput is the checkpoint ID Checkpointing.Snapshot is called with when
// the task has finished: checkpoint IDs start at 1.
const EndOfInput int64 = 0

// triggers holds the checkpoints triggered at a source task and not yet
// injected.
type triggers struct {
	pending atomic.Bool
	mu      sync.Mutex
	ids     []int64
	wake    chan struct{} // cap 1
}

// TriggerCheckpoint asks a source task to inject the barrier of checkpoint
// id at its next consistent point (PollCheckpoint): it snapshots its state
// and sends the barrier on. Any goroutine may call it; a task that has
// ended ignores it.
func (t *Task) TriggerCheckpoint(id int64) {
	t.trig.mu.Lock()
	t.trig.ids = append(t.trig.ids, id)
	t.trig.mu.Unlock()
	t.trig.pending.Store(true)
	select {
	case t.trigWake() <- struct{}{}:
	default:
	}
}

func (t *Task) trigWake() chan struct{} {
	t.trig.mu.Lock()
	defer t.trig.mu.Unlock()
	if t.trig.wake == nil {
		t.trig.wake = make(chan struct{}, 1)
	}
	return t.trig.wake
}

// PollCheckpoint injects the barriers of the checkpoints triggered since the
// last call. A source calls it between records, where its position is
// consistent with what it has emitted; it costs an atomic load when nothing
// is pending.
func (t *Task) PollCheckpoint() {
	if !t.trig.pending.Load() {
		return
	}
	t.trig.mu.Lock()
	ids := t.trig.ids
	t.trig.ids = nil
	t.trig.pending.Store(false)
	t.trig.mu.Unlock()
	for _, id := range ids {
		if id <= t.lastBarrier {
			continue
		}
		t.checkpointAt(id)
	}
}

// checkpointAt snapshots the task at checkpoint id's barrier and sends the
// barrier on.
func (t *Task) checkpointAt(id int64) {
	t.lastBarrier = id
	if t.Checkpoint.Snapshot != nil {
		t.Snapshot(id)
	}
	for _, w := range t.writers {
		w.barrier(id)
	}
}

// Snapshot calls the task's snapshot hook for checkpoint id, naming the
// hook in a panic.
func (t *Task) Snapshot(id int64) {
	cur := t.Current
	t.Current = t.Name + " (snapshot)"
	t.Checkpoint.Snapshot(id)
	t.Current = cur
}

// alignment is the barrier state of a task's input loop.
type alignment struct {
	aligned bool
	// pending is the checkpoint whose barriers are being collected, 0 if
	// none; seen marks the channels that delivered its barrier.
	pending int64
	seen    []bool
	nseen   int
	// held keeps, per blocked channel, what it sent after the barrier;
	// heldBytes is its size, limit the bound on it (0: none).
	held      [][]Msg
	heldBytes int64
	limit     int64
	// replay is what the loop processes before it reads the inbox again:
	// held messages released by a snapshot or an abort.
	replay []Msg
	// started is when the pending checkpoint's first barrier came.
	started time.Time
}

// Alignment returns how long the task's last checkpoint took from its
// first barrier to its snapshot (the barrier alignment of a task with
// several inputs; 0 for a source). Only the task's goroutine may call it,
// as its snapshot hook does.
func (t *Task) Alignment() time.Duration { return t.alignment }

func newAlignment(cp Checkpointing, channels int) *alignment {
	return &alignment{aligned: cp.Aligned, limit: cp.MaxAlignedBytes, seen: make([]bool, channels), held: make([][]Msg, channels)}
}

// next returns the next message to replay, if any.
func (a *alignment) next() (Msg, bool) {
	if len(a.replay) == 0 {
		return Msg{}, false
	}
	m := a.replay[0]
	a.replay[0] = Msg{}
	a.replay = a.replay[1:]
	if len(a.replay) == 0 {
		a.replay = nil
	}
	return m, true
}

// hold keeps m if its channel is blocked and reports whether it did.
func (a *alignment) hold(m Msg) bool {
	if !a.aligned || a.pending == 0 || !a.seen[m.Channel] {
		return false
	}
	a.held[m.Channel] = append(a.held[m.Channel], m)
	if a.limit > 0 {
		a.heldBytes += msgSize(m)
	}
	return true
}

// overLimit reports whether the alignment holds more than its limit.
func (a *alignment) overLimit() bool { return a.limit > 0 && a.heldBytes > a.limit }

// msgSize is what a held message costs: an encoded batch's bytes, a local
// batch's records (shallow, their pointers' targets not counted), and the
// message itself.
func msgSize(m Msg) int64 {
	n := int64(unsafe.Sizeof(m))
	switch b := m.Batch.(type) {
	case nil:
	case []byte:
		n += int64(len(b))
	default:
		if v := reflect.ValueOf(b); v.Kind() == reflect.Slice {
			n += int64(v.Len()) * int64(v.Type().Elem().Size())
		}
	}
	return n
}

// release ends the alignment: the held messages go before what was still
// to replay, each channel's in order.
func (a *alignment) release() {
	var r []Msg
	for c := range a.held {
		r = append(r, a.held[c]...)
		a.held[c] = nil
	}
	a.heldBytes = 0
	if len(r) > 0 {
		a.replay = append(r, a.replay...)
	}
	clear(a.seen)
	a.nseen = 0
	a.pending = 0
}

// barrier handles checkpoint id's barrier on channel c, with open channels
// not ended.
func (t *Task) barrier(a *alignment, c int32, id int64, open int) {
	switch {
	case id <= t.lastBarrier:
		// A checkpoint already taken or given up: its barrier on a
		// channel that was not waited for.
		return
	case a.pending != 0 && id > a.pending:
		t.abortAlignment(a, nil)
	}
	if a.pending == 0 {
		a.pending, a.started = id, time.Now()
	}
	if !a.seen[c] {
		a.seen[c] = true
		a.nseen++
	}
	t.completeAlignment(a, open)
}

// completeAlignment takes the pending checkpoint's snapshot once every open
// channel delivered its barrier.
func (t *Task) completeAlignment(a *alignment, open int) {
	if a.pending == 0 || a.nseen < open {
		return
	}
	id := a.pending
	t.alignment = time.Since(a.started)
	a.release()
	t.checkpointAt(id)
}

// abortAlignment gives up the pending checkpoint, for cause (nil: a later
// barrier overtook it); its barriers still to come are ignored.
func (t *Task) abortAlignment(a *alignment, cause error) {
	id := a.pending
	a.release()
	t.lastBarrier = id
	if t.Checkpoint.Abort != nil {
		t.Checkpoint.Abort(id, cause)
	}
}

// abortOverLimit gives up the pending checkpoint, whose alignment holds
// more than its limit.
func (t *Task) abortOverLimit(a *alignment) {
	t.abortAlignment(a, &AlignmentLimitError{Task: t.Name, Checkpoint: a.pending, Held: a.heldBytes, Limit: a.limit})
}

// channelEnded updates the alignment for channel c's end: it no longer
// delivers barriers, so the pending checkpoint may be complete.
func (t *Task) channelEnded(a *alignment, c int32, open int) {
	if a.seen[c] {
		// Only without alignment: an aligned channel's END is held.
		a.seen[c] = false
		a.nseen--
	}
	t.completeAlignment(a, open)
}

// heldCount returns how many messages the alignment holds, for tests.
func (a *alignment) heldCount() int {
	n := 0
	for _, h := range a.held {
		n += len(h)
	}
	return n + len(a.replay)
}
