package jobmanager

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/jobmaster"
	"github.com/spate-dev/spate/internal/restart"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
	"github.com/spate-dev/spate/internal/savepoint"
)

// Fault tolerance is decided by the pure packages and carried out here:
// internal/jobmaster decides a failed job's fate (restart after a backoff,
// or fail) and numbers its attempts; internal/checkpoint coordinates its
// checkpoints; internal/checkpoint/storage keeps them. This file feeds
// them the JobManager's events (under mu, with the clock's time) and
// performs their effects: messages to TaskManagers and workers go through
// queues, storage I/O runs on goroutines owned by jm.wg that report back
// under mu, so mu is never held across I/O.
//
// A restart is a whole-job failover: every worker of the attempt is
// released, and once all are gone and the backoff passed, the job waits
// for slots again and is deployed with attempt+1, restoring the latest
// completed checkpoint that storage can load whole.

const statusRestarting = v1.JobRestarting

// faultTolerance is a job's failover and checkpoint state.
type faultTolerance struct {
	master *jobmaster.Master
	coord  *checkpoint.Coordinator
	cfg    checkpoint.Config
	// store is the job's checkpoint storage (nil without checkpointing),
	// storeURL its state.checkpoints.dir.
	store    storage.Store
	storeURL string
	// storeEnv is what the job's workers need in their environment to
	// open store too (its s3.* options, storage.OptionsEnv), nil if
	// nothing.
	storeEnv map[string]string
	// restore is what the next deployment restores (nil: start empty),
	// restorePath its _metadata's URL, assigned what each subtask of the
	// job restores of it (checkpoint.Assign: the job may run at other
	// parallelisms than the checkpoint was taken at), for restore
	// assignedFor. Set by restoreFrom; a restore set otherwise (already
	// in the job's layout) is deployed as it is.
	restore     *checkpoint.Metadata
	restorePath string
	assigned    []checkpoint.SubtaskState
	assignedFor *checkpoint.Metadata
	// vertices are the job's vertices as the coordinator sees them.
	vertices []checkpoint.Vertex
	// initial is what the first deployment restores (a savepoint's or
	// a retained checkpoint's state, execution.savepoint.path), restored
	// again by a restart before the job's first completed checkpoint;
	// nil to start empty.
	initial     *checkpoint.Metadata
	initialPath string
	// operators name the job's operators in its checkpoints' metadata
	// (by uid), parallelism its vertices', for savepoints; savepointDir
	// is execution.checkpointing.savepoint-dir.
	operators    []checkpoint.OperatorRef
	parallelism  []int
	savepointDir string
	// storeOpts are the job's storage options (its s3.* keys), for its
	// savepoints and the savepoint it starts from.
	storeOpts storage.Options
	// savepoints are the job's savepoint requests by trigger id, and
	// by checkpoint id while pending.
	savepoints map[string]*savepointRequest
	pendingSP  map[checkpoint.ID]*savepointRequest
	// queued is set while a redeployment waits in the scheduler's queue
	// for slots.
	queued bool
	// orders holds, by worker id, the queue of checkpoint orders of the
	// current attempt's workers (created at deployment, so that an order
	// sent before the worker subscribed waits for it); closed when the
	// attempt ends.
	orders map[string]chan *rpcpb.CheckpointOrder
	done   chan struct{}
}

// orderQueue is how many checkpoint orders may wait for a worker.
const orderQueue = 256

// jobConfig is the configuration a job runs with: the cluster's, then
// the job's own entries from its submission.
func (jm *JobManager) jobConfig(env map[string]string) (config.Config, error) {
	var c config.Config
	for k, v := range jm.cfg.Settings.Entries() {
		c.Set(k, v)
	}
	if props, ok := env[config.PropertiesEnv]; ok {
		if err := c.ApplyProperties(props); err != nil {
			return c, fmt.Errorf("the job's configuration (%s): %w", config.PropertiesEnv, err)
		}
	}
	return c, nil
}

