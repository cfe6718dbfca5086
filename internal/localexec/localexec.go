// Package localexec runs a job's subtasks in this process, as the local
// executor does (tests and `go run`), with checkpoints and in-process
// restarts. The decisions are the pure checkpoint coordinator's
// (internal/checkpoint), the same the JobManager runs: this package feeds
// it events (subtasks running and finished, acknowledgements, declines,
// time) and carries out its effects in process: barriers injected at the
// sources it names, the metadata of a completed checkpoint kept in memory
// (its state files are inline), sinks committed on completion. When a
// subtask fails, the attempt stops, the job's subtasks are built afresh,
// restored from the latest completed checkpoint and run again, as long as
// the restart policy allows.
//
//	build(attempt) ─► restore(latest) ─► run ──coordinator: Trigger──► barriers at the sources
//	      ▲                                │      acks of every subtask ─► WriteMetadata (in memory) ─► NotifyComplete ─► sinks commit
//	      │                                │ a subtask fails
//	      └──── restart policy: delay ◄────┘          (exhausted: the job fails)
//
// A subtask that finished acknowledges with its final state, which stands
// for every later checkpoint whose barrier it did not take, so that a
// finished bounded source does not stop the checkpoints of the rest.
//
// A Run may start from a checkpoint (Job.Restore) taken at other
// parallelisms: checkpoint.Assign says what each subtask restores, and a
// subtask of a rescaled vertex takes its share of the old subtasks' state
// (snapshot.TaskState.RestoreShared).
package localexec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/spate-dev/spate/internal/checkpoint"
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
	// Checkpoints configure the coordinator; an Interval of 0 runs
	// without checkpoints and without restarts.
	Checkpoints checkpoint.Config
	// Vertices are the job's vertices as the coordinator sees them, with
	// their max parallelism, which a restore checks.
	Vertices []checkpoint.Vertex
	// Restore, if set, is the checkpoint the first attempt restores (a
	// retained checkpoint, a savepoint), possibly taken at other
	// parallelisms: checkpoint.Assign says what each subtask restores. nil
	// starts empty. Its state files are inline or at file:// URLs, unless
	// RestoreStore reads them. A restart before the first checkpoint
	// completes restores it again.
	Restore      *checkpoint.Metadata
	RestoreStore snapshot.Store
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
	// Metadata is the latest completed checkpoint's (its state inline),
	// or the restored one if none completed; nil if neither.
	Metadata *checkpoint.Metadata
}

