package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
	"github.com/spate-dev/spate/internal/snapshot"
)

// Checkpoints are the checkpointing side of a worker's subtasks: the
// runner their state was registered with when they were built, and the
// state of each by (vertex, subtask).
type Checkpoints struct {
	Runner *snapshot.Runner
	States map[[2]int]*snapshot.TaskState
}

// The worker's side of checkpoints (checkpoint.proto):
//
//	Subscribe ──TriggerCheckpoint──▶ the listed source subtasks inject barriers
//	subtask snapshot ──▶ AcknowledgeCheckpoint (state inline) / DeclineCheckpoint
//	Subscribe ──NotifyCheckpointComplete──▶ the sinks commit (and, asked to
//	           confirm, a stop-savepoint's: ConfirmCommit once they did)
//	           ──NotifyCheckpointAborted──▶ the sinks drop nothing (the next commits)
//
// Every call carries the deployment's attempt, and an order of another
// attempt is ignored: a worker of an older attempt is refused by the
// JobManager (its subscription ends with FAILED_PRECONDITION), so it never
// hears of a completed checkpoint and its sinks never commit.

// checkpointing connects a worker's subtasks to the JobManager's
// checkpoint coordinator.
type checkpointing struct {
	cc    rpcpb.CheckpointCoordinatorClient
	d     *Deployment
	ck    *Checkpoints
	log   *slog.Logger
	tasks map[[2]int]*exec.Task
	fail  func(error) // fails the worker's subtasks (a commit failed)
	ctx   context.Context
}

// setup restores the local subtasks' state from the deployment's restore
// point and hooks them to checkpoints.
func (c *checkpointing) setup(ctx context.Context, local []LocalTask) error {
	aligned := c.d.CheckpointMode != "AT_LEAST_ONCE"
	c.tasks = map[[2]int]*exec.Task{}
	rc, err := RestoreCheckpoint(c.d)
	if err != nil {
		return err
	}
	var states snapshot.ReadStore
	if rc != nil {
		// The JobManager put the storage's options in the environment.
		if states.Opts, err = storage.OptionsFromEnvironment(config.Config{}); err != nil {
			return fmt.Errorf("restore checkpoint %d: checkpoint storage: %w", rc.CheckpointId, err)
		}
	}
	restore := map[[2]int]*rpcpb.SubtaskState{}
	if rc != nil {
		for _, st := range rc.Subtasks {
			restore[[2]int{int(st.Vertex), int(st.Subtask)}] = st
		}
	}
	for _, lt := range local {
		k := [2]int{lt.Vertex, lt.Subtask}
		c.tasks[k] = lt.Task
		ts := c.ck.States[k]
		if ts == nil {
			ts = c.ck.Runner.Task(lt.Vertex, lt.Subtask, 0, 0)
			c.ck.States[k] = ts
		}
		if st := restore[k]; st != nil {
			if err := restoreSubtask(ctx, ts, states, st); err != nil {
				return fmt.Errorf("restore checkpoint %d: %w", rc.CheckpointId, err)
			}
		}
		lt.Task.Checkpoint = ts.Hook(lt.Task, aligned, c.d.CheckpointAlignmentMaxSize, func(id int64, cause error) {
			c.Decline(lt.Vertex, lt.Subtask, id, cause)
		})
	}
	return nil
}

// restoreSubtask restores ts from st: its own state files, or, for a
// vertex restored at another parallelism (handles of kind
// checkpoint.KindShared, see checkpoint.Assign, or a savepoint's of a
// snapshot.SharedKind, see savepoint.Assign), its share of those of every
// old subtask of the vertex.
func restoreSubtask(ctx context.Context, ts *snapshot.TaskState, states snapshot.ReadStore, st *rpcpb.SubtaskState) error {
	var shared []snapshot.Handle
	for _, h := range st.States {
		sh, isShared, err := restoreHandle(h)
		if err != nil {
			return err
		}
		if isShared {
			shared = append(shared, sh)
			continue
		}
		if err := ts.Restore(ctx, states, sh); err != nil {
			return err
		}
	}
	if len(shared) > 0 {
		return ts.RestoreShared(ctx, states, shared)
	}
	return nil
}