// newFaultTolerance builds a submitted job's failover and checkpoint
// state from its configuration and graph.
func (jm *JobManager) newFaultTolerance(ctx context.Context, g *jobgraph.JobGraph, env map[string]string) (*faultTolerance, error) {
	c, err := jm.jobConfig(env)
	if err != nil {
		return nil, err
	}
	ccfg, err := checkpoint.ConfigFrom(c)
	if err != nil {
		return nil, err
	}
	strategy, err := restart.FromConfig(c, ccfg.Interval > 0, rand.Float64)
	if err != nil {
		return nil, err
	}
	ft := &faultTolerance{cfg: ccfg}
	par := make([]int, len(g.Vertices))
	vertices := make([]checkpoint.Vertex, len(g.Vertices))
	index := map[string]int{}
	for i, v := range g.Vertices {
		par[i] = v.Parallelism
		vertices[i].Name, vertices[i].Parallelism, vertices[i].MaxParallelism = v.Name, v.Parallelism, v.MaxParallelism
		index[v.ID] = i
	}
	for _, e := range g.Edges {
		to, ok1 := index[e.Target]
		from, ok2 := index[e.Source]
		if !ok1 || !ok2 {
			continue
		}
		fwd := e.Partitioning == jobgraph.Forward && vertices[from].Parallelism == vertices[to].Parallelism
		vertices[to].Inputs = append(vertices[to].Inputs, checkpoint.Input{From: from, Forward: fwd})
	}
	ft.master = jobmaster.New(jobmaster.Config{Strategy: strategy, Parallelism: par, Provided: jm.cfg.Provider != nil, DeploymentTimeout: jm.cfg.DeploymentTimeout})
	ft.operators, ft.parallelism = savepoint.Operators(g), par
	ft.savepointDir = c.String(savepoint.Key, "")
	if ft.storeOpts, err = storage.OptionsFrom(c); err != nil {
		return nil, err
	}
	ft.savepoints, ft.pendingSP = map[string]*savepointRequest{}, map[checkpoint.ID]*savepointRequest{}
	if path := c.String(savepoint.KeyPath, ""); path != "" {
		if ccfg.Interval <= 0 {
			return nil, fmt.Errorf("starting from %s (%s) needs checkpoints: set %s", path, savepoint.KeyPath, checkpoint.KeyInterval)
		}
		allow, err := c.Bool(savepoint.KeyAllowNonRestored, false)
		if err != nil {
			return nil, err
		}
		snap, err := savepoint.Load(ctx, path, ft.storeOpts)
		if err != nil {
			return nil, err
		}
		m, err := savepoint.Assign(g, snap, allow)
		if err != nil {
			return nil, err
		}
		ft.initial, ft.initialPath = &m, snap.Path
		ft.restore, ft.restorePath = &m, snap.Path
	}
	ft.coord = checkpoint.New(ccfg, vertices)
	ft.vertices = vertices
	if ccfg.Interval > 0 {
		ft.storeURL = c.String(checkpoint.KeyDir, "")
		if ft.storeURL == "" {
			if ft.storeURL, err = jm.defaultCheckpointDir(); err != nil {
				return nil, err
			}
		}
		if ft.store, err = storage.OpenConfig(ft.storeURL, c); err != nil {
			return nil, err
		}
		// The workers read the state files of the checkpoint they
		// restore: they open the storage with the job's options, whether
		// the cluster's configuration or the job's set them.
		if props := storage.Properties(c); len(props) > 0 {
			ft.storeEnv = map[string]string{storage.OptionsEnv: config.EncodeProperties(props)}
		}
	}
	return ft, nil
}

// defaultCheckpointDir is where checkpoints go without state.checkpoints.dir:
// beside the blob store in the cluster's directory, or a temporary
// directory removed with the JobManager.
func (jm *JobManager) defaultCheckpointDir() (string, error) {
	jm.ckptDirOnce.Do(func() {
		if !jm.ownBlob {
			jm.ckptDir = filepath.Join(filepath.Dir(filepath.Clean(jm.blobDir)), "checkpoints")
			return
		}
		jm.ckptDir, jm.ckptDirErr = os.MkdirTemp("", "spate-checkpoints-")
		jm.ownCkptDir = jm.ckptDirErr == nil
	})
	if jm.ckptDirErr != nil {
		return "", fmt.Errorf("create a checkpoint directory (set %s): %w", checkpoint.KeyDir, jm.ckptDirErr)
	}
	return jm.ckptDir, nil
}

