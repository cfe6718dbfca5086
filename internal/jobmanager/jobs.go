package jobmanager

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/jobmaster"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
	"github.com/spate-dev/spate/internal/scheduler"
)

// A job's status moves as Flink's JobStatus does (RESTARTING comes with
// restart strategies):
//
//	CREATED ──slots──▶ RUNNING ──all subtasks finished──▶ FINISHED
//	   │                  │
//	   │ slot timeout     ├──a subtask, worker or TaskManager failed──▶ FAILING ──workers gone──▶ FAILED
//	   ▼                  ├──workers not ready in the deployment timeout──▶ FAILING
//	 FAILED               └──cancel──▶ CANCELLING ──workers gone──▶ CANCELED
//	CREATED ──cancel──▶ CANCELED
//
// A secondary failure (a worker's lost connection to a peer) keeps the job
// RUNNING for the root-cause window, waiting for its cause (the peer's
// exit, its TaskManager's loss), which then is the root exception. A job
// that has ended with its workers gone leaves the active jobs for the job
// store (jobstore.go).
const (
	statusCreated    = v1.JobCreated
	statusRunning    = v1.JobRunning
	statusFailing    = v1.JobFailing
	statusFailed     = v1.JobFailed
	statusCancelling = v1.JobCancelling
	statusCanceled   = v1.JobCanceled
	statusFinished   = v1.JobFinished
)

// job is the job master's state of one job.
type job struct {
	id   JobID
	name string
	// graph, graphJSON, args and env are the submission's; they are
	// dropped when the job ends (its secrets with env), leaving vertices,
	// fingerprint and plan (a compact summary of the graph) for the REST
	// API.
	graph       *jobgraph.JobGraph
	graphJSON   []byte
	args        []string
	ordinal     int // the program's Execute call that made the job (v1.JobSubmitRequest.JobOrdinal)
	env         map[string]string
	plan        json.RawMessage
	vertices    []vertexInfo
	fingerprint string
	artifact    string
	// program names the program's binary, for messages; may be empty.
	program     string
	status      string
	timestamps  map[string]int64
	submitted   time.Time
	endedAt     time.Time
	slotsNeeded int
	workers     []*worker
	// tasks[v][s] is subtask s of vertex v.
	tasks [][]task
	// triage keeps the job's exception history and root exception, and
	// the secondary failure it waits to explain (the root-cause window).
	triage *jobmaster.Triage
	// ready is closed when every worker reported ready, or the job ended
	// before; readyErr tells which.
	ready    chan struct{}
	readyErr error
	// releasing holds the workers whose TaskManagers have not yet confirmed
	// they are gone.
	releasing map[string]*worker
	// publish holds, by worker id, the answers awaited by workers whose
	// sinks wait to publish (AwaitPublish).
	publish map[string]chan string
	// ft is the job's failover and checkpoint state (failover.go);
	// attempt the current deployment's attempt number (0 before the
	// first).
	ft      *faultTolerance
	attempt int64
}

// vertexInfo is what the REST API shows of a vertex.
type vertexInfo struct {
	id, name    string
	parallelism int
}

type worker struct {
	id    string
	tm    *taskManager
	slots int
	addr  string
}

type task struct {
	state      string
	in, out    int64
	start, end int64
}

// taskManager is the resource manager's record of a registered TaskManager.
type taskManager struct {
	id         string
	resourceID string
	host       string
	// slots is how many it offers; the scheduler counts those in use.
	slots int
	cpu   int
	mem   int64
	// promAddr is where its /metrics listens, as its last metrics
	// report said (metrics.go).
	promAddr string
	// out queues messages to the TaskManager; the goroutine serving its
	// session drains it. done is closed when the session must end; acked
	// when the TaskManager acknowledged the cluster's end.
	out      chan *rpcpb.JobManagerMessage
	done     chan struct{}
	acked    chan struct{}
	cause    string
	closed   bool
	ackedSet bool
}

// sendLocked queues m for the TaskManager; a TaskManager whose queue is
// full is not keeping up and is dropped.
func (tm *taskManager) sendLocked(m *rpcpb.JobManagerMessage) {
	if tm.closed {
		return
	}
	select {
	case tm.out <- m:
	default:
		tm.cause = "its message queue overflowed"
		tm.closeLocked()
	}
}

func (tm *taskManager) closeLocked() {
	if !tm.closed {
		tm.closed = true
		close(tm.done)
	}
}

func (j *job) setStatusLocked(s string, now time.Time) {
	j.status = s
	j.timestamps[s] = now.UnixMilli()
	// Workers waiting to publish learn at once that the job is ending.
	j.publishLocked()
}

