// Package jobmaster is the failover state machine of one job: its status
// as Flink's JobStatus, the attempt number (epoch) of each deployment,
// the restart decisions (through internal/restart), the restore point of
// each redeployment, and the history of the failures that caused them.
//
// It is pure: each method takes one event with its time (a subtask's
// state, a failure, a TaskManager lost, the attempt's workers ready, the
// old attempt's workers gone, a timer tick, a cancel request, a
// checkpoint completed) and returns the effects the JobManager
// (internal/jobmanager) carries out: deploy an attempt restoring a
// checkpoint, cancel an attempt's workers, start a TaskManager, suspend
// checkpointing, report a deployment that timed out. No sockets,
// goroutines or clock.
//
// Job status (Flink's), with whole-job failover:
//
//	CREATED ──Deployed──▶ RUNNING ──every subtask FINISHED──▶ FINISHED
//	   │                   │  ▲
//	   │                   │  └──────Deployed (attempt+1)───────┐
//	   │                   │ failure, the strategy restarts      │
//	   │                   ▼                                     │
//	   │               RESTARTING ──old workers gone, backoff passed──▶ Deploy effect
//	   │                   │ (waits for slots until Deployed) ───┘
//	   │ failure,          │ failure, no restart left
//	   │ no restart        ▼
//	   └─────────────▶ FAILING ──old workers gone──▶ FAILED
//	any non-terminal ──Cancel──▶ CANCELLING ──workers gone──▶ CANCELED
//	CREATED ──Cancel──▶ CANCELED
//
// Fencing: every deployment has an attempt number, 1 for the first, one
// more for each restart. Events of another attempt than the current one
// are refused (Stale): a zombie worker's reports change nothing.
//
// Before a failure reaches Master.Fail, a Triage (rootcause.go) keeps it
// in the job's exception history and decides whether it fails the job
// now or, being the consequence of another failure, waits for its cause
// within the root-cause window. The JobManager tells the master every
// subtask that finishes (TaskState), and the master says when the job is
// FINISHED.
package jobmaster

import (
	"fmt"
	"time"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/restart"
)

// Job statuses, Flink's names.
const (
	Created    = "CREATED"
	Running    = "RUNNING"
	Restarting = "RESTARTING"
	Failing    = "FAILING"
	Failed     = "FAILED"
	Cancelling = "CANCELLING"
	Canceled   = "CANCELED"
	Finished   = "FINISHED"
)

// Terminal tells whether a status is final.
func Terminal(s string) bool { return s == Failed || s == Canceled || s == Finished }

// Failure is one failure of the job.
type Failure struct {
	// Attempt is the attempt it happened in; 0 for a failure of the job
	// itself (no slots, a checkpoint failure), which is always current.
	Attempt int64
	// Name classifies it (TaskManagerLost, WorkerExited, JobFailure, ...).
	Name     string
	Message  string
	Location string
}

// Exception is one entry of the failover history.
type Exception struct {
	Time time.Time
	Failure
	// Restarted tells whether the job restarted for it; Delay after how
	// long; otherwise Reason says why it failed for good.
	Restarted bool
	Delay     time.Duration
	Reason    string
}

// Result says what became of an event.
type Result int

// The results.
const (
	// Accepted: the event was for the current attempt.
	Accepted Result = iota
	// Stale: the event came from an older attempt and changed nothing.
	Stale
	// Ignored: the event does not apply in the job's status.
	Ignored
)

func (r Result) String() string { return [...]string{"accepted", "stale", "ignored"}[r] }

// Effect is something the JobManager must do for the job.
type Effect interface {
	String() string
	effect()
}

// Deploy deploys attempt Attempt of the job (asking for slots as needed),
// restoring checkpoint Restore (0: start empty) or, if that one proves
// unusable, the latest usable one before it.
type Deploy struct {
	Attempt int64
	Restore checkpoint.ID
}