// workerID names worker i of j's next deployment: w<i> for the first
// attempt, w<i>.<attempt> after, so that a worker of an older attempt is
// never taken for one of the current.
func workerID(attempt int64, i int) string {
	if attempt <= 1 {
		return fmt.Sprintf("w%d", i)
	}
	return fmt.Sprintf("w%d.%d", i, attempt)
}

// nextAttempt is the attempt j's next deployment gets.
func (j *job) nextAttempt() int64 {
	if j.ft == nil {
		return 1
	}
	return j.ft.master.Attempt() + 1
}

// staleAttempt tells whether a call carrying attempt comes from another
// attempt than j's current one. A caller that sends none (0) is fenced by
// its worker id alone, which names its attempt (workerID).
func (j *job) staleAttempt(attempt int64) bool {
	return attempt != 0 && attempt != max(j.attempt, 1)
}

// deployedFTLocked records j's deployment of attempt at now, with its
// workers' ids, and returns what each worker's DeployWorker carries.
func (jm *JobManager) deployedFTLocked(j *job, now time.Time) (ckpt *rpcpb.CheckpointOptions, restoreFor func(w *worker, slotWorkers []string) *rpcpb.RestoreCheckpoint) {
	ft := j.ft
	if ft == nil {
		j.attempt = 1
		return nil, func(*worker, []string) *rpcpb.RestoreCheckpoint { return nil }
	}
	j.attempt = ft.master.Attempt() + 1
	ft.queued = false
	ft.master.Deployed(now, j.attempt)
	var finished []checkpoint.SubtaskState
	assigned := ft.restoreAssigned()
	if ft.restore != nil {
		for _, st := range assigned {
			if st.Finished {
				finished = append(finished, st)
				ft.master.RestoredFinished(st.Vertex, st.Subtask)
			}
		}
	}
	jm.checkpointEffectsLocked(j, ft.coord.Deployed(now, j.attempt, finished), now)
	if ft.restore != nil {
		ft.coord.Restored(now, ft.restore.ID, ft.restorePath)
	}
	ft.done = make(chan struct{})
	ft.orders = map[string]chan *rpcpb.CheckpointOrder{}
	for _, w := range j.workers {
		ft.orders[w.id] = make(chan *rpcpb.CheckpointOrder, orderQueue)
	}
	if ft.cfg.Interval > 0 {
		mode := rpcpb.CheckpointMode_EXACTLY_ONCE
		if ft.cfg.Mode == checkpoint.AtLeastOnce {
			mode = rpcpb.CheckpointMode_AT_LEAST_ONCE
		}
		ckpt = &rpcpb.CheckpointOptions{Mode: mode, MaxAlignedBytes: ft.cfg.MaxAlignedBytes}
	}
	restore, path := ft.restore, ft.restorePath
	restoreFor = func(w *worker, slotWorkers []string) *rpcpb.RestoreCheckpoint {
		if restore == nil {
			return nil
		}
		r := &rpcpb.RestoreCheckpoint{CheckpointId: int64(restore.ID), Metadata: path, TimestampMs: restore.TimestampMs}
		for _, st := range assigned {
			if st.Subtask < len(slotWorkers) && slotWorkers[st.Subtask] == w.id {
				r.Subtasks = append(r.Subtasks, subtaskStateProto(st))
			}
		}
		return r
	}
	if restore != nil {
		jm.log.Info("job restores a checkpoint", "job", j.id, "attempt", j.attempt, "checkpoint", restore.ID, "metadata", path)
	}
	return ckpt, restoreFor
}

