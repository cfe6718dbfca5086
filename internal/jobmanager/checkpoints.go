package jobmanager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// maxCheckpointAckBytes bounds an RPC the JobManager receives: an
// acknowledgement may carry a subtask's state inline (the metadata writer
// moves a large one to a state file of its own, storage.InlineLimit).
// Larger state belongs in a state file the subtask writes at the
// trigger's location.
const maxCheckpointAckBytes = 64 << 20

// checkpointServer serves the CheckpointCoordinator RPCs (checkpoint.proto)
// to jobs' workers.
type checkpointServer struct {
	rpcpb.UnimplementedCheckpointCoordinatorServer
	jm *JobManager
}

var _ rpcpb.CheckpointCoordinatorServer = checkpointServer{}

// staleErr is the refusal of a call from an attempt that is not the
// job's current one: the caller is a zombie and must stop.
func staleErr(j *job, what string, attempt int64) error {
	return status.Errorf(codes.FailedPrecondition, "%s of attempt %d refused: job %s runs attempt %d; this worker is stale and must stop", what, attempt, j.id, j.attempt)
}

// checkpointWorkerLocked finds the job and worker of a checkpoint call and
// refuses a stale attempt.
func (jm *JobManager) checkpointWorkerLocked(jobID, workerID string, attempt int64, what string) (*job, *worker, error) {
	j, ok := jm.mu.jobs[JobID(jobID)]
	if !ok {
		return nil, nil, status.Errorf(codes.NotFound, "unknown job %q", jobID)
	}
	if j.staleAttempt(attempt) {
		return nil, nil, staleErr(j, what, attempt)
	}
	if j.ft == nil {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "job %s takes no checkpoints", j.id)
	}
	for _, w := range j.workers {
		if w.id == workerID {
			return j, w, nil
		}
	}
	return nil, nil, status.Errorf(codes.FailedPrecondition, "job %s attempt %d has no worker %q: this worker is stale and must stop", jobID, j.attempt, workerID)
}

// Subscribe streams a worker's checkpoint orders until the job stops
// running with this attempt.
func (s checkpointServer) Subscribe(req *rpcpb.CheckpointSubscribeRequest, stream rpcpb.CheckpointCoordinator_SubscribeServer) error {
	jm := s.jm
	jm.mu.Lock()
	j, w, err := jm.checkpointWorkerLocked(req.JobId, req.WorkerId, req.Attempt, "checkpoint subscription")
	if err != nil {
		jm.mu.Unlock()
		return err
	}
	orders, done := j.ft.orders[w.id], j.ft.done
	attempt := j.attempt
	jm.mu.Unlock()
	if orders == nil || done == nil {
		return status.Errorf(codes.FailedPrecondition, "job %s attempt %d is not deployed", j.id, attempt)
	}
	for {
		// Orders already queued go out before the end is told.
		select {
		case o := <-orders:
			if err := stream.Send(o); err != nil {
				return err
			}
			continue
		default:
		}
		select {
		case o := <-orders:
			if err := stream.Send(o); err != nil {
				return err
			}
		case <-done:
			return status.Errorf(codes.FailedPrecondition, "job %s no longer runs attempt %d", j.id, attempt)
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-jm.stop:
			return status.Error(codes.Unavailable, errClosed.Error())
		}
	}
}