// Cancel stops every worker of Attempt; the JobManager reports Released
// once they are gone.
type Cancel struct {
	Attempt int64
	Reason  string
}

// StartTaskManager asks the provider for a TaskManager in place of a lost
// one (on a provider that starts them).
type StartTaskManager struct{ Replacing string }

// SuspendCheckpoints stops the checkpoint coordinator: pending
// checkpoints are aborted.
type SuspendCheckpoints struct{ Reason string }

// Status reports a change of the job's status.
type Status struct{ From, To string }

// DeploymentTimedOut reports that Attempt's workers did not all report
// ready within the deployment timeout: the JobManager fails the job
// (Fail), naming the workers that did not.
type DeploymentTimedOut struct {
	Attempt int64
	Timeout time.Duration
}

func (Deploy) effect()             {}
func (Cancel) effect()             {}
func (StartTaskManager) effect()   {}
func (SuspendCheckpoints) effect() {}
func (Status) effect()             {}
func (DeploymentTimedOut) effect() {}

func (e Deploy) String() string {
	if e.Restore == 0 {
		return fmt.Sprintf("deploy attempt=%d restore=none", e.Attempt)
	}
	return fmt.Sprintf("deploy attempt=%d restore=chk-%d", e.Attempt, e.Restore)
}
func (e Cancel) String() string {
	return fmt.Sprintf("cancel attempt=%d reason=%q", e.Attempt, e.Reason)
}
func (e StartTaskManager) String() string {
	return fmt.Sprintf("start-taskmanager replacing=%s", e.Replacing)
}
func (e SuspendCheckpoints) String() string {
	return fmt.Sprintf("suspend-checkpoints reason=%q", e.Reason)
}
func (e Status) String() string { return fmt.Sprintf("status %s -> %s", e.From, e.To) }
func (e DeploymentTimedOut) String() string {
	return fmt.Sprintf("deployment-timed-out attempt=%d timeout=%v", e.Attempt, e.Timeout)
}

// maxHistory bounds the failover history, as Flink's
// web.exception-history-size (16).
const maxHistory = 16

// Master is one job's failover state machine.
type Master struct {
	strategy restart.Strategy
	// parallelism[v] is vertex v's parallelism.
	parallelism []int
	// provided tells that a provider starts TaskManagers (StartTaskManager
	// effects).
	provided bool
	// deploymentTimeout is how long an attempt's workers have to report
	// ready; readyBy is when the current attempt's time is up (zero once
	// they are ready, or with no timeout).
	deploymentTimeout time.Duration
	readyBy           time.Time

	status  string
	attempt int64
	// released tells that the current attempt's workers are gone (or none
	// were deployed); deployPending that a Deploy effect awaits Deployed.
	released      bool
	deployPending bool
	restartAt     time.Time
	restarts      int
	// finished counts the current attempt's subtasks that finished, and
	// restoredFinished those a restored checkpoint recorded as finished.
	finished map[[2]int]bool
	latest   checkpoint.ID
	history  []Exception
	// failure is the failure the job failed with (FAILING, FAILED).
	failure *Exception
}

// Config configures a Master.
type Config struct {
	Strategy restart.Strategy
	// Parallelism is each vertex's parallelism, in JobGraph order.
	Parallelism []int
	// Provided tells that TaskManagers come from a provider.
	Provided bool
	// DeploymentTimeout is how long an attempt's workers have, from its
	// deployment, to report ready (Ready); none if zero.
	DeploymentTimeout time.Duration
}

// New returns the master of a job just submitted (CREATED).
func New(cfg Config) *Master {
	s := cfg.Strategy
	if s == nil {
		s = restart.NewNone()
	}
	return &Master{strategy: s, parallelism: cfg.Parallelism, provided: cfg.Provided, deploymentTimeout: cfg.DeploymentTimeout,
		status: Created, released: true, finished: map[[2]int]bool{}}
}

// Status is the job's status.
func (m *Master) Status() string { return m.status }