// restoreFrom makes m, whose _metadata is at path, what j's next
// deployment restores (nil: start empty), and says what each subtask
// restores of it (checkpoint.Assign). It fails when m cannot be restored
// at the job's parallelisms (one above pipeline.max-parallelism, or state
// taken with another max parallelism), naming the vertex and the fix.
// This is where a job started from a retained checkpoint or a savepoint,
// possibly taken at other parallelisms, gets its restore point.
func (ft *faultTolerance) restoreFrom(m *checkpoint.Metadata, path string) error {
	if m == nil {
		ft.restore, ft.restorePath, ft.assigned, ft.assignedFor = nil, "", nil, nil
		return nil
	}
	assigned, err := checkpoint.Assign(*m, ft.vertices)
	if err != nil {
		return err
	}
	ft.restore, ft.restorePath, ft.assigned, ft.assignedFor = m, path, assigned, m
	return nil
}

// restoreAssigned returns what each subtask restores of ft.restore: as
// restoreFrom assigned it, or its subtask states as they are.
func (ft *faultTolerance) restoreAssigned() []checkpoint.SubtaskState {
	if ft.restore == nil {
		return nil
	}
	if ft.assignedFor == ft.restore {
		return ft.assigned
	}
	return ft.restore.Subtasks
}

func subtaskStateProto(st checkpoint.SubtaskState) *rpcpb.SubtaskState {
	out := &rpcpb.SubtaskState{Vertex: int32(st.Vertex), Subtask: int32(st.Subtask), Finished: st.Finished, Attempt: st.Attempt}
	for _, h := range st.States {
		out.States = append(out.States, handleProto(h))
	}
	return out
}

func handleProto(h checkpoint.Handle) *rpcpb.StateHandle {
	p := &rpcpb.StateHandle{Operator: int32(h.Operator), OperatorUid: h.OperatorUID, Kind: h.Kind, Url: h.URL, Size: h.Size, Sha256: h.SHA256, Inline: h.Inline}
	if h.KeyGroupStart != 0 || h.KeyGroupEnd != 0 {
		p.KeyGroups = &rpcpb.KeyGroupRange{Start: int32(h.KeyGroupStart), End: int32(h.KeyGroupEnd)}
	}
	return p
}

func handleFromProto(p *rpcpb.StateHandle) checkpoint.Handle {
	h := checkpoint.Handle{Operator: int(p.Operator), OperatorUID: p.OperatorUid, Kind: p.Kind, URL: p.Url, Size: p.Size, SHA256: p.Sha256, Inline: p.Inline}
	if kg := p.KeyGroups; kg != nil {
		h.KeyGroupStart, h.KeyGroupEnd = int(kg.Start), int(kg.End)
	}
	return h
}

// failoverLocked lets j's master decide about failure f, which would fail
// the job: it returns true when the job restarts (or the failure changes
// nothing), false when the job fails for good (the caller goes on to
// FAILING).
func (jm *JobManager) failoverLocked(j *job, idx int, f failure, now time.Time) bool {
	ft := j.ft
	attempt := f.attempt
	if j.status == statusRestarting && attempt == j.attempt {
		// A consequence of the release, or of the lost attempt.
		return true
	}
	res, eff := ft.master.Fail(now, jobmaster.Failure{Attempt: attempt, Name: f.name, Message: f.err.Error(), Location: f.location})
	if res != jobmaster.Accepted {
		return true
	}
	if ft.queued {
		// The master withdrew the redeployment waiting for slots: it
		// asks again (Deploy) if it restarts.
		ft.queued = false
		jm.schedEffectsLocked(jm.mu.sched.Dequeue(now, schedJob(j)), now)
	}
	if ft.master.Status() != jobmaster.Restarting {
		jm.checkpointEffectsLocked(j, ft.coord.Suspend(now, "job FAILING: "+f.err.Error()), now)
		return false
	}
	j.triage.SetRoot(idx, f.secondary)
	jm.log.Warn("job failed; restarting", "job", j.id, "name", j.name, "attempt", j.attempt, "cause", f.err, "strategy", ft.master.Strategy())
	jm.masterEffectsLocked(j, eff, now)
	return true
}