// deployLocked sends the deployments of j's workers, one on each
// TaskManager of the slots the scheduler allocated, in its order; subtask
// s of every vertex runs in the job's slot s (slot sharing, as Flink's
// default).
func (jm *JobManager) deployLocked(j *job, a scheduler.Allocate, now time.Time) {
	var slotWorkers []string
	for _, s := range a.Slots {
		tm := jm.mu.tms[string(s.TaskManager)]
		w := &worker{id: workerID(j.nextAttempt(), len(j.workers)), tm: tm, slots: s.Count}
		j.workers = append(j.workers, w)
		for range s.Count {
			slotWorkers = append(slotWorkers, w.id)
		}
	}
	j.setStatusLocked(statusRunning, now)
	for vi := range j.tasks {
		for s := range j.tasks[vi] {
			j.tasks[vi][s].state = v1.TaskDeploying
		}
	}
	ckpt, restoreFor := jm.deployedFTLocked(j, now)
	for _, w := range j.workers {
		w.tm.sendLocked(&rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Deploy{Deploy: &rpcpb.DeployWorker{
			JobId: string(j.id), JobName: j.name, WorkerId: w.id, Artifact: j.artifact,
			Args: j.args, JobOrdinal: int32(j.ordinal), Env: j.workerEnv(), Fingerprint: j.fingerprint,
			SlotWorkers: slotWorkers, Slots: int32(w.slots), JobGraph: j.graphJSON,
			Attempt: j.attempt, Checkpointing: ckpt, Restore: restoreFor(w, slotWorkers),
		}}})
	}
	jm.log.Info("job deployed", "job", j.id, "name", j.name, "slots", j.slotsNeeded, "workers", len(j.workers), "attempt", j.attempt)
}

// workerEnv is the environment of j's workers: the job's own, and what
// they need to open its checkpoint storage.
func (j *job) workerEnv() map[string]string {
	if j.ft == nil || len(j.ft.storeEnv) == 0 {
		return j.env
	}
	env := maps.Clone(j.env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, j.ft.storeEnv)
	return env
}

// deploymentTimedOutLocked fails j, whose workers have not all reported
// ready within the deployment timeout (its master said so), naming the
// program and the workers.
func (jm *JobManager) deploymentTimedOutLocked(j *job, now time.Time) {
	var late []string
	location := ""
	for _, w := range j.workers {
		if w.addr == "" {
			late = append(late, fmt.Sprintf("%s on TaskManager %s (%s)", w.id, w.tm.id, w.tm.resourceID))
			if location == "" {
				location = w.tm.id
			}
		}
	}
	what := "worker " + strings.Join(late, ", worker ")
	err := fmt.Errorf("%s did not report ready within %v of its deployment (%s): %s did not start job %q. "+
		"A worker runs the program's main again, which must reach the job's Execute without blocking; check that the program is a Spate program (its main calls Execute or spate.Main) and see the worker's output with spate logs %s; if it needs longer to start, raise %s",
		what, jm.cfg.DeploymentTimeout, KeyDeploymentTimeout, j.programName(), j.name, j.id, KeyDeploymentTimeout)
	jm.reportLocked(j, failure{name: exceptionDeployTimeout, err: err, location: location}, now)
}

// programName names j's program for messages: its binary's name and the
// artifact's id.
func (j *job) programName() string {
	id := j.artifact
	if len(id) > 12 {
		id = id[:12]
	}
	if j.program != "" {
		return fmt.Sprintf("program %q (artifact %s)", j.program, id)
	}
	return "the program of artifact " + id
}

// Exception names in a job's history.
const (
	exceptionFailure = "JobFailure"
	// exceptionTMLost is a lost TaskManager.
	exceptionTMLost = "TaskManagerLost"
	// exceptionWorkerExited is a worker process that ended unexpectedly.
	exceptionWorkerExited = "WorkerExited"
	// exceptionPeerLost is a worker's lost data connection to another
	// worker: secondary, the consequence of another failure.
	exceptionPeerLost = "PeerConnectionLost"
	// exceptionDeployTimeout is workers that did not report ready.
	exceptionDeployTimeout = "DeploymentTimeout"
)

// maxExceptionHistory bounds a job's exception history, as Flink's
// web.exception-history-size (default 16).
const maxExceptionHistory = 16

