package jobmanager

import (
	"fmt"
	"sort"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// A job's status moves as Flink's JobStatus does (RESTARTING comes with
// restart strategies):
//
//	CREATED ──slots──▶ RUNNING ──all subtasks finished──▶ FINISHED
//	   │                  │
//	   │ slot timeout     ├──a subtask, worker or TaskManager failed──▶ FAILING ──workers gone──▶ FAILED
//	   ▼                  │
//	 FAILED               └──cancel──▶ CANCELLING ──workers gone──▶ CANCELED
//	CREATED ──cancel──▶ CANCELED
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
	id          JobID
	name        string
	graph       *jobgraph.JobGraph
	graphJSON   []byte
	artifact    string
	args        []string
	env         map[string]string
	status      string
	timestamps  map[string]int64
	submitted   time.Time
	slotsNeeded int
	workers     []*worker
	// tasks[v][s] is subtask s of vertex v.
	tasks      [][]task
	exceptions []v1.ExceptionEntry
	// ready is closed when every worker reported ready, or the job ended
	// before; readyErr tells which.
	ready    chan struct{}
	readyErr error
	// releasing holds the workers whose TaskManagers have not yet confirmed
	// they are gone.
	releasing map[string]*worker
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
	id            string
	resourceID    string
	host          string
	slots         int
	used          int
	cpu           int
	mem           int64
	lastHeartbeat time.Time
	// idleSince is when its last slot was freed (or it registered).
	idleSince time.Time
	// out queues messages to the TaskManager; the goroutine serving its
	// session drains it. done is closed when the session must end.
	out    chan *rpcpb.JobManagerMessage
	done   chan struct{}
	cause  string
	closed bool
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
}

func (jm *JobManager) freeSlotsLocked() int {
	n := 0
	for _, tm := range jm.mu.tms {
		n += tm.slots - tm.used
	}
	return n
}

func (jm *JobManager) totalSlotsLocked() int {
	n := 0
	for _, tm := range jm.mu.tms {
		n += tm.slots
	}
	return n
}

// scheduleLocked deploys waiting jobs, in submission order, for which
// enough slots are free. A job takes the free slots of the TaskManagers in
// registration order, one worker per TaskManager; subtask s of every vertex
// runs in the job's slot s (slot sharing, as Flink's default).
func (jm *JobManager) scheduleLocked() {
	for _, id := range jm.mu.order {
		j := jm.mu.jobs[id]
		if j.status != statusCreated {
			continue
		}
		if jm.freeSlotsLocked() < j.slotsNeeded {
			// First come, first served: a big job is not overtaken.
			jm.requestLocked(j.slotsNeeded)
			return
		}
		need := j.slotsNeeded
		var slotWorkers []string
		for _, tmID := range jm.mu.tmOrder {
			tm := jm.mu.tms[tmID]
			free := tm.slots - tm.used
			if free == 0 || need == 0 {
				continue
			}
			take := min(free, need)
			w := &worker{id: fmt.Sprintf("w%d", len(j.workers)), tm: tm, slots: take}
			j.workers = append(j.workers, w)
			tm.used += take
			need -= take
			for range take {
				slotWorkers = append(slotWorkers, w.id)
			}
		}
		now := time.Now()
		j.setStatusLocked(statusRunning, now)
		for vi := range j.tasks {
			for s := range j.tasks[vi] {
				j.tasks[vi][s].state = v1.TaskDeploying
			}
		}
		for _, w := range j.workers {
			w.tm.sendLocked(&rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Deploy{Deploy: &rpcpb.DeployWorker{
				JobId: string(j.id), JobName: j.name, WorkerId: w.id, Artifact: j.artifact,
				Args: j.args, Env: j.env, Fingerprint: j.graph.Fingerprint,
				SlotWorkers: slotWorkers, Slots: int32(w.slots), JobGraph: j.graphJSON,
			}}})
		}
		jm.log.Info("job deployed", "job", j.id, "name", j.name, "slots", j.slotsNeeded, "workers", len(j.workers))
	}
}

// failLocked fails j with cause, raised at location (a TaskManager or
// worker, or empty). Workers still running are released; the job is FAILED
// once they are gone.
func (jm *JobManager) failLocked(j *job, cause error, location string) {
	jm.failWithLocked(j, exceptionFailure, cause, location)
}

// Exception names in a job's history.
const (
	exceptionFailure = "JobFailure"
	// exceptionTMLost is a lost TaskManager; it is the root exception
	// whenever present, since it explains the failures it causes on other
	// TaskManagers.
	exceptionTMLost = "TaskManagerLost"
)

func (jm *JobManager) failWithLocked(j *job, name string, cause error, location string) {
	if v1.TerminalJobStatus(j.status) || j.status == statusFailing || j.status == statusCancelling {
		return
	}
	now := time.Now()
	j.exceptions = append(j.exceptions, v1.ExceptionEntry{
		ExceptionName: name, Stacktrace: cause.Error(), Timestamp: now.UnixMilli(), Location: location,
	})
	jm.log.Warn("job failed", "job", j.id, "name", j.name, "cause", cause)
	jm.endLocked(j, statusFailing, statusFailed, fmt.Errorf("job %s failed: %w", j.id, cause))
}

