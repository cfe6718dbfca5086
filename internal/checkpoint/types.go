package checkpoint

import (
	"fmt"
	"strings"
	"time"
)

// ID numbers a job's checkpoints, from 1, increasing across restarts.
type ID int64

// Subtask names one subtask of a job: Vertex is the vertex's index in the
// JobGraph, Index the subtask's parallel index.
type Subtask struct{ Vertex, Index int }

func (s Subtask) String() string { return fmt.Sprintf("%d/%d", s.Vertex, s.Index) }

// Mode is execution.checkpointing.mode.
type Mode int

// The modes.
const (
	// ExactlyOnce aligns barriers at subtasks with several inputs.
	ExactlyOnce Mode = iota
	// AtLeastOnce does not align them.
	AtLeastOnce
)

func (m Mode) String() string {
	if m == AtLeastOnce {
		return "AT_LEAST_ONCE"
	}
	return "EXACTLY_ONCE"
}

// Config is a job's checkpointing configuration (execution.checkpointing.*,
// state.checkpoints.num-retained).
type Config struct {
	// Interval between periodic checkpoints; 0 takes none.
	Interval time.Duration
	// Timeout after which a checkpoint not complete is aborted.
	Timeout time.Duration
	// MinPause is the least time from a checkpoint's completion to the
	// next trigger.
	MinPause time.Duration
	// MaxConcurrent is how many checkpoints may be pending at once.
	MaxConcurrent int
	// TolerableFailures is how many checkpoint failures in a row (of the
	// counted kinds, see Reason.Counts) the job survives; one more fails it.
	TolerableFailures int
	// Retained is how many completed checkpoints are kept.
	Retained int
	Mode     Mode
	// MaxAlignedBytes bounds what an EXACTLY_ONCE barrier alignment of
	// a subtask holds (task.checkpoint.alignment.max-size); 0 is no bound.
	MaxAlignedBytes int64
	// Retention is what becomes of the checkpoints as the job ends (the
	// JobManager's business).
	Retention Retention
}

// Vertex is what the coordinator knows of a JobGraph vertex.
type Vertex struct {
	// Name names the vertex in errors; may be empty.
	Name        string
	Parallelism int
	// MaxParallelism is the vertex's number of key groups
	// (pipeline.max-parallelism); 0 when unknown. Assign checks a restore
	// against it.
	MaxParallelism int
	Inputs         []Input
}

// Input is an edge into a vertex: from vertex From; Forward when subtask s
// reads only subtask s of From (equal parallelism), otherwise every
// subtask of From.
type Input struct {
	From    int
	Forward bool
}

// Handle is one piece of a subtask's state in a checkpoint (as
// rpcpb.StateHandle).
type Handle struct {
	Operator      int    `json:"operator"`
	OperatorUID   string `json:"operatorUid,omitempty"`
	Kind          string `json:"kind,omitempty"`
	URL           string `json:"url,omitempty"`
	Size          int64  `json:"size"`
	SHA256        string `json:"sha256,omitempty"`
	Inline        []byte `json:"inline,omitempty"`
	KeyGroupStart int    `json:"keyGroupStart,omitempty"`
	KeyGroupEnd   int    `json:"keyGroupEnd,omitempty"`
}

// SubtaskState is one subtask's part of a completed checkpoint.
type SubtaskState struct {
	Vertex  int   `json:"vertex"`
	Subtask int   `json:"subtask"`
	Attempt int64 `json:"attempt"`
	// Finished marks a subtask that had finished before the checkpoint: it
	// is not run again on restore.
	Finished bool     `json:"finished,omitempty"`
	States   []Handle `json:"states,omitempty"`
}

// Metadata describes a completed checkpoint: what its _metadata holds.
type Metadata struct {
	ID      ID    `json:"id"`
	Attempt int64 `json:"attempt"`
	// TimestampMs is the trigger's time, Unix milliseconds.
	TimestampMs int64          `json:"timestamp"`
	Subtasks    []SubtaskState `json:"subtasks"`
	// Operators name the operators whose state the subtasks' files hold:
	// the StreamNode ids in the files, with their uids, so that a
	// retained checkpoint can be restored by a changed job (matched by
	// uid). The JobManager fills them in; the coordinator leaves them
	// empty.
	Operators []OperatorRef `json:"operators,omitempty"`
}

// OperatorRef is one operator of the job a checkpoint was taken of.
type OperatorRef struct {
	Vertex int    `json:"vertex"`
	Node   int    `json:"node"`
	UID    string `json:"uid"`
	Name   string `json:"name,omitempty"`
	// MaxParallelism is the operator's number of key groups.
	MaxParallelism int `json:"maxParallelism,omitempty"`
}