// failure is one failure reported for a job.
type failure struct {
	name     string
	err      error
	location string
	// secondary marks a consequence of another failure (a lost peer
	// connection); death a process that died (a worker's exit, a lost
	// TaskManager), the cause a secondary failure waits for.
	secondary, death bool
	// attempt is the attempt the failure happened in; 0 for the job's
	// own (slots, checkpoints), which is always current.
	attempt int64
}

// failLocked reports a (primary) failure of j with cause, raised at
// location (a TaskManager or worker, or empty).
func (jm *JobManager) failLocked(j *job, cause error, location string, now time.Time) {
	jm.reportLocked(j, failure{name: exceptionFailure, err: cause, location: location}, now)
}

// reportLocked records a failure of j in its exception history, and
// carries out the triage's verdict (internal/jobmaster's Triage): a
// primary failure of a job still CREATED or RUNNING fails it at once and
// is its root exception; a secondary one waits up to the root-cause
// window for a cause (tickLocked fails the job with it after); a failure
// of a job already failing is kept as a concurrent exception, and a
// process death replaces a secondary root. Failures of jobs that
// finished or are cancelled are not the job's, nor those of an older
// attempt.
func (jm *JobManager) reportLocked(j *job, f failure, now time.Time) {
	if f.attempt != 0 && j.attempt != 0 && f.attempt != j.attempt {
		return // an older attempt's: a zombie's, or the lost attempt's
	}
	v, idx := j.triage.Report(now, j.status, f.report())
	switch v {
	case jobmaster.AwaitCause:
		jm.mu.suspects[j.id] = j
		jm.log.Info("job: secondary failure; waiting for its cause", "job", j.id, "cause", f.err, "window", jm.cfg.RootCauseWindow)
	case jobmaster.FailNow:
		jm.failNowLocked(j, idx, f, now)
	}
}

// report is f as the triage takes it.
func (f failure) report() jobmaster.Report {
	return jobmaster.Report{Name: f.name, Message: f.err.Error(), Location: f.location, Secondary: f.secondary, Death: f.death, Attempt: f.attempt}
}

// failureOf is the failure of a triage's report.
func failureOf(r jobmaster.Report) failure {
	return failure{name: r.Name, err: errors.New(r.Message), location: r.Location, secondary: r.Secondary, death: r.Death, attempt: r.Attempt}
}

// failNowLocked fails j with the failure at index idx of its history as
// the root exception. Workers still running are released; the job is
// FAILED once they are gone.
func (jm *JobManager) failNowLocked(j *job, idx int, f failure, now time.Time) {
	if v1.TerminalJobStatus(j.status) || j.status == statusFailing || j.status == statusCancelling {
		return
	}
	if j.ft != nil && jm.failoverLocked(j, idx, f, now) {
		return
	}
	j.triage.SetRoot(idx, f.secondary)
	jm.log.Warn("job failed", "job", j.id, "name", j.name, "cause", f.err)
	jm.endLocked(j, statusFailing, statusFailed, fmt.Errorf("job %s failed: %w", j.id, f.err), "job FAILING", now)
}

// cancelLocked cancels j; its workers are released and the job is CANCELED
// once they are gone.
func (jm *JobManager) cancelLocked(j *job, now time.Time) {
	if v1.TerminalJobStatus(j.status) || j.status == statusFailing || j.status == statusCancelling {
		return
	}
	jm.log.Info("job cancelled", "job", j.id, "name", j.name)
	jm.endLocked(j, statusCancelling, statusCanceled, fmt.Errorf("job %s was cancelled", j.id), "job CANCELLING", now)
}