// subscribe receives the coordinator's orders until ctx ends or the
// JobManager says this attempt no longer runs.
func (c *checkpointing) subscribe(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := c.subscribeOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if status.Code(err) == codes.FailedPrecondition {
			// Stale, or the job stopped running with this attempt: the
			// liveness link stops the worker.
			c.log.Info("checkpoint orders end", "reason", err)
			return
		}
		c.log.Warn("checkpoint subscription lost; subscribing again", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (c *checkpointing) subscribeOnce(ctx context.Context) error {
	stream, err := c.cc.Subscribe(ctx, &rpcpb.CheckpointSubscribeRequest{JobId: c.d.JobID, WorkerId: c.d.WorkerID, Attempt: c.d.Attempt}, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	for {
		o, err := stream.Recv()
		if err != nil {
			return err
		}
		c.order(o)
	}
}

// order carries out one order of the coordinator.
func (c *checkpointing) order(o *rpcpb.CheckpointOrder) {
	switch k := o.Kind.(type) {
	case *rpcpb.CheckpointOrder_Trigger:
		tr := k.Trigger
		if tr.Attempt != c.d.Attempt {
			return
		}
		for _, ref := range tr.Subtasks {
			if t := c.tasks[[2]int{int(ref.Vertex), int(ref.Subtask)}]; t != nil {
				t.TriggerCheckpoint(tr.CheckpointId)
			}
		}
	case *rpcpb.CheckpointOrder_Complete:
		if k.Complete.Attempt != c.d.Attempt {
			return
		}
		if err := c.ck.Runner.CommitCheckpoint(k.Complete.CheckpointId); err != nil {
			// The failed subtasks fail the stop, if one waits: no
			// confirmation.
			c.fail(fmt.Errorf("commit checkpoint %d: %w", k.Complete.CheckpointId, err))
			return
		}
		if k.Complete.ConfirmCommit {
			c.confirmCommit(k.Complete.CheckpointId)
		}
	case *rpcpb.CheckpointOrder_Aborted:
		if k.Aborted.Attempt == c.d.Attempt {
			c.ck.Runner.AbortCheckpoint(k.Aborted.CheckpointId)
		}
	}
}

// confirmCommit tells the JobManager that this worker's subtasks
// committed checkpoint id: a stop-with-savepoint ends only once every
// worker did.
func (c *checkpointing) confirmCommit(id int64) {
	req := &rpcpb.ConfirmCommitRequest{JobId: c.d.JobID, WorkerId: c.d.WorkerID, Attempt: c.d.Attempt, CheckpointId: id}
	for _, k := range slices.SortedFunc(maps.Keys(c.tasks), func(a, b [2]int) int { return cmp.Or(a[0]-b[0], a[1]-b[1]) }) {
		req.Subtasks = append(req.Subtasks, &rpcpb.SubtaskRef{Vertex: int32(k[0]), Subtask: int32(k[1])})
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if _, err := c.cc.ConfirmCommit(ctx, req, grpc.WaitForReady(true)); err != nil && c.ctx.Err() == nil {
		c.log.Warn("confirmation of a commit failed", "checkpoint", id, "err", err)
		return
	}
	c.log.Info("commit confirmed", "checkpoint", id, "subtasks", len(req.Subtasks))
}

// Acknowledge implements snapshot.Acker: the state goes inline, kept by
// the JobManager in the checkpoint's metadata.
func (c *checkpointing) Acknowledge(a snapshot.Ack) {
	req := &rpcpb.AcknowledgeCheckpointRequest{
		JobId: c.d.JobID, WorkerId: c.d.WorkerID, Attempt: c.d.Attempt,
		Vertex: int32(a.Vertex), Subtask: int32(a.Subtask), CheckpointId: a.Checkpoint,
		SyncDurationMs: a.Sync.Milliseconds(), AsyncDurationMs: a.Async.Milliseconds(), AlignmentDurationMs: a.Alignment.Milliseconds(),
	}
	if a.Checkpoint == exec.EndOfInput {
		req.FinalAfter = a.After
	}
	if a.State != nil {
		req.States = []*rpcpb.StateHandle{handleToProto(*a.State)}
		req.StateSize = a.State.Size
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if _, err := c.cc.AcknowledgeCheckpoint(ctx, req, grpc.WaitForReady(true)); err != nil && c.ctx.Err() == nil {
		c.log.Warn("acknowledgement of a checkpoint failed", "checkpoint", a.Checkpoint, "subtask", fmt.Sprintf("%d/%d", a.Vertex, a.Subtask), "err", err)
	}
}

// Decline implements snapshot.Acker.
func (c *checkpointing) Decline(vertex, subtask int, id int64, err error) {
	if id == exec.EndOfInput {
		c.log.Warn("the final state of a finished subtask could not be taken", "subtask", fmt.Sprintf("%d/%d", vertex, subtask), "err", err)
		return
	}
	reason := declineReason(err)
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	if _, rerr := c.cc.DeclineCheckpoint(ctx, &rpcpb.DeclineCheckpointRequest{
		JobId: c.d.JobID, WorkerId: c.d.WorkerID, Attempt: c.d.Attempt,
		Vertex: int32(vertex), Subtask: int32(subtask), CheckpointId: id,
		Reason: reason, Message: err.Error(),
	}); rerr != nil && c.ctx.Err() == nil {
		c.log.Warn("decline of a checkpoint failed", "checkpoint", id, "err", rerr)
	}
}

// declineReason classes a decline for the coordinator: an overtaken
// checkpoint is subsumed (not counted as a failure), an alignment over its
// limit failed alignment, anything else a failed snapshot.
func declineReason(err error) rpcpb.DeclineReason {
	switch {
	case errors.Is(err, snapshot.ErrSubsumed):
		return rpcpb.DeclineReason_DECLINE_SUBSUMED
	case errors.Is(err, exec.ErrAlignmentLimit):
		return rpcpb.DeclineReason_DECLINE_ALIGNMENT_FAILED
	}
	return rpcpb.DeclineReason_DECLINE_SNAPSHOT_FAILED
}

// Kind of the state handle of a subtask's state file.
const subtaskStateKind = checkpoint.KindSubtask

func handleToProto(h snapshot.Handle) *rpcpb.StateHandle {
	return &rpcpb.StateHandle{
		Operator: -1, Kind: subtaskStateKind, Url: h.URL, Inline: h.Inline, Size: h.Size, Sha256: h.SHA256,
		KeyGroups: &rpcpb.KeyGroupRange{Start: h.KeyGroups[0], End: h.KeyGroups[1]},
	}
}

func handleFromProto(h *rpcpb.StateHandle) snapshot.Handle {
	sh := snapshot.Handle{URL: h.Url, Inline: h.Inline, Size: h.Size, SHA256: h.Sha256}
	if kg := h.KeyGroups; kg != nil {
		sh.KeyGroups = [2]int32{kg.Start, kg.End}
	}
	return sh
}

// restoreHandle is the handle of a restored state: a subtask's own state
// file, or one operator's state (a savepoint's, a retained checkpoint's
// restored by a changed job), remapped to the operator h.Operator; shared
// tells that it is one of the files of a vertex restored at another
// parallelism, of which the subtask restores its share.
func restoreHandle(h *rpcpb.StateHandle) (sh snapshot.Handle, shared bool, err error) {
	k, err := snapshot.ParseKind(h.Kind)
	if err != nil {
		return sh, false, err
	}
	return k.Apply(handleFromProto(h), h.Operator, h.OperatorUid), k.Shared, nil
}