// Attempt is the current attempt: 0 before the first deployment.
func (m *Master) Attempt() int64 { return m.attempt }

// Restarts counts the job's restarts (numRestarts).
func (m *Master) Restarts() int { return m.restarts }

// History returns the failover history, oldest first.
func (m *Master) History() []Exception { return append([]Exception(nil), m.history...) }

// Failure is the failure the job failed with, nil unless FAILING or
// FAILED.
func (m *Master) Failure() *Exception { return m.failure }

// Strategy names the restart strategy.
func (m *Master) Strategy() string { return m.strategy.String() }

func (m *Master) setStatus(to string, eff []Effect) []Effect {
	if m.status == to {
		return eff
	}
	from := m.status
	m.status = to
	return append(eff, Status{From: from, To: to})
}

// Schedule asks for the job's first deployment.
func (m *Master) Schedule(now time.Time) []Effect {
	if m.status != Created || m.deployPending || m.attempt != 0 {
		return nil
	}
	m.deployPending = true
	return []Effect{Deploy{Attempt: 1}}
}

// Deployed reports that attempt's workers were deployed (slots taken): the
// job runs.
func (m *Master) Deployed(now time.Time, attempt int64) (Result, []Effect) {
	if !m.deployPending || attempt != m.attempt+1 {
		return Stale, nil
	}
	m.deployPending = false
	m.attempt = attempt
	m.released = false
	m.readyBy = time.Time{}
	if m.deploymentTimeout > 0 {
		m.readyBy = now.Add(m.deploymentTimeout)
	}
	clear(m.finished)
	if attempt > 1 {
		m.restarts++
	}
	return Accepted, m.setStatus(Running, nil)
}

// Ready reports that every worker of attempt reported ready: the
// deployment timeout no longer applies.
func (m *Master) Ready(now time.Time, attempt int64) Result {
	if attempt != m.attempt || m.deployPending {
		return Stale
	}
	m.readyBy = time.Time{}
	return Accepted
}

// RestoredFinished records subtasks a restored checkpoint recorded as
// finished: the attempt does not run them, and they count as finished.
func (m *Master) RestoredFinished(vertex, subtask int) { m.finished[[2]int{vertex, subtask}] = true }

// CheckpointCompleted records the latest completed checkpoint, the
// restore point of the next restart.
func (m *Master) CheckpointCompleted(id checkpoint.ID) {
	if id > m.latest {
		m.latest = id
	}
}

// TaskState records a subtask's state reported by attempt: FINISHED
// subtasks finish the job once all have; FAILED is a failure.
func (m *Master) TaskState(now time.Time, attempt int64, vertex, subtask int, state, errMsg, location string) (Result, []Effect) {
	if attempt != m.attempt || m.deployPending {
		return Stale, nil
	}
	switch state {
	case "FINISHED":
		if m.status != Running {
			return Ignored, nil
		}
		m.finished[[2]int{vertex, subtask}] = true
		n := 0
		for _, p := range m.parallelism {
			n += p
		}
		if len(m.finished) < n {
			return Accepted, nil
		}
		eff := m.setStatus(Finished, nil)
		return Accepted, append(eff, Cancel{Attempt: m.attempt, Reason: "job finished"})
	case "FAILED":
		return m.Fail(now, Failure{Attempt: attempt, Name: "JobFailure", Message: errMsg, Location: location})
	}
	return Accepted, nil
}

// TaskManagerLost reports that a TaskManager holding workers of attempt
// was lost: a failure of the job, and a replacement when a provider
// starts TaskManagers.
func (m *Master) TaskManagerLost(now time.Time, attempt int64, tm, cause string) (Result, []Effect) {
	res, eff := m.Fail(now, Failure{Attempt: attempt, Name: "TaskManagerLost", Message: fmt.Sprintf("TaskManager %s was lost: %s", tm, cause), Location: tm})
	if res == Accepted && m.provided && m.status == Restarting {
		eff = append(eff, StartTaskManager{Replacing: tm})
	}
	return res, eff
}