// endLocked ends j: transient (FAILING, CANCELLING, FINISHED) while its
// workers stop, final once they are gone. The submission's graph and
// secrets are dropped at once, and the jobs waiting are scheduled again.
func (jm *JobManager) endLocked(j *job, transient, final string, readyErr error, reason string, now time.Time) {
	// Out of the queue first, lest the slots freed below go to it.
	jm.schedEffectsLocked(jm.mu.sched.Dequeue(now, schedJob(j)), now)
	jm.endFTLocked(j, final, now)
	if j.readyErr == nil && !closed(j.ready) {
		j.readyErr = readyErr
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
	j.compact()
	j.endedAt = now
	j.setStatusLocked(transient, now)
	jm.releaseLocked(j, reason)
	if len(j.releasing) == 0 {
		j.setStatusLocked(final, now)
		jm.endedLocked(j, now)
	}
}

// compact drops what only a running job needs: the submitted graph, the
// program's arguments and the job's environment (its secrets). The plan
// shown by the REST API becomes a summary of the graph.
func (j *job) compact() {
	if j.graph == nil {
		return
	}
	j.plan = compactPlan(j.graph)
	j.graph, j.graphJSON, j.args, j.env = nil, nil, nil, nil
}

// compactPlan is the summary of g an ended job keeps: its name,
// fingerprint, vertices and edges without the operators.
func compactPlan(g *jobgraph.JobGraph) json.RawMessage {
	type vertex struct {
		ID             string `json:"id"`
		Name           string `json:"name"`
		Parallelism    int    `json:"parallelism"`
		MaxParallelism int    `json:"maxParallelism"`
	}
	type edge struct {
		Source       string                `json:"source"`
		Target       string                `json:"target"`
		Partitioning jobgraph.Partitioning `json:"partitioning"`
	}
	p := struct {
		Name        string   `json:"name"`
		Fingerprint string   `json:"fingerprint"`
		Vertices    []vertex `json:"vertices"`
		Edges       []edge   `json:"edges"`
	}{Name: g.Name, Fingerprint: g.Fingerprint, Vertices: []vertex{}, Edges: []edge{}}
	for _, v := range g.Vertices {
		p.Vertices = append(p.Vertices, vertex{v.ID, v.Name, v.Parallelism, v.MaxParallelism})
	}
	for _, e := range g.Edges {
		p.Edges = append(p.Edges, edge{e.Source, e.Target, e.Partitioning})
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	return b
}

// releaseLocked asks every TaskManager still holding one of j's workers to
// stop it.
func (jm *JobManager) releaseLocked(j *job, reason string) {
	if j.releasing != nil {
		return
	}
	j.releasing = map[string]*worker{}
	for _, w := range j.workers {
		if w.tm.closed {
			jm.freeLocked(j, w, j.endedAt)
			continue
		}
		j.releasing[w.tm.id] = w
		w.tm.sendLocked(&rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Release{Release: &rpcpb.ReleaseJob{JobId: string(j.id), Reason: reason, Attempt: j.attempt}}})
	}
}

// releasedLocked records that a TaskManager stopped j's worker: its
// slots go to the jobs waiting.
func (jm *JobManager) releasedLocked(j *job, tmID string, now time.Time) {
	w, ok := j.releasing[tmID]
	if !ok {
		return
	}
	delete(j.releasing, tmID)
	jm.freeLocked(j, w, now)
	if len(j.releasing) == 0 && j.status == statusRestarting {
		jm.restartReleasedLocked(j, now)
		return
	}
	if len(j.releasing) == 0 {
		switch j.status {
		case statusFailing:
			j.setStatusLocked(statusFailed, now)
		case statusCancelling:
			j.setStatusLocked(statusCanceled, now)
		}
		jm.endedLocked(j, now)
	}
}

// freeLocked frees the slots of j's worker w (once).
func (jm *JobManager) freeLocked(j *job, w *worker, now time.Time) {
	if w.slots > 0 {
		w.slots = 0
		jm.schedEffectsLocked(jm.mu.sched.Free(now, schedJob(j), scheduler.TaskManagerID(w.tm.id)), now)
	}
}

// schedJob is j's id for the scheduler.
func schedJob(j *job) scheduler.JobID { return scheduler.JobID(j.id) }

// endedLocked notes that j has ended with its workers gone: it leaves the
// active jobs for the job store.
func (jm *JobManager) endedLocked(j *job, now time.Time) {
	if !v1.TerminalJobStatus(j.status) || len(j.releasing) != 0 {
		return
	}
	if _, ok := jm.mu.active[j.id]; ok {
		delete(jm.mu.active, j.id)
		j.workers = nil
		jm.archiveLocked(j, now)
	}
	if !closed(jm.mu.jobEnded) {
		close(jm.mu.jobEnded)
	}
}

// tasksFinishedLocked tells j's master the subtasks ([vertex, subtask])
// of the current attempt that reported FINISHED: the master decides when
// the job is FINISHED (masterEffectsLocked ends it). Only FINISHED goes to
// the master here: a failure reaches it through reportLocked, after the
// root-cause window.
func (jm *JobManager) tasksFinishedLocked(j *job, finished [][2]int, now time.Time) {
	if j.ft == nil {
		jm.finishedLocked(j, now)
		return
	}
	res := jobmaster.Ignored
	for _, vs := range finished {
		var eff []jobmaster.Effect
		res, eff = j.ft.master.TaskState(now, j.attempt, vs[0], vs[1], v1.TaskFinished, "", "")
		if res == jobmaster.Accepted {
			jm.masterEffectsLocked(j, eff, now)
		}
	}
	if j.status == statusRunning && len(j.unfinished()) == 0 {
		// Every subtask reported FINISHED, yet the master does not say the
		// job is: not expected (its attempt or status diverged); the job
		// must not run for ever.
		jm.log.Error("every subtask finished but the job master does not finish the job; finishing it", "job", j.id,
			"attempt", j.attempt, "master", j.ft.master.Status(), "masterAttempt", j.ft.master.Attempt(), "result", res)
		jm.finishLocked(j, now)
	}
}

// unfinished lists j's subtasks not reported FINISHED, as "v/s".
func (j *job) unfinished() []string {
	var out []string
	for vi := range j.tasks {
		for s := range j.tasks[vi] {
			if j.tasks[vi][s].state != v1.TaskFinished {
				out = append(out, fmt.Sprintf("%d/%d", vi, s))
			}
		}
	}
	return out
}

// finishedLocked moves j, which has no master, to FINISHED if every
// subtask finished.
func (jm *JobManager) finishedLocked(j *job, now time.Time) {
	if j.status == statusRunning && len(j.unfinished()) == 0 {
		jm.finishLocked(j, now)
	}
}

// finishLocked ends j, RUNNING, as FINISHED: its workers are released. A
// master that finishes the job while the JobManager has not heard every
// subtask finish (they would be shown CANCELED) is logged: it counts the
// subtasks a restored checkpoint recorded as finished.
func (jm *JobManager) finishLocked(j *job, now time.Time) {
	if j.status != statusRunning {
		return
	}
	if rest := j.unfinished(); len(rest) > 0 {
		jm.log.Info("job finished with subtasks the restored checkpoint recorded as finished", "job", j.id, "subtasks", rest)
	}
	jm.log.Info("job finished", "job", j.id, "name", j.name)
	jm.endLocked(j, statusFinished, statusFinished, nil, "job finished", now)
}

// loseTMLocked removes a TaskManager whose session ended or whose
// heartbeats stopped, failing the jobs that had workers on it.
func (jm *JobManager) loseTMLocked(tm *taskManager, cause string, now time.Time) {
	if _, ok := jm.mu.tms[tm.id]; !ok {
		return
	}
	delete(jm.mu.tms, tm.id)
	jm.mu.beats.Remove(tm.id)
	for i, id := range jm.mu.tmOrder {
		if id == tm.id {
			jm.mu.tmOrder = append(jm.mu.tmOrder[:i], jm.mu.tmOrder[i+1:]...)
			break
		}
	}
	tm.cause = cause
	tm.closeLocked()
	jm.log.Warn("taskmanager lost", "taskmanager", tm.id, "resource", tm.resourceID, "cause", cause)
	jm.schedEffectsLocked(jm.mu.sched.Lost(now, scheduler.TaskManagerID(tm.id)), now)
	for _, j := range jobsOf(jm.mu.active) {
		for _, w := range j.workers {
			if w.tm != tm {
				continue
			}
			err := fmt.Errorf("TaskManager %s (%s) running worker %s was lost: %s", tm.id, tm.resourceID, w.id, cause)
			jm.reportLocked(j, failure{name: exceptionTMLost, err: err, location: tm.id, death: true, attempt: j.attempt}, now)
			jm.releasedLocked(j, tm.id, now)
		}
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// counts tallies subtask states.
func counts(tasks []task) v1.TaskCounts {
	c := v1.TaskCounts{}
	for _, s := range []string{v1.TaskCreated, v1.TaskScheduled, v1.TaskDeploying, v1.TaskRunning, v1.TaskFinished, v1.TaskCanceling, v1.TaskCanceled, v1.TaskFailed, v1.TaskInitializing} {
		c[s] = 0
	}
	for _, t := range tasks {
		c[t.state]++
	}
	return c
}

// vertexStatus is a vertex's state from its subtasks', as Flink derives
// it: the least advanced wins, FAILED and CANCELED first.
func vertexStatus(tasks []task) string {
	c := counts(tasks)
	for _, s := range []string{v1.TaskFailed, v1.TaskCanceling, v1.TaskCanceled, v1.TaskCreated, v1.TaskScheduled, v1.TaskDeploying, v1.TaskInitializing, v1.TaskRunning} {
		if c[s] > 0 {
			return s
		}
	}
	return v1.TaskFinished
}

func (jm *JobManager) sortedJobsLocked() []*job {
	out := make([]*job, 0, len(jm.mu.jobs))
	for _, j := range jm.mu.jobs {
		out = append(out, j)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].submitted.After(out[b].submitted) })
	return out
}