// Size is the sum of the checkpoint's state sizes.
func (m *Metadata) Size() int64 {
	var n int64
	for _, s := range m.Subtasks {
		for _, h := range s.States {
			n += h.Size
		}
	}
	return n
}

// FinalID is the checkpoint id of a finished subtask's final state (an
// Ack with ID FinalID): taken when its input ended, it stands for every
// checkpoint after Ack.After.
const FinalID ID = 0

// finalState is a finished subtask's final state.
type finalState struct {
	after   ID
	states  []Handle
	attempt int64
}

// Ack is a subtask's acknowledgement of a checkpoint.
type Ack struct {
	Subtask
	Attempt int64
	ID      ID
	// After is, for a final state (ID FinalID), the last checkpoint the
	// subtask took a snapshot of or declined.
	After  ID
	States []Handle
	// Sync, Async and Alignment are the subtask's durations: records
	// stopped for the snapshot, writing it afterwards, aligning barriers.
	Sync, Async, Alignment time.Duration
}

// Decline is a subtask's refusal to take part in a checkpoint.
type Decline struct {
	Subtask
	Attempt int64
	ID      ID
	Reason  Reason
	Message string
}

// Reason is why a checkpoint failed, as Flink's CheckpointFailureReason.
type Reason int

// The reasons.
const (
	// Expired: not complete within execution.checkpointing.timeout.
	Expired Reason = iota + 1
	// Declined: a subtask declined (for a reason that counts).
	Declined
	// DeclinedTaskNotReady: a subtask was not running yet, or ending.
	DeclinedTaskNotReady
	// DeclinedSubsumed: a subtask saw a newer checkpoint's barrier first.
	DeclinedSubsumed
	// SnapshotFailed: a subtask could not take or write its snapshot.
	SnapshotFailed
	// AlignmentFailed: barrier alignment failed at a subtask.
	AlignmentFailed
	// FinalizeFailed: the metadata could not be written.
	FinalizeFailed
	// Subsumed: a newer checkpoint completed first.
	Subsumed
	// TaskFailure: a subtask failed; the job fails over.
	TaskFailure
	// Suspended: the job is failing over, cancelled or ended.
	Suspended
)

var reasonNames = map[Reason]string{
	Expired: "expired", Declined: "declined", DeclinedTaskNotReady: "declined-task-not-ready",
	DeclinedSubsumed: "declined-subsumed", SnapshotFailed: "snapshot-failed", AlignmentFailed: "alignment-failed",
	FinalizeFailed: "finalize-failed", Subsumed: "subsumed",
	TaskFailure: "task-failure", Suspended: "suspended",
}

func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// ParseReason reads a Reason's String.
func ParseReason(s string) (Reason, bool) {
	for r, n := range reasonNames {
		if n == s {
			return r, true
		}
	}
	return 0, false
}

// Counts tells whether a failure of this kind counts towards
// execution.checkpointing.tolerable-failed-checkpoints: as in Flink, a
// timeout, a decline, a failed snapshot or metadata write do; a job's own
// failover, a subsumed checkpoint or a subtask not ready do not.
func (r Reason) Counts() bool {
	switch r {
	case Expired, Declined, SnapshotFailed, AlignmentFailed, FinalizeFailed:
		return true
	}
	return false
}

// Effect is something the caller of the coordinator must do.
type Effect interface {
	String() string
	effect()
}

// Trigger starts checkpoint ID at Subtasks (send TriggerCheckpoint to
// their workers, with a location in checkpoint storage).
type Trigger struct {
	ID        ID
	Attempt   int64
	Timestamp time.Time
	Mode      Mode
	Subtasks  []Subtask
	// Kind tells a periodic checkpoint from a savepoint.
	Kind Kind
}

// Kind is what a checkpoint is taken for.
type Kind int

// The kinds.
const (
	// Periodic is a checkpoint the interval triggered.
	Periodic Kind = iota
	// Savepoint is a user-triggered savepoint: it is also written in the
	// canonical savepoint format (the caller's business), and the job
	// goes on.
	Savepoint
	// StopSavepoint is the final savepoint of spate stop: once complete
	// (and the sinks told to commit), the job stops FINISHED. No periodic
	// checkpoint is triggered while it is pending.
	StopSavepoint
)

func (k Kind) String() string {
	switch k {
	case Savepoint:
		return "savepoint"
	case StopSavepoint:
		return "stop-savepoint"
	}
	return "checkpoint"
}