// AcknowledgeCheckpoint takes a subtask's acknowledgement.
func (s checkpointServer) AcknowledgeCheckpoint(ctx context.Context, req *rpcpb.AcknowledgeCheckpointRequest) (*rpcpb.AcknowledgeCheckpointResponse, error) {
	jm := s.jm
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, _, err := jm.checkpointWorkerLocked(req.JobId, req.WorkerId, req.Attempt, fmt.Sprintf("acknowledgement of checkpoint %d", req.CheckpointId))
	if err != nil {
		return nil, err
	}
	a := checkpoint.Ack{
		Subtask: checkpoint.Subtask{Vertex: int(req.Vertex), Index: int(req.Subtask)}, Attempt: j.attempt, ID: checkpoint.ID(req.CheckpointId),
		After: checkpoint.ID(req.FinalAfter),
		Sync:  time.Duration(req.SyncDurationMs) * time.Millisecond, Async: time.Duration(req.AsyncDurationMs) * time.Millisecond,
		Alignment: time.Duration(req.AlignmentDurationMs) * time.Millisecond,
	}
	for _, h := range req.States {
		a.States = append(a.States, handleFromProto(h))
	}
	now := jm.clock.Now()
	res, eff := j.ft.coord.Acknowledge(now, a)
	jm.checkpointEffectsLocked(j, eff, now)
	switch res {
	case checkpoint.Stale:
		return nil, staleErr(j, "acknowledgement", req.Attempt)
	case checkpoint.Unexpected:
		return nil, status.Errorf(codes.InvalidArgument, "checkpoint %d of job %s does not wait for subtask %d/%d", req.CheckpointId, j.id, req.Vertex, req.Subtask)
	}
	return &rpcpb.AcknowledgeCheckpointResponse{Accepted: res == checkpoint.Accepted}, nil
}

var declineReasons = map[rpcpb.DeclineReason]checkpoint.Reason{
	rpcpb.DeclineReason_DECLINE_UNKNOWN:          checkpoint.Declined,
	rpcpb.DeclineReason_DECLINE_TASK_NOT_READY:   checkpoint.DeclinedTaskNotReady,
	rpcpb.DeclineReason_DECLINE_SNAPSHOT_FAILED:  checkpoint.SnapshotFailed,
	rpcpb.DeclineReason_DECLINE_ALIGNMENT_FAILED: checkpoint.AlignmentFailed,
	rpcpb.DeclineReason_DECLINE_SUBSUMED:         checkpoint.DeclinedSubsumed,
}

// DeclineCheckpoint takes a subtask's decline.
func (s checkpointServer) DeclineCheckpoint(ctx context.Context, req *rpcpb.DeclineCheckpointRequest) (*rpcpb.DeclineCheckpointResponse, error) {
	jm := s.jm
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, _, err := jm.checkpointWorkerLocked(req.JobId, req.WorkerId, req.Attempt, fmt.Sprintf("decline of checkpoint %d", req.CheckpointId))
	if err != nil {
		return nil, err
	}
	reason, ok := declineReasons[req.Reason]
	if !ok {
		reason = checkpoint.Declined
	}
	now := jm.clock.Now()
	jm.log.Info("checkpoint declined", "job", j.id, "checkpoint", req.CheckpointId, "subtask", fmt.Sprintf("%d/%d", req.Vertex, req.Subtask), "reason", reason, "message", req.Message)
	_, eff := j.ft.coord.Decline(now, checkpoint.Decline{
		Subtask: checkpoint.Subtask{Vertex: int(req.Vertex), Index: int(req.Subtask)}, Attempt: j.attempt,
		ID: checkpoint.ID(req.CheckpointId), Reason: reason, Message: req.Message,
	})
	jm.checkpointEffectsLocked(j, eff, now)
	return &rpcpb.DeclineCheckpointResponse{}, nil
}

// ConfirmCommit takes a worker's confirmation that its subtasks committed
// the transactions of a stop-with-savepoint's savepoint.
func (s checkpointServer) ConfirmCommit(ctx context.Context, req *rpcpb.ConfirmCommitRequest) (*rpcpb.ConfirmCommitResponse, error) {
	jm := s.jm
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, _, err := jm.checkpointWorkerLocked(req.JobId, req.WorkerId, req.Attempt, fmt.Sprintf("commit confirmation of checkpoint %d", req.CheckpointId))
	if err != nil {
		return nil, err
	}
	var subtasks []checkpoint.Subtask
	for _, ref := range req.Subtasks {
		subtasks = append(subtasks, checkpoint.Subtask{Vertex: int(ref.Vertex), Index: int(ref.Subtask)})
	}
	now := jm.clock.Now()
	res, eff := j.ft.coord.CommitConfirmed(now, j.attempt, checkpoint.ID(req.CheckpointId), subtasks)
	jm.log.Info("commit confirmed", "job", j.id, "checkpoint", req.CheckpointId, "worker", req.WorkerId, "subtasks", len(subtasks), "result", res)
	jm.checkpointEffectsLocked(j, eff, now)
	return &rpcpb.ConfirmCommitResponse{Accepted: res == checkpoint.Accepted}, nil
}

