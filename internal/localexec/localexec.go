// Package localexec runs a job's subtasks in this process, as the local
// executor does (tests and `go run`), with checkpoints and in-process
// restarts: a checkpoint coordinator triggers barriers at the sources every
// interval, collects the subtasks' acknowledgements (their state files kept
// inline), commits the sinks when a checkpoint completes, and when a
// subtask fails it stops the attempt, builds the job's subtasks afresh,
// restores them from the latest completed checkpoint and runs them again,
// as long as the restart policy allows.
//
//	build(attempt) ─► restore(latest) ─► run ──every interval──► trigger n at the running sources
//	      ▲                                │                      acks of every subtask ─► complete n ─► sinks commit
//	      │                                │ a subtask fails
//	      └──── restart policy: delay ◄────┘          (exhausted: the job fails)
//
// A subtask that finished acknowledges with its final state, which stands
// for every later checkpoint whose barrier it did not take, so that a
// finished bounded source does not stop the checkpoints of the rest.
package localexec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/snapshot"
)

// Subtask is one subtask of the job as Build makes it.
type Subtask struct {
	Task            *exec.Task
	Vertex, Subtask int
	// State holds the chain's operators with state; nil if none has.
	State *snapshot.TaskState
}

// Job is what Run runs.
type Job struct {
	// Name names the job in errors and logs.
	Name string
	// Build makes every subtask of the job for attempt (1 for the first
	// run, one more per restart), registering their state with r. Each
	// call must make new operators: a restart must not reuse state.
	Build func(attempt int64, r *snapshot.Runner) ([]Subtask, error)
	// Interval is execution.checkpointing.interval; 0 runs without
	// checkpoints and without restarts.
	Interval time.Duration
	// Aligned is EXACTLY_ONCE (else AT_LEAST_ONCE).
	Aligned bool
	// Timeout aborts a checkpoint not complete after it; 0 for 10 minutes.
	Timeout time.Duration
	// Restart decides, after the failures-th failure (from 1) err, whether
	// the job restarts and after which delay; nil never restarts.
	Restart func(failures int, err error) (delay time.Duration, ok bool)
	// Ended, if set, is called as each subtask of an attempt ends.
	Ended func(t *exec.Task, err error)
	// Completed, if set, is called when a checkpoint completes, after its
	// sinks committed.
	Completed func(id int64)
	// Log receives restarts and checkpoint failures; slog.Default if nil.
	Log *slog.Logger
}

// Stats tell what happened during a Run.
type Stats struct {
	Restarts  int
	Completed int64 // checkpoints completed
	Latest    int64 // the latest completed checkpoint, 0 if none
}

// Run runs job until it finishes (nil), fails for good, or ctx ends.
func Run(ctx context.Context, job Job) (Stats, error) {
	log := job.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("job", job.Name)
	c := &coordinator{nextID: 1, onComplete: job.Completed}
	var st Stats
	failures := 0
	for attempt := int64(1); ; attempt++ {
		err := c.runAttempt(ctx, job, attempt)
		st.Completed, st.Latest = c.completed, c.latestID()
		if err == nil || ctx.Err() != nil || job.Interval <= 0 || job.Restart == nil {
			return st, err
		}
		failures++
		delay, ok := job.Restart(failures, err)
		if !ok {
			return st, err
		}
		st.Restarts++
		log.Warn("job restarts from its latest checkpoint", "attempt", attempt+1, "checkpoint", c.latestID(), "delay", delay, "err", err)
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return st, err
			}
		}
	}
}

// completed is a completed checkpoint: the state of every subtask.
type completed struct {
	id     int64
	states map[[2]int]*snapshot.Handle
}

// pending is a checkpoint waiting for acknowledgements.
type pending struct {
	id      int64
	started time.Time
	acks    map[[2]int]*snapshot.Handle
}

// coordinator is the in-process checkpoint coordinator; it outlives the
// attempts, so that checkpoint ids only grow.
type coordinator struct {
	nextID     int64
	latest     *completed
	completed  int64
	onComplete func(id int64)

	mu struct {
		sync.Mutex
		subtasks map[[2]int]Subtask
		running  map[[2]int]bool
		// finals holds the final state of each finished subtask and the
		// last checkpoint it snapshotted before.
		finals  map[[2]int]final
		pending *pending
		runner  *snapshot.Runner
		failed  error // a commit failure, which fails the attempt
		stop    context.CancelCauseFunc
	}
}

type final struct {
	after int64
	state *snapshot.Handle
}

func (c *coordinator) latestID() int64 {
	if c.latest == nil {
		return 0
	}
	return c.latest.id
}

