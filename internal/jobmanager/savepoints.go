package jobmanager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/savepoint"
)

// Savepoints, as Flink's REST API has them: a trigger (POST
// /v1/jobs/{id}/savepoints, or /stop for a stop-with-savepoint) returns
// a trigger id at once; the coordinator takes the savepoint as a
// checkpoint of kind Savepoint or StopSavepoint; when its metadata is
// written (the checkpoint's, then the savepoint's canonical copy in its
// directory, internal/savepoint) the request is COMPLETED with the
// savepoint's path, or with the cause of its failure. A stop-savepoint's
// completion tells the workers to commit and confirm; the request is
// COMPLETED, and the job FINISHED (StopJob), only once every subtask
// confirmed its commit; a subtask that fails (a worker that dies) first,
// a failover or a cancel fails the request (StopFailed) naming the
// savepoint, which stays usable.
//
//	trigger ──▶ IN_PROGRESS ──metadata and savepoint written──▶ COMPLETED (location)
//	                 │ declined, timed out, failover, job ended, write failed
//	                 │
//	                 │ (stop) written ──▶ COMMITTING ──every commit confirmed──▶ COMPLETED (location), FINISHED
//	                 ▼                        │ a subtask failed, failover, cancel, timeout
//	             COMPLETED (failure-cause) ◀──┘

// savepointRequest is one savepoint trigger of a job.
type savepointRequest struct {
	trigger string
	id      checkpoint.ID
	dir     string
	kind    checkpoint.Kind
	done    bool
	// location is the savepoint's directory once written; err its
	// failure.
	location string
	err      error
	started  time.Time
	// served is set once a client fetched the done request's status.
	served bool
}

func (r *savepointRequest) failLocked(err error) {
	if r.done {
		return
	}
	r.done, r.err = true, err
}

var _ rest.SavepointBackend = (*JobManager)(nil)

// TriggerSavepoint starts a savepoint of job id in dir (the job's
// execution.checkpointing.savepoint-dir if empty); stop makes it the
// final one of a stop-with-savepoint. It returns the trigger id.
func (jm *JobManager) TriggerSavepoint(ctx context.Context, id, dir string, stop bool) (string, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, err := jm.jobLocked(id)
	if err != nil {
		return "", err
	}
	if j.status != statusRunning {
		return "", fmt.Errorf("job %s is %s: a savepoint is taken of a RUNNING job: %w", id, j.status, rest.ErrConflict)
	}
	ft := j.ft
	if ft == nil || ft.store == nil {
		return "", fmt.Errorf("job %s takes no checkpoints, and a savepoint is one: submit it with %s set: %w", id, checkpoint.KeyInterval, rest.ErrConflict)
	}
	if dir == "" {
		dir = ft.savepointDir
	}
	if dir == "" {
		return "", fmt.Errorf("no savepoint directory: name one (spate savepoint %s DIR, target-directory) or set %s: %w", id, savepoint.Key, rest.ErrInvalid)
	}
	kind := checkpoint.Savepoint
	if stop {
		kind = checkpoint.StopSavepoint
	}
	now := jm.clock.Now()
	chk, eff, err := ft.coord.TriggerSavepoint(now, kind)
	if err != nil {
		return "", fmt.Errorf("savepoint of job %s: %w: %w", id, err, rest.ErrConflict)
	}
	r := &savepointRequest{trigger: newTriggerID(), id: chk, dir: dir, kind: kind, started: now}
	ft.savepoints[r.trigger] = r
	ft.pendingSP[chk] = r
	if stop {
		jm.mu.unservedStops++
	}
	jm.log.Info("savepoint triggered", "job", j.id, "checkpoint", chk, "kind", kind, "dir", dir, "trigger", r.trigger)
	jm.checkpointEffectsLocked(j, eff, now)
	return r.trigger, nil
}

// SavepointStatus returns the status of savepoint trigger of job id.
func (jm *JobManager) SavepointStatus(ctx context.Context, id, trigger string) (v1.SavepointStatus, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, err := jm.jobLocked(id)
	if err != nil {
		return v1.SavepointStatus{}, err
	}
	var r *savepointRequest
	if j.ft != nil {
		r = j.ft.savepoints[trigger]
	}
	if r == nil {
		return v1.SavepointStatus{}, fmt.Errorf("job %s has no savepoint trigger %q: %w", id, trigger, rest.ErrNotFound)
	}
	if !r.done {
		return v1.SavepointStatus{Status: v1.QueueStatus{ID: v1.OperationInProgress}}, nil
	}
	if !r.served && r.kind == checkpoint.StopSavepoint {
		jm.mu.unservedStops--
		select {
		case jm.mu.stopServed <- struct{}{}:
		default:
		}
	}
	r.served = true
	out := v1.SavepointStatus{Status: v1.QueueStatus{ID: v1.OperationCompleted}, Operation: &v1.SavepointInfo{Location: r.location}}
	if r.err != nil {
		out.Operation = &v1.SavepointInfo{FailureCause: &v1.FailureCause{Class: "SavepointFailure", StackTrace: r.err.Error()}}
	}
	return out, nil
}

// stopResultLinger bounds how long an application cluster whose
// application has ended waits for clients to fetch the results of its
// stop-with-savepoint triggers.
const stopResultLinger = 30 * time.Second