// taskStateFTLocked tells j's coordinator a subtask's state.
func (jm *JobManager) taskStateFTLocked(j *job, vertex, subtask int, state string, now time.Time) {
	if j.ft == nil || state == "" {
		return
	}
	_, eff := j.ft.coord.TaskState(now, j.attempt, checkpoint.Subtask{Vertex: vertex, Index: subtask}, state)
	jm.checkpointEffectsLocked(j, eff, now)
}

// checkpointEffectsLocked carries out the coordinator's effects for j.
func (jm *JobManager) checkpointEffectsLocked(j *job, eff []checkpoint.Effect, now time.Time) {
	ft := j.ft
	for _, e := range eff {
		switch e := e.(type) {
		case checkpoint.Trigger:
			loc := ft.store.URL(storage.Dir(string(j.id), e.ID))
			byWorker := map[string][]*rpcpb.SubtaskRef{}
			for _, st := range e.Subtasks {
				w := j.slotWorker(st.Index)
				byWorker[w] = append(byWorker[w], &rpcpb.SubtaskRef{Vertex: int32(st.Vertex), Subtask: int32(st.Index)})
			}
			mode := rpcpb.CheckpointMode_EXACTLY_ONCE
			if e.Mode == checkpoint.AtLeastOnce {
				mode = rpcpb.CheckpointMode_AT_LEAST_ONCE
			}
			for w, refs := range byWorker {
				jm.sendOrderLocked(j, w, &rpcpb.CheckpointOrder{Kind: &rpcpb.CheckpointOrder_Trigger{Trigger: &rpcpb.TriggerCheckpoint{
					JobId: string(j.id), Attempt: e.Attempt, CheckpointId: int64(e.ID), TimestampMs: e.Timestamp.UnixMilli(),
					Options: &rpcpb.CheckpointOptions{Mode: mode, Savepoint: e.Kind.IsSavepoint()}, Subtasks: refs, Location: loc,
				}}})
			}
			jm.log.Debug("checkpoint triggered", "job", j.id, "checkpoint", e.ID, "attempt", e.Attempt, "subtasks", len(e.Subtasks))
		case checkpoint.WriteMetadata:
			jm.writeMetadataLocked(j, e.Meta, e.Kind)
		case checkpoint.NotifyComplete:
			ft.master.CheckpointCompleted(e.ID)
			jm.log.Info("checkpoint completed", "job", j.id, "checkpoint", e.ID, "attempt", e.Attempt)
			for w := range ft.orders {
				jm.sendOrderLocked(j, w, &rpcpb.CheckpointOrder{Kind: &rpcpb.CheckpointOrder_Complete{Complete: &rpcpb.NotifyCheckpointComplete{
					JobId: string(j.id), Attempt: e.Attempt, CheckpointId: int64(e.ID), TimestampMs: e.Timestamp.UnixMilli(),
					ConfirmCommit: e.ConfirmCommit,
				}}})
			}
		case checkpoint.NotifyAborted:
			jm.log.Info("checkpoint aborted", "job", j.id, "checkpoint", e.ID, "attempt", e.Attempt, "reason", e.Reason)
			jm.savepointAbortedLocked(j, e.ID, e.Reason)
			if e.Attempt != j.attempt {
				continue
			}
			for w := range ft.orders {
				jm.sendOrderLocked(j, w, &rpcpb.CheckpointOrder{Kind: &rpcpb.CheckpointOrder_Aborted{Aborted: &rpcpb.NotifyCheckpointAborted{
					JobId: string(j.id), Attempt: e.Attempt, CheckpointId: int64(e.ID), Reason: e.Reason.String(),
				}}})
			}
		case checkpoint.Discard:
			if ft.store == nil || jm.mu.closed {
				continue
			}
			store, id, chk := ft.store, string(j.id), e.ID
			jm.wg.Add(1)
			go func() {
				defer jm.wg.Done()
				if err := storage.Discard(jm.runCtx, store, id, chk); err != nil {
					jm.log.Warn("could not delete a checkpoint", "job", id, "checkpoint", chk, "err", err)
				}
			}()
		case checkpoint.StopJob:
			jm.stopJobLocked(j, e, now)
		case checkpoint.StopFailed:
			jm.stopFailedLocked(j, e)
		case checkpoint.FailJob:
			jm.reportLocked(j, failure{name: "CheckpointFailure", err: errors.New(e.Err)}, now)
		}
	}
}