// runAttempt builds, restores and runs the job's subtasks once.
func (c *coordinator) runAttempt(ctx context.Context, job Job, attempt int64) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	runner := snapshot.NewRunner(actx, snapshot.InlineStore{}, c, nil)
	subs, err := job.Build(attempt, runner)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.mu.subtasks = map[[2]int]Subtask{}
	c.mu.running = map[[2]int]bool{}
	c.mu.finals = map[[2]int]final{}
	c.mu.pending = nil
	c.mu.runner = runner
	c.mu.failed = nil
	c.mu.stop = cancel
	c.mu.Unlock()
	tasks := make([]*exec.Task, len(subs))
	byTask := map[*exec.Task][2]int{}
	for i, s := range subs {
		k := [2]int{s.Vertex, s.Subtask}
		tasks[i] = s.Task
		byTask[s.Task] = k
		c.mu.subtasks[k] = s
		c.mu.running[k] = true
		if s.State == nil {
			s.State = runner.Task(s.Vertex, s.Subtask, 0, 0)
			c.mu.subtasks[k] = s
		}
		if c.latest != nil {
			if h := c.latest.states[k]; h != nil {
				if err := s.State.Restore(ctx, snapshot.InlineStore{}, *h); err != nil {
					return fmt.Errorf("job %q: restore checkpoint %d: %w", job.Name, c.latest.id, err)
				}
			}
		}
		if job.Interval > 0 {
			ts := s.State
			s.Task.Checkpoint = ts.Hook(job.Aligned, func(id int64) {
				c.Decline(k[0], k[1], id, errors.New("a later checkpoint's barrier overtook it"))
			})
		}
	}
	timeout := job.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	var wg sync.WaitGroup
	if job.Interval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(actx, job.Interval, timeout)
		}()
	}
	err = exec.RunObserved(actx, tasks, func(t *exec.Task, err error) {
		if err == nil {
			c.mu.Lock()
			delete(c.mu.running, byTask[t])
			c.mu.Unlock()
		}
		if job.Ended != nil {
			job.Ended(t, err)
		}
	})
	cancel(nil)
	wg.Wait()
	runner.Close()
	c.mu.Lock()
	if err == nil {
		err = c.mu.failed
	}
	c.mu.runner = nil
	c.mu.Unlock()
	return err
}

// loop triggers a checkpoint every interval and times out pending ones.
func (c *coordinator) loop(ctx context.Context, interval, timeout time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.mu.Lock()
		if p := c.mu.pending; p != nil {
			if time.Since(p.started) > timeout {
				c.abortLocked(p.id, fmt.Errorf("not complete within %v", timeout))
			}
			c.mu.Unlock()
			continue
		}
		var sources []*exec.Task
		for k := range c.mu.running {
			if t := c.mu.subtasks[k].Task; t.Source != nil {
				sources = append(sources, t)
			}
		}
		if len(sources) == 0 {
			// Nothing to inject barriers at: the job is draining.
			c.mu.Unlock()
			continue
		}
		id := c.nextID
		c.nextID++
		c.mu.pending = &pending{id: id, started: time.Now(), acks: map[[2]int]*snapshot.Handle{}}
		c.mu.Unlock()
		for _, t := range sources {
			t.TriggerCheckpoint(id)
		}
	}
}

// Acknowledge implements snapshot.Acker.
func (c *coordinator) Acknowledge(a snapshot.Ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]int{a.Vertex, a.Subtask}
	if a.Checkpoint == exec.EndOfInput {
		c.mu.finals[k] = final{after: a.After, state: a.State}
	} else if p := c.mu.pending; p != nil && p.id == a.Checkpoint {
		p.acks[k] = a.State
	}
	c.tryCompleteLocked()
}

// Decline implements snapshot.Acker.
func (c *coordinator) Decline(vertex, subtask int, id int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.mu.pending; p != nil && p.id == id {
		c.abortLocked(id, fmt.Errorf("subtask %d of vertex %d declined: %w", subtask, vertex, err))
	}
}

func (c *coordinator) abortLocked(id int64, why error) {
	slog.Warn("checkpoint aborted", "checkpoint", id, "err", why)
	c.mu.pending = nil
	if c.mu.runner != nil {
		c.mu.runner.AbortCheckpoint(id)
	}
}

// tryCompleteLocked completes the pending checkpoint once every subtask
// acknowledged it or finished before its barrier.
func (c *coordinator) tryCompleteLocked() {
	p := c.mu.pending
	if p == nil {
		return
	}
	states := map[[2]int]*snapshot.Handle{}
	for k := range c.mu.subtasks {
		if h, ok := p.acks[k]; ok {
			states[k] = h
			continue
		}
		if f, ok := c.mu.finals[k]; ok && f.after < p.id {
			states[k] = f.state
			continue
		}
		return
	}
	c.latest = &completed{id: p.id, states: states}
	c.completed++
	c.mu.pending = nil
	if c.mu.runner != nil {
		if err := c.mu.runner.CommitCheckpoint(p.id); err != nil && c.mu.failed == nil {
			c.mu.failed = fmt.Errorf("commit checkpoint %d: %w", p.id, err)
			c.mu.stop(c.mu.failed)
			return
		}
	}
	if c.onComplete != nil {
		c.onComplete(p.id)
	}
}