// Run runs job until it finishes (nil), fails for good, or ctx ends.
func Run(ctx context.Context, job Job) (Stats, error) {
	log := job.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("job", job.Name)
	d := &driver{job: job, log: log, coord: checkpoint.New(job.Checkpoints, job.Vertices), latest: job.Restore}
	var st Stats
	failures := 0
	for attempt := int64(1); ; attempt++ {
		err := d.runAttempt(ctx, attempt)
		st.Completed, st.Latest, st.Metadata = d.completed, d.latestID(), d.latest
		if err == nil || ctx.Err() != nil || job.Checkpoints.Interval <= 0 || job.Restart == nil {
			return st, err
		}
		failures++
		delay, ok := job.Restart(failures, err)
		if !ok {
			return st, err
		}
		st.Restarts++
		log.Warn("job restarts from its latest checkpoint", "attempt", attempt+1, "checkpoint", d.latestID(), "delay", delay, "err", err)
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

// driver carries out the coordinator's effects for one Run; it outlives
// the attempts, so that checkpoint ids only grow and the latest completed
// checkpoint is there to restore.
type driver struct {
	job   Job
	log   *slog.Logger
	mu    sync.Mutex
	coord *checkpoint.Coordinator
	// latest is the latest completed checkpoint's metadata; pending holds
	// the metadata being "written" (kept), by checkpoint.
	latest    *checkpoint.Metadata
	completed int64
	// Of the running attempt:
	attempt int64
	tasks   map[checkpoint.Subtask]*exec.Task
	runner  *snapshot.Runner
	stop    context.CancelCauseFunc
	failed  error // a commit failure or too many failed checkpoints
	wake    chan struct{}
}

func (d *driver) latestID() int64 {
	if d.latest == nil {
		return 0
	}
	return int64(d.latest.ID)
}

// runAttempt builds, restores and runs the job's subtasks once.
func (d *driver) runAttempt(ctx context.Context, attempt int64) error {
	job := d.job
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	runner := snapshot.NewRunner(actx, snapshot.InlineStore{}, d, nil)
	subs, err := job.Build(attempt, runner)
	if err != nil {
		return err
	}
	restore := map[checkpoint.Subtask]checkpoint.SubtaskState{}
	var store snapshot.Store = restoreStore{}
	if job.RestoreStore != nil {
		store = job.RestoreStore
	}
	var finished []checkpoint.SubtaskState
	if d.latest != nil {
		assigned, err := checkpoint.Assign(*d.latest, job.Vertices)
		if err != nil {
			return err
		}
		for _, st := range assigned {
			restore[checkpoint.Subtask{Vertex: st.Vertex, Index: st.Subtask}] = st
			if st.Finished {
				finished = append(finished, st)
			}
		}
	}
	d.mu.Lock()
	d.attempt, d.runner, d.stop, d.failed = attempt, runner, cancel, nil
	d.tasks = map[checkpoint.Subtask]*exec.Task{}
	d.wake = make(chan struct{}, 1)
	d.mu.Unlock()
	tasks := make([]*exec.Task, len(subs))
	byTask := map[*exec.Task]checkpoint.Subtask{}
	for i, s := range subs {
		k := checkpoint.Subtask{Vertex: s.Vertex, Index: s.Subtask}
		tasks[i], byTask[s.Task] = s.Task, k
		d.tasks[k] = s.Task
		ts := s.State
		if ts == nil {
			ts = runner.Task(s.Vertex, s.Subtask, 0, 0)
		}
		if st, ok := restore[k]; ok {
			if err := restoreSubtask(ctx, store, ts, st); err != nil {
				return fmt.Errorf("job %q: restore checkpoint %d: %w", job.Name, d.latest.ID, err)
			}
		}
		if job.Checkpoints.Interval > 0 {
			s := s
			s.Task.Checkpoint = ts.Hook(s.Task, job.Checkpoints.Mode == checkpoint.ExactlyOnce, job.Checkpoints.MaxAlignedBytes, func(id int64, cause error) {
				d.Decline(s.Vertex, s.Subtask, id, cause)
			})
		}
	}
	var wg sync.WaitGroup
	if job.Checkpoints.Interval > 0 {
		d.mu.Lock()
		now := time.Now()
		d.apply(d.coord.Deployed(now, attempt, finished))
		if d.latest != nil {
			d.coord.Restored(now, d.latest.ID, "memory")
		}
		for k := range d.tasks {
			_, eff := d.coord.TaskState(now, attempt, k, "RUNNING")
			d.apply(eff)
		}
		d.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.loop(actx)
		}()
	}
	err = exec.RunObserved(actx, tasks, func(t *exec.Task, err error) {
		if job.Checkpoints.Interval > 0 {
			state := "FINISHED"
			if err != nil {
				state = "FAILED"
			}
			d.mu.Lock()
			_, eff := d.coord.TaskState(time.Now(), attempt, byTask[t], state)
			d.apply(eff)
			d.mu.Unlock()
		}
		if job.Ended != nil {
			job.Ended(t, err)
		}
	})
	cancel(nil)
	wg.Wait()
	runner.Close()
	d.mu.Lock()
	if err == nil {
		err = d.failed
	}
	d.apply(d.coord.Suspend(time.Now(), "the attempt ended"))
	d.runner, d.tasks = nil, nil
	d.mu.Unlock()
	return err
}

// loop gives the coordinator time: a Tick whenever it asked for one.
func (d *driver) loop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		d.mu.Lock()
		now := time.Now()
		d.apply(d.coord.Tick(now))
		next := d.coord.NextEvent()
		wake := d.wake
		d.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(now), time.Millisecond)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// apply carries out the coordinator's effects; d.mu is held.