// sendOrderLocked queues an order for worker w of j's current attempt; a
// worker whose queue is full is not keeping up, and misses it (the
// checkpoint then times out).
func (jm *JobManager) sendOrderLocked(j *job, w string, o *rpcpb.CheckpointOrder) {
	ch, ok := j.ft.orders[w]
	if !ok || closed(j.ft.done) {
		return
	}
	select {
	case ch <- o:
	default:
		jm.log.Warn("a worker's checkpoint order queue is full; dropping an order", "job", j.id, "worker", w)
	}
}

// writeMetadataLocked writes a checkpoint's _metadata off mu, then tells
// the coordinator how it went.
func (jm *JobManager) writeMetadataLocked(j *job, m checkpoint.Metadata, kind checkpoint.Kind) {
	ft := j.ft
	if jm.mu.closed {
		return
	}
	id := string(j.id)
	m.Operators = ft.operators
	r := ft.pendingSP[m.ID]
	jm.wg.Add(1)
	go func() {
		defer jm.wg.Done()
		path, err := jm.writeCheckpoint(jm.runCtx, j, ft, m, kind, r)
		jm.mu.Lock()
		defer jm.mu.Unlock()
		now := jm.clock.Now()
		jm.savepointWrittenLocked(j, m.ID, path, err)
		res, eff := ft.coord.MetadataWritten(now, m.ID, m.Attempt, path, err)
		if err != nil {
			jm.log.Warn("checkpoint metadata not written", "job", id, "checkpoint", m.ID, "err", err)
		} else if res != checkpoint.Accepted {
			jm.log.Info("checkpoint metadata written for a checkpoint no longer pending; discarded", "job", id, "checkpoint", m.ID, "attempt", m.Attempt, "result", res)
		}
		jm.checkpointEffectsLocked(j, eff, now)
	}()
}