// masterEffectsLocked carries out the job master's effects.
func (jm *JobManager) masterEffectsLocked(j *job, eff []jobmaster.Effect, now time.Time) {
	for _, e := range eff {
		switch e := e.(type) {
		case jobmaster.SuspendCheckpoints:
			jm.checkpointEffectsLocked(j, j.ft.coord.Suspend(now, e.Reason), now)
		case jobmaster.Cancel:
			// A finished job's workers are released as it ends (Status
			// below, which comes first); a restart's here.
			if j.ft.master.Status() == jobmaster.Restarting && (j.status == statusRunning || j.status == statusCreated) {
				jm.restartReleaseLocked(j, e.Reason, now)
			}
		case jobmaster.StartTaskManager:
			// The waiting redeployment asks for what it lacks.
			jm.scheduleLocked(now)
		case jobmaster.Deploy:
			jm.redeployLocked(j, e, now)
		case jobmaster.Status:
			// Only if still so: an earlier effect may have redeployed
			// the job already (no workers to wait for, no backoff).
			if e.To == jobmaster.Restarting && j.ft.master.Status() == jobmaster.Restarting && j.status != statusRestarting {
				j.setStatusLocked(statusRestarting, now)
			}
			if e.To == jobmaster.Finished {
				jm.finishLocked(j, now)
			}
		case jobmaster.DeploymentTimedOut:
			if e.Attempt == j.attempt && j.status == statusRunning {
				jm.deploymentTimedOutLocked(j, now)
			}
		}
	}
}

// restartReleaseLocked stops j's current attempt for a restart: its
// subtasks are cancelled and its workers released; the master hears once
// they are gone.
func (jm *JobManager) restartReleaseLocked(j *job, reason string, now time.Time) {
	if j.readyErr == nil && !closed(j.ready) {
		j.readyErr = fmt.Errorf("job %s is restarting: %s", j.id, reason)
		close(j.ready)
	}
	for vi := range j.tasks {
		for s := range j.tasks[vi] {
			t := &j.tasks[vi][s]
			switch t.state {
			case v1.TaskFinished, v1.TaskFailed, v1.TaskCanceled:
			default:
				t.state = v1.TaskCanceled
				t.end = now.UnixMilli()
			}
		}
	}
	delete(jm.mu.suspects, j.id)
	j.triage.Clear()
	j.setStatusLocked(statusRestarting, now)
	jm.closeOrdersLocked(j)
	jm.releaseLocked(j, "job RESTARTING: "+reason)
	if len(j.releasing) == 0 {
		jm.restartReleasedLocked(j, now)
	}
}

// restartReleasedLocked notes that every worker of j's attempt is gone.
func (jm *JobManager) restartReleasedLocked(j *job, now time.Time) {
	j.releasing = nil
	for _, w := range j.workers {
		w.slots = 0
	}
	j.workers = nil
	jm.schedEffectsLocked(jm.mu.sched.FreeJob(now, schedJob(j)), now)
	_, eff := j.ft.master.Released(now, j.attempt)
	jm.masterEffectsLocked(j, eff, now)
}

// redeployLocked prepares j's next attempt: it loads the restore point
// (off mu), then queues the job for slots.
func (jm *JobManager) redeployLocked(j *job, d jobmaster.Deploy, now time.Time) {
	ft := j.ft
	var ids []checkpoint.ID
	for _, c := range ft.coord.CompletedCheckpoints() {
		if c.ID <= d.Restore {
			ids = append(ids, c.ID)
		}
	}
	if ft.store == nil || len(ids) == 0 || jm.mu.closed {
		// Before its first checkpoint the job restores what it started
		// from.
		jm.queueRedeployLocked(j, ft.initial, ft.initialPath, now)
		return
	}
	store, jobID, ctx := ft.store, string(j.id), jm.runCtx
	jm.wg.Add(1)
	go func() {
		defer jm.wg.Done()
		m, path, skipped, ok, err := storage.LoadLatest(ctx, store, jobID, ids, jm.log)
		jm.mu.Lock()
		defer jm.mu.Unlock()
		at := jm.clock.Now()
		if j.status != statusRestarting || jm.mu.closed {
			return
		}
		for _, s := range skipped {
			j.triage.Record(at, failure{name: "CheckpointSkipped", err: s}.report())
		}
		for _, id := range ids {
			if !ok || id > m.ID {
				ft.coord.Forget(id)
			}
		}
		if err != nil {
			jm.failLocked(j, fmt.Errorf("load the checkpoint to restore from %s: %w", ft.storeURL, err), "", at)
			return
		}
		if !ok {
			jm.log.Warn("job restarts without a checkpoint: no completed checkpoint could be loaded", "job", j.id, "skipped", len(skipped), "from", ft.initialPath)
			jm.queueRedeployLocked(j, ft.initial, ft.initialPath, at)
			return
		}
		jm.queueRedeployLocked(j, &m, path, at)
	}()
}