// Fail reports a failure. In RUNNING (or CREATED) the restart strategy
// decides: RESTARTING, the attempt's workers cancelled, and a deployment
// of the next attempt once they are gone and the backoff passed; or
// FAILING when no restart is left. A failure of the attempt being
// cancelled (a consequence of the cancel) changes nothing; one while the
// next attempt waits for slots is decided again.
func (m *Master) Fail(now time.Time, f Failure) (Result, []Effect) {
	if f.Attempt != 0 && f.Attempt != m.attempt {
		return Stale, nil
	}
	switch m.status {
	case Running, Created:
	case Restarting:
		if !m.deployPending || f.Attempt != 0 {
			return Ignored, nil
		}
	default:
		return Ignored, nil
	}
	d := m.strategy.Failed(now)
	x := Exception{Time: now, Failure: f, Restarted: d.Restart, Delay: d.Delay, Reason: d.Reason}
	m.history = append(m.history, x)
	if len(m.history) > maxHistory {
		m.history = m.history[1:]
	}
	eff := []Effect{SuspendCheckpoints{Reason: f.Message}}
	if m.status == Running {
		eff = append(eff, Cancel{Attempt: m.attempt, Reason: f.Message})
	}
	m.deployPending = false
	if !d.Restart {
		m.failure = &x
		eff = m.setStatus(Failing, eff)
		return Accepted, append(eff, m.progress(now)...)
	}
	m.restartAt = now.Add(d.Delay)
	eff = m.setStatus(Restarting, eff)
	return Accepted, append(eff, m.progress(now)...)
}

// Cancel cancels the job.
func (m *Master) Cancel(now time.Time) []Effect {
	switch m.status {
	case Created:
		m.deployPending = false
		return m.setStatus(Canceled, []Effect{SuspendCheckpoints{Reason: "job cancelled"}})
	case Running, Restarting, Failing:
		eff := []Effect{SuspendCheckpoints{Reason: "job cancelled"}}
		if m.status == Running {
			eff = append(eff, Cancel{Attempt: m.attempt, Reason: "job cancelled"})
		}
		m.deployPending = false
		eff = m.setStatus(Cancelling, eff)
		return append(eff, m.progress(now)...)
	}
	return nil
}

// Released reports that every worker of attempt is gone.
func (m *Master) Released(now time.Time, attempt int64) (Result, []Effect) {
	if attempt != m.attempt {
		return Stale, nil
	}
	m.released = true
	return Accepted, m.progress(now)
}

// Tick advances time: a restart whose backoff passed is deployed; a
// running attempt whose workers are not all ready past the deployment
// timeout is reported (once).
func (m *Master) Tick(now time.Time) []Effect {
	if m.status == Running && !m.readyBy.IsZero() && now.After(m.readyBy) {
		m.readyBy = time.Time{}
		return []Effect{DeploymentTimedOut{Attempt: m.attempt, Timeout: m.deploymentTimeout}}
	}
	return m.progress(now)
}

// NextEvent is when the master next needs a Tick: the end of a backoff,
// or of the deployment timeout; zero if none.
func (m *Master) NextEvent() time.Time {
	if m.status == Restarting && m.released && !m.deployPending {
		return m.restartAt
	}
	if m.status == Running && !m.readyBy.IsZero() {
		return m.readyBy.Add(time.Millisecond)
	}
	return time.Time{}
}

// progress moves a job waiting for its workers to go, or for a backoff.
func (m *Master) progress(now time.Time) []Effect {
	if !m.released {
		return nil
	}
	switch m.status {
	case Failing:
		return m.setStatus(Failed, nil)
	case Cancelling:
		return m.setStatus(Canceled, nil)
	case Restarting:
		if m.deployPending || now.Before(m.restartAt) {
			return nil
		}
		m.deployPending = true
		return []Effect{Deploy{Attempt: m.attempt + 1, Restore: m.latest}}
	}
	return nil
}