// nextEventLocked is the earliest time a job's coordinator or master
// needs a tick; zero if none.
func (jm *JobManager) nextEventLocked() time.Time {
	var next time.Time
	for _, j := range jm.mu.active {
		if j.ft == nil {
			continue
		}
		for _, t := range []time.Time{j.ft.coord.NextEvent(), j.ft.master.NextEvent()} {
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	return next
}

var _ rest.CheckpointBackend = (*JobManager)(nil)

// JobCheckpoints returns a job's checkpoint statistics.
func (jm *JobManager) JobCheckpoints(ctx context.Context, id string) (v1.CheckpointingStatistics, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, err := jm.jobLocked(id)
	if err != nil {
		return v1.CheckpointingStatistics{}, err
	}
	out := v1.CheckpointingStatistics{History: []v1.CheckpointStatistics{}, NumRestarts: restartsOf(j)}
	if j.ft == nil {
		return out, nil
	}
	s := j.ft.coord.Stats()
	out.Counts = v1.CheckpointCounts{Restored: s.Counts.Restored, Total: s.Counts.Total, InProgress: s.Counts.InProgress, Completed: s.Counts.Completed, Failed: s.Counts.Failed}
	size, dur := s.SizeSummary(), s.DurationSummary()
	out.Summary.StateSize = v1.MinMaxAvg{Min: size.Min, Max: size.Max, Avg: size.Avg}
	out.Summary.CheckpointedSize = out.Summary.StateSize
	out.Summary.EndToEndDuration = v1.MinMaxAvg{Min: dur.Min, Max: dur.Max, Avg: dur.Avg}
	now := jm.clock.Now()
	for _, h := range s.History {
		out.History = append(out.History, checkpointStat(h, now))
	}
	if l := s.Latest.Completed; l != nil {
		c := checkpointStat(l, now)
		out.Latest.Completed = &c
	}
	if l := s.Latest.Failed; l != nil {
		c := checkpointStat(l, now)
		out.Latest.Failed = &c
	}
	if l := s.Latest.Savepoint; l != nil {
		c := checkpointStat(l, now)
		out.Latest.Savepoint = &c
	}
	if l := s.Latest.Restored; l != nil {
		out.Latest.Restored = &v1.RestoredCheckpoint{ID: int64(l.ID), RestoreTimestamp: l.RestoreTime.UnixMilli(), ExternalPath: l.Path}
	}
	return out, nil
}

// checkpointType is Flink's name of a checkpoint's kind.
func checkpointType(k checkpoint.Kind) string {
	switch k {
	case checkpoint.Savepoint:
		return "SAVEPOINT"
	case checkpoint.StopSavepoint:
		return "SYNC_SAVEPOINT"
	}
	return "CHECKPOINT"
}

func checkpointStat(h *checkpoint.Stat, now time.Time) v1.CheckpointStatistics {
	c := v1.CheckpointStatistics{
		ID: int64(h.ID), Status: h.Status, CheckpointType: checkpointType(h.Kind), IsSavepoint: h.Kind.IsSavepoint(), TriggerTimestamp: h.TriggerTime.UnixMilli(),
		StateSize: h.StateSize, CheckpointedSize: h.StateSize, NumSubtasks: h.NumSubtasks, NumAcknowledgedSubtasks: h.NumAcknowledged,
		SyncDurationMax: h.SyncMax.Milliseconds(), AsyncDurationMax: h.AsyncMax.Milliseconds(), AlignmentDurationMax: h.AlignmentMax.Milliseconds(),
		ExternalPath: h.Path, Discarded: h.Discarded, FailureMessage: h.FailureMessage,
	}
	if !h.LatestAck.IsZero() {
		c.LatestAckTimestamp = h.LatestAck.UnixMilli()
	}
	end := now
	if !h.EndTime.IsZero() {
		end = h.EndTime
	}
	c.EndToEndDuration = end.Sub(h.TriggerTime).Milliseconds()
	if h.Status == checkpoint.StatusFailed {
		c.FailureTimestamp = h.EndTime.UnixMilli()
	}
	return c
}

// JobCheckpointConfig returns a job's checkpointing configuration;
// ErrNotFound when the job takes no checkpoints, as Flink answers.
func (jm *JobManager) JobCheckpointConfig(ctx context.Context, id string) (v1.CheckpointConfig, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, err := jm.jobLocked(id)
	if err != nil {
		return v1.CheckpointConfig{}, err
	}
	if j.ft == nil || j.ft.cfg.Interval <= 0 {
		return v1.CheckpointConfig{}, fmt.Errorf("job %s takes no checkpoints: set %s to take them: %w", id, checkpoint.KeyInterval, rest.ErrNotFound)
	}
	c := j.ft.cfg
	mode := "exactly_once"
	if c.Mode == checkpoint.AtLeastOnce {
		mode = "at_least_once"
	}
	return v1.CheckpointConfig{
		Mode: mode, Interval: c.Interval.Milliseconds(), Timeout: c.Timeout.Milliseconds(), MinPause: c.MinPause.Milliseconds(),
		MaxConcurrent: c.MaxConcurrent, TolerableFailedCheckpoints: c.TolerableFailures, NumRetained: c.Retained,
		Externalization: v1.CheckpointExternalization{Enabled: true, DeleteOnCancellation: true},
		StateBackend:    "HashMapStateBackend", CheckpointStorage: "FileSystemCheckpointStorage: " + j.ft.storeURL,
		RestartStrategy: j.ft.master.Strategy(),
	}, nil
}