// IsSavepoint tells a savepoint of either kind.
func (k Kind) IsSavepoint() bool { return k != Periodic }

// WriteMetadata asks for Meta to be written durably as checkpoint
// Meta.ID's _metadata (and, for a savepoint, in the savepoint format);
// the caller reports the outcome with MetadataWritten.
type WriteMetadata struct {
	Meta Metadata
	Kind Kind
}

// StopJob ends the job FINISHED: its stop-savepoint ID completed, the
// workers were told (NotifyComplete with ConfirmCommit came first), and
// every subtask that took part confirmed it committed (CommitConfirmed).
type StopJob struct {
	ID   ID
	Path string
}

// StopFailed ends a stop-with-savepoint whose savepoint ID completed (at
// Path) but whose commits were not all confirmed: a subtask failed, the
// job failed over or was cancelled, or the confirmations timed out. The
// job does not stop FINISHED; the savepoint is usable (a restore from it
// commits its transactions).
type StopFailed struct {
	ID   ID
	Path string
	Err  string
}

// NotifyComplete tells every worker of Attempt that checkpoint ID
// completed (sinks commit).
type NotifyComplete struct {
	ID        ID
	Attempt   int64
	Timestamp time.Time
	// ConfirmCommit asks the workers to confirm, once their sinks
	// committed, with CommitConfirmed: the stop-savepoint's.
	ConfirmCommit bool
}

// NotifyAborted tells every worker of Attempt that checkpoint ID was
// aborted.
type NotifyAborted struct {
	ID      ID
	Attempt int64
	Reason  Reason
}

// Discard deletes checkpoint ID's files from storage: an aborted one, or a
// completed one no longer retained.
type Discard struct {
	ID ID
	// Completed tells a retained checkpoint pushed out from an aborted one.
	Completed bool
}

// FailJob fails the job: more checkpoints failed in a row than tolerated.
type FailJob struct{ Err string }

func (Trigger) effect()        {}
func (WriteMetadata) effect()  {}
func (NotifyComplete) effect() {}
func (NotifyAborted) effect()  {}
func (Discard) effect()        {}
func (FailJob) effect()        {}
func (StopJob) effect()        {}
func (StopFailed) effect()     {}

func (e Trigger) String() string {
	var s []string
	for _, st := range e.Subtasks {
		s = append(s, st.String())
	}
	kind := ""
	if e.Kind != Periodic {
		kind = " kind=" + e.Kind.String()
	}
	return fmt.Sprintf("trigger chk=%d attempt=%d ts=%d mode=%s%s subtasks=%s", e.ID, e.Attempt, e.Timestamp.UnixMilli(), e.Mode, kind, strings.Join(s, ","))
}

func (e WriteMetadata) String() string {
	var s []string
	for _, st := range e.Meta.Subtasks {
		x := fmt.Sprintf("%d/%d", st.Vertex, st.Subtask)
		if st.Finished {
			x += "(finished)"
		} else {
			x += fmt.Sprintf("(%d states)", len(st.States))
		}
		s = append(s, x)
	}
	kind := ""
	if e.Kind != Periodic {
		kind = " kind=" + e.Kind.String()
	}
	return fmt.Sprintf("write-metadata chk=%d attempt=%d%s size=%d subtasks=%s", e.Meta.ID, e.Meta.Attempt, kind, e.Meta.Size(), strings.Join(s, ","))
}

func (e NotifyComplete) String() string {
	if e.ConfirmCommit {
		return fmt.Sprintf("notify-complete chk=%d attempt=%d confirm-commit", e.ID, e.Attempt)
	}
	return fmt.Sprintf("notify-complete chk=%d attempt=%d", e.ID, e.Attempt)
}

func (e NotifyAborted) String() string {
	return fmt.Sprintf("notify-aborted chk=%d attempt=%d reason=%s", e.ID, e.Attempt, e.Reason)
}

func (e Discard) String() string {
	if e.Completed {
		return fmt.Sprintf("discard chk=%d (no longer retained)", e.ID)
	}
	return fmt.Sprintf("discard chk=%d", e.ID)
}

func (e StopJob) String() string { return fmt.Sprintf("stop-job chk=%d path=%s", e.ID, e.Path) }

func (e StopFailed) String() string {
	return fmt.Sprintf("stop-failed chk=%d path=%s error=%q", e.ID, e.Path, e.Err)
}

func (e FailJob) String() string { return fmt.Sprintf("fail-job error=%q", e.Err) }