// queueRedeployLocked puts j, RESTARTING, among the jobs waiting for
// slots, to be deployed restoring m (nil: empty), at the job's
// parallelisms, which may not be those m was taken at.
func (jm *JobManager) queueRedeployLocked(j *job, m *checkpoint.Metadata, path string, now time.Time) {
	ft := j.ft
	if err := ft.restoreFrom(m, path); err != nil {
		jm.failLocked(j, fmt.Errorf("restore %s: %w", path, err), "", now)
		return
	}
	ft.queued = true
	for vi := range j.tasks {
		for s := range j.tasks[vi] {
			j.tasks[vi][s] = task{state: v1.TaskCreated}
		}
	}
	j.ready = make(chan struct{})
	j.readyErr = nil
	j.publish = nil
	jm.schedEffectsLocked(jm.mu.sched.Requeue(now, schedJob(j), j.slotsNeeded), now)
}

// waitingForSlots tells whether j waits in the scheduler's queue for
// slots: its first deployment, or a restart's.
func (j *job) waitingForSlots() bool {
	return j.status == statusCreated || j.status == statusRestarting && j.ft != nil && j.ft.queued
}

// tickFTLocked runs j's master and coordinator timers.
func (jm *JobManager) tickFTLocked(j *job, now time.Time) {
	if j.ft == nil {
		return
	}
	jm.masterEffectsLocked(j, j.ft.master.Tick(now), now)
	if j.status == statusRunning {
		jm.checkpointEffectsLocked(j, j.ft.coord.Tick(now), now)
	}
}

// endFTLocked stops j's checkpoints as it ends (FINISHED, FAILING,
// CANCELLING): pending ones are aborted (savepoints too), the workers'
// order streams end. A finished job's checkpoints are deleted; a
// failed or cancelled job's as execution.checkpointing.externalized-
// checkpoint-retention says (by default a failed job's are kept, Flink's
// DELETE_ON_CANCELLATION).
func (jm *JobManager) endFTLocked(j *job, final string, now time.Time) {
	ft := j.ft
	if ft == nil {
		return
	}
	jm.checkpointEffectsLocked(j, ft.coord.Suspend(now, "job "+final), now)
	if final == statusCanceled {
		ft.master.Cancel(now)
	}
	jm.closeOrdersLocked(j)
	for _, r := range ft.pendingSP {
		r.failLocked(fmt.Errorf("the job is %s", final))
	}
	clear(ft.pendingSP)
	if ft.store != nil && !ft.cfg.Retention.Keeps(final) && !jm.mu.closed {
		store, id := ft.store, string(j.id)
		jm.wg.Add(1)
		go func() {
			defer jm.wg.Done()
			if err := store.Delete(jm.runCtx, id); err != nil {
				jm.log.Warn("could not delete an ended job's checkpoints", "job", id, "err", err)
			}
		}()
	}
}

func (jm *JobManager) closeOrdersLocked(j *job) {
	if j.ft != nil && j.ft.done != nil && !closed(j.ft.done) {
		close(j.ft.done)
	}
}

// restartsOf counts j's restarts.
func restartsOf(j *job) int {
	if j.ft == nil {
		return 0
	}
	return j.ft.master.Restarts()
}