// cancelLocked cancels j; its workers are released and the job is CANCELED
// once they are gone.
func (jm *JobManager) cancelLocked(j *job) {
	if v1.TerminalJobStatus(j.status) || j.status == statusFailing || j.status == statusCancelling {
		return
	}
	jm.log.Info("job cancelled", "job", j.id, "name", j.name)
	jm.endLocked(j, statusCancelling, statusCanceled, fmt.Errorf("job %s was cancelled", j.id))
}

func (jm *JobManager) endLocked(j *job, transient, final string, readyErr error) {
	now := time.Now()
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
	if len(j.workers) == 0 {
		j.setStatusLocked(final, now)
		jm.endedLocked(j)
		return
	}
	j.setStatusLocked(transient, now)
	jm.releaseLocked(j, "job "+transient)
	if len(j.releasing) == 0 {
		j.setStatusLocked(final, now)
		jm.endedLocked(j)
	}
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
			jm.freeLocked(j, w)
			continue
		}
		j.releasing[w.tm.id] = w
		w.tm.sendLocked(&rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Release{Release: &rpcpb.ReleaseJob{JobId: string(j.id), Reason: reason}}})
	}
}

// releasedLocked records that a TaskManager stopped j's worker.
func (jm *JobManager) releasedLocked(j *job, tmID string) {
	w, ok := j.releasing[tmID]
	if !ok {
		return
	}
	delete(j.releasing, tmID)
	jm.freeLocked(j, w)
	if len(j.releasing) == 0 {
		now := time.Now()
		switch j.status {
		case statusFailing:
			j.setStatusLocked(statusFailed, now)
		case statusCancelling:
			j.setStatusLocked(statusCanceled, now)
		}
		jm.endedLocked(j)
	}
	jm.scheduleLocked()
}

func (jm *JobManager) freeLocked(j *job, w *worker) {
	if w.slots > 0 {
		w.tm.used -= w.slots
		w.slots = 0
		if w.tm.used == 0 {
			w.tm.idleSince = time.Now()
		}
	}
}

// endedLocked notes that j has ended with its workers gone.
func (jm *JobManager) endedLocked(j *job) {
	if v1.TerminalJobStatus(j.status) && len(j.releasing) == 0 && !closed(jm.mu.jobEnded) {
		close(jm.mu.jobEnded)
	}
}

// finishedLocked moves j to FINISHED if every subtask finished.
func (jm *JobManager) finishedLocked(j *job) {
	if j.status != statusRunning {
		return
	}
	for vi := range j.tasks {
		for s := range j.tasks[vi] {
			if j.tasks[vi][s].state != v1.TaskFinished {
				return
			}
		}
	}
	j.setStatusLocked(statusFinished, time.Now())
	jm.log.Info("job finished", "job", j.id, "name", j.name)
	jm.releaseLocked(j, "job finished")
}

// loseTMLocked removes a TaskManager whose session ended or whose
// heartbeats stopped, failing the jobs that had workers on it.
func (jm *JobManager) loseTMLocked(tm *taskManager, cause string) {
	if _, ok := jm.mu.tms[tm.id]; !ok {
		return
	}
	delete(jm.mu.tms, tm.id)
	for i, id := range jm.mu.tmOrder {
		if id == tm.id {
			jm.mu.tmOrder = append(jm.mu.tmOrder[:i], jm.mu.tmOrder[i+1:]...)
			break
		}
	}
	tm.cause = cause
	tm.closeLocked()
	jm.log.Warn("taskmanager lost", "taskmanager", tm.id, "resource", tm.resourceID, "cause", cause)
	for _, id := range jm.mu.order {
		j := jm.mu.jobs[id]
		for _, w := range j.workers {
			if w.tm != tm {
				continue
			}
			err := fmt.Errorf("TaskManager %s (%s) running worker %s was lost: %s", tm.id, tm.resourceID, w.id, cause)
			if j.status == statusFailing || j.status == statusCancelling {
				// The job already fails, maybe of what this loss caused
				// (a worker's broken data connection): record the loss,
				// which becomes the root exception.
				j.exceptions = append(j.exceptions, v1.ExceptionEntry{
					ExceptionName: exceptionTMLost, Stacktrace: err.Error(), Timestamp: time.Now().UnixMilli(), Location: tm.id,
				})
			} else {
				jm.failWithLocked(j, exceptionTMLost, err, tm.id)
			}
			jm.releasedLocked(j, tm.id)
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
	out := make([]*job, 0, len(jm.mu.order))
	for _, id := range jm.mu.order {
		out = append(out, jm.mu.jobs[id])
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].submitted.After(out[b].submitted) })
	return out
}