func (d *driver) apply(eff []checkpoint.Effect) {
	for _, e := range eff {
		switch e := e.(type) {
		case checkpoint.Trigger:
			if e.Attempt != d.attempt {
				continue
			}
			for _, st := range e.Subtasks {
				if t := d.tasks[st]; t != nil {
					t.TriggerCheckpoint(int64(e.ID))
				}
			}
		case checkpoint.WriteMetadata:
			// In process "durable" is kept: the metadata stands in memory.
			m := e.Meta
			_, more := d.coord.MetadataWritten(time.Now(), m.ID, m.Attempt, "memory", nil)
			d.latest = &m
			d.apply(more)
		case checkpoint.NotifyComplete:
			d.completed++
			if d.runner != nil && e.Attempt == d.attempt {
				if err := d.runner.CommitCheckpoint(int64(e.ID)); err != nil && d.failed == nil {
					d.failed = fmt.Errorf("commit checkpoint %d: %w", e.ID, err)
					d.stop(d.failed)
					continue
				}
			}
			if d.job.Completed != nil {
				d.job.Completed(int64(e.ID))
			}
		case checkpoint.NotifyAborted:
			d.log.Debug("checkpoint aborted", "checkpoint", e.ID, "reason", e.Reason)
			if d.runner != nil && e.Attempt == d.attempt {
				d.runner.AbortCheckpoint(int64(e.ID))
			}
		case checkpoint.FailJob:
			if d.failed == nil && d.stop != nil {
				d.failed = errors.New(e.Err)
				d.stop(d.failed)
			}
		case checkpoint.Discard:
			// Nothing is stored outside the metadata.
		}
	}
	if len(eff) > 0 && d.wake != nil {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// Acknowledge implements snapshot.Acker.
func (d *driver) Acknowledge(a snapshot.Ack) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ack := checkpoint.Ack{
		Subtask: checkpoint.Subtask{Vertex: a.Vertex, Index: a.Subtask}, Attempt: d.attempt,
		ID: checkpoint.ID(a.Checkpoint), After: checkpoint.ID(a.After), Sync: a.Sync, Async: a.Async, Alignment: a.Alignment,
	}
	if a.State != nil {
		ack.States = []checkpoint.Handle{fromSnapshot(*a.State)}
	}
	_, eff := d.coord.Acknowledge(time.Now(), ack)
	d.apply(eff)
}

// Decline implements snapshot.Acker.
func (d *driver) Decline(vertex, subtask int, id int64, err error) {
	if id == exec.EndOfInput {
		d.log.Warn("the final state of a finished subtask could not be taken", "subtask", fmt.Sprintf("%d/%d", vertex, subtask), "err", err)
		return
	}
	reason := reasonOf(err)
	d.mu.Lock()
	defer d.mu.Unlock()
	_, eff := d.coord.Decline(time.Now(), checkpoint.Decline{
		Subtask: checkpoint.Subtask{Vertex: vertex, Index: subtask}, Attempt: d.attempt,
		ID: checkpoint.ID(id), Reason: reason, Message: err.Error(),
	})
	d.apply(eff)
}

// reasonOf classes a decline: an overtaken checkpoint does not count
// towards execution.checkpointing.tolerable-failed-checkpoints, a failed
// snapshot or an alignment over its limit does.
func reasonOf(err error) checkpoint.Reason {
	switch {
	case errors.Is(err, snapshot.ErrSubsumed):
		return checkpoint.DeclinedSubsumed
	case errors.Is(err, exec.ErrAlignmentLimit):
		return checkpoint.AlignmentFailed
	}
	return checkpoint.SnapshotFailed
}

// restoreSubtask restores ts from st as checkpoint.Assign gave it: its
// own state files, or its share of those of every old subtask of its
// vertex (restored at another parallelism).
func restoreSubtask(ctx context.Context, store snapshot.Store, ts *snapshot.TaskState, st checkpoint.SubtaskState) error {
	var shared []snapshot.Handle
	for _, h := range st.States {
		sh, isShared, err := toSnapshot(h)
		if err != nil {
			return err
		}
		if isShared {
			shared = append(shared, sh)
			continue
		}
		if err := ts.Restore(ctx, store, sh); err != nil {
			return err
		}
	}
	if len(shared) > 0 {
		return ts.RestoreShared(ctx, store, shared)
	}
	return nil
}

// restoreStore reads the state files of a restored checkpoint: inline
// (the checkpoints of this Run), or at file:// URLs (a retained
// checkpoint of another run).
type restoreStore struct{}

func (restoreStore) Put(context.Context, int64, string, []byte) (snapshot.Handle, error) {
	return snapshot.Handle{}, errors.New("localexec: the restore store only reads")
}

func (restoreStore) Get(ctx context.Context, h snapshot.Handle) ([]byte, error) {
	if h.URL == "" {
		return snapshot.InlineStore{}.Get(ctx, h)
	}
	u, err := url.Parse(h.URL)
	if err != nil || u.Scheme != "file" {
		return nil, fmt.Errorf("state file %s: a local run reads inline state and file:// URLs only", h.URL)
	}
	data, err := os.ReadFile(u.Path)
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	return data, snapshot.Check(h, data)
}

func fromSnapshot(h snapshot.Handle) checkpoint.Handle {
	return checkpoint.Handle{Operator: -1, Kind: checkpoint.KindSubtask, URL: h.URL, Inline: h.Inline, Size: h.Size, SHA256: h.SHA256,
		KeyGroupStart: int(h.KeyGroups[0]), KeyGroupEnd: int(h.KeyGroups[1])}
}

// toSnapshot is the runtime's handle of h; shared tells that it is one
// of the files of a vertex restored at another parallelism, of which the
// subtask restores its share.
func toSnapshot(h checkpoint.Handle) (sh snapshot.Handle, shared bool, err error) {
	sh = snapshot.Handle{URL: h.URL, Inline: h.Inline, Size: h.Size, SHA256: h.SHA256,
		KeyGroups: [2]int32{int32(h.KeyGroupStart), int32(h.KeyGroupEnd)}}
	k, err := snapshot.ParseKind(h.Kind)
	if err != nil {
		return sh, false, err
	}
	return k.Apply(sh, int32(h.Operator), h.OperatorUID), k.Shared, nil
}