// awaitStopResults waits, at most stopResultLinger, until a client has
// fetched the result of every stop-with-savepoint trigger. Stopping an
// application's job, or a per-job cluster's, with a savepoint ends the
// cluster: without this wait, spate stop --savepoint polling the
// trigger found the JobManager gone and never learnt the savepoint's
// path.
func (jm *JobManager) awaitStopResults(ctx context.Context) {
	linger := time.NewTimer(stopResultLinger)
	defer linger.Stop()
	for {
		jm.mu.Lock()
		n := jm.mu.unservedStops
		jm.mu.Unlock()
		if n <= 0 {
			return
		}
		select {
		case <-jm.mu.stopServed:
		case <-linger.C:
			jm.log.Warn("jobmanager: no client fetched the result of a stop-with-savepoint; shutting down", "unfetched", n, "waited", stopResultLinger)
			return
		case <-ctx.Done():
			return
		}
	}
}

// newTriggerID returns a random trigger id, 32 hex digits as Flink's.
func newTriggerID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// savepointAbortedLocked fails the savepoint request of checkpoint id,
// if any, aborted for reason.
func (jm *JobManager) savepointAbortedLocked(j *job, id checkpoint.ID, reason checkpoint.Reason) {
	r, ok := j.ft.pendingSP[id]
	if !ok {
		return
	}
	delete(j.ft.pendingSP, id)
	r.failLocked(fmt.Errorf("savepoint %d of job %s was aborted: %s", id, j.id, reason))
	jm.log.Warn("savepoint failed", "job", j.id, "checkpoint", id, "reason", reason)
}

// writeCheckpoint is the write of a checkpoint's metadata, off mu:
// the checkpoint's _metadata, then for a savepoint its canonical copy in
// its directory; it returns the path the coordinator records (the
// savepoint's for a savepoint).
func (jm *JobManager) writeCheckpoint(ctx context.Context, j *job, ft *faultTolerance, m checkpoint.Metadata, kind checkpoint.Kind, r *savepointRequest) (string, error) {
	id := string(j.id)
	path, err := storage.WriteMetadata(ctx, ft.store, id, m)
	if err != nil || !kind.IsSavepoint() || r == nil {
		return path, err
	}
	start := time.Now()
	read := func(h checkpoint.Handle) ([]byte, error) { return storage.ReadState(ctx, ft.store, h) }
	sp, err := savepoint.Write(ctx, r.dir, ft.storeOpts, savepoint.Job{ID: id, Name: j.name, Parallelism: ft.parallelism}, m, read)
	if err != nil {
		return "", fmt.Errorf("write savepoint %d of job %s to %s: %w", m.ID, id, r.dir, err)
	}
	jm.log.Info("savepoint written", "job", id, "checkpoint", m.ID, "path", sp, "size", m.Size(), "write", time.Since(start))
	return sp, nil
}

// savepointWrittenLocked completes the savepoint request of checkpoint
// id, if any: written at path, or failed with err.
func (jm *JobManager) savepointWrittenLocked(j *job, id checkpoint.ID, path string, err error) {
	r, ok := j.ft.pendingSP[id]
	if !ok {
		return
	}
	if err == nil && r.kind == checkpoint.StopSavepoint {
		// Done once the commits are confirmed (stopJobLocked), or
		// failed (stopFailedLocked).
		r.location = path
		return
	}
	delete(j.ft.pendingSP, id)
	if err != nil {
		r.failLocked(err)
		return
	}
	r.done, r.location = true, path
}

// stopJobLocked ends j FINISHED after its stop-savepoint completed and
// every subtask confirmed it committed the savepoint's transactions: the
// stop's request is COMPLETED, the workers are released.
func (jm *JobManager) stopJobLocked(j *job, e checkpoint.StopJob, now time.Time) {
	if r, ok := j.ft.pendingSP[e.ID]; ok {
		delete(j.ft.pendingSP, e.ID)
		if r.location == "" {
			r.location = e.Path
		}
		r.done = true
	}
	if v1.TerminalJobStatus(j.status) || j.status != statusRunning {
		return
	}
	jm.log.Info("job stopped with a savepoint", "job", j.id, "name", j.name, "checkpoint", e.ID, "savepoint", e.Path)
	jm.endLocked(j, statusFinished, statusFinished, nil, "job stopped with a savepoint", now)
}

// stopFailedLocked fails the request of a stop-with-savepoint whose
// savepoint completed but whose commits were not all confirmed. The job
// is not stopped: it fails over (or already ended), and its restore, like
// a run from the savepoint, commits what the savepoint holds.
func (jm *JobManager) stopFailedLocked(j *job, e checkpoint.StopFailed) {
	r, ok := j.ft.pendingSP[e.ID]
	if !ok {
		return
	}
	delete(j.ft.pendingSP, e.ID)
	path := r.location
	if path == "" {
		path = e.Path
	}
	r.failLocked(fmt.Errorf("stop of job %s failed: the savepoint %s is complete and usable, but %s; the job was not stopped FINISHED (it fails over, or ended); a restore from the savepoint (spate run -s %s) commits its transactions", j.id, path, e.Err, path))
	jm.log.Warn("stop with a savepoint failed", "job", j.id, "checkpoint", e.ID, "savepoint", path, "err", e.Err)
}
