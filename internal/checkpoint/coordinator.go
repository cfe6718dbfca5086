package checkpoint

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Subtask states the coordinator tells apart.
const (
	taskDeploying = iota
	taskRunning
	taskFinished
	taskFailed
)

// pending is a checkpoint triggered and not yet completed or aborted.
type pending struct {
	id        ID
	attempt   int64
	triggered time.Time
	// needed holds the subtasks that must acknowledge; acks those that
	// have; finished those excluded because they had finished.
	needed   map[Subtask]bool
	acks     map[Subtask]Ack
	finished []Subtask
	// fromFinal holds the needed subtasks whose part is their final
	// state: they finished after the trigger.
	fromFinal map[Subtask]bool
	// finalizing is set once every needed subtask acknowledged: the
	// metadata is being written.
	finalizing bool
	stat       *Stat
	kind       Kind
}

// Completed is a completed checkpoint the coordinator retains.
type Completed struct {
	ID        ID
	Attempt   int64
	Timestamp time.Time
	// Path is where its metadata was written (MetadataWritten's path).
	Path string
	Size int64
}

// AckResult says what became of an acknowledgement or a decline.
type AckResult int

// The results.
const (
	// Accepted: the checkpoint was pending and took it.
	Accepted AckResult = iota
	// Late: the checkpoint is no longer pending (aborted, completed,
	// unknown); nothing changed.
	Late
	// Stale: it came from an attempt that is not the job's current one:
	// refused (the sender is a zombie).
	Stale
	// Unexpected: the subtask is not one the checkpoint waits for.
	Unexpected
)

func (r AckResult) String() string {
	return [...]string{"accepted", "late", "stale", "unexpected"}[r]
}

// Coordinator coordinates one job's checkpoints. Its zero value is not
// usable; see New.
type Coordinator struct {
	cfg      Config
	vertices []Vertex
	// attempt is the job's current attempt; active is true while it runs
	// (between Deployed and Suspend).
	attempt int64
	active  bool
	tasks   map[Subtask]int
	// nextTrigger is when the next periodic checkpoint is due.
	nextTrigger time.Time
	// lastCompleted is when the last checkpoint completed (for min-pause).
	lastCompleted time.Time
	nextID        ID
	pending       map[ID]*pending
	completed     []Completed
	// final holds the final states of the attempt's finished subtasks
	// (FinalID acknowledgements, or a restored checkpoint's).
	final map[Subtask]finalState
	// failures counts the counted checkpoint failures in a row.
	failures int
	stats    Stats
	// commit is the completed stop-savepoint whose commits the job waits
	// for before it stops; nil if none.
	commit *stopCommit
}

// stopCommit is a stop-savepoint that completed: the job stops once
// every subtask that took part confirmed it committed the savepoint's
// transactions (CommitConfirmed).
type stopCommit struct {
	id        ID
	attempt   int64
	path      string
	completed time.Time
	waiting   map[Subtask]bool
}

// New returns the coordinator of a job with these vertices (the JobGraph's,
// in order).
func New(cfg Config, vertices []Vertex) *Coordinator {
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 1
	}
	if cfg.Retained <= 0 {
		cfg.Retained = 1
	}
	c := &Coordinator{cfg: cfg, vertices: vertices, nextID: 1, pending: map[ID]*pending{}, tasks: map[Subtask]int{}, final: map[Subtask]finalState{}}
	c.stats.Latest.Restored = nil
	return c
}

// Config returns the coordinator's configuration.
func (c *Coordinator) Config() Config { return c.cfg }

// Enabled tells whether the job takes periodic checkpoints.
func (c *Coordinator) Enabled() bool { return c.cfg.Interval > 0 }

// Attempt is the job's current attempt, as the coordinator knows it.
func (c *Coordinator) Attempt() int64 { return c.attempt }

// Deployed starts a new attempt of the job at now: every subtask is being
// deployed, except those finished, which a restored checkpoint recorded
// as finished (with their final states, which stand for every later
// checkpoint). Checkpoints of older attempts are aborted. The first
// periodic checkpoint is due an interval later.
func (c *Coordinator) Deployed(now time.Time, attempt int64, finished []SubtaskState) []Effect {
	eff := c.stopFailed("the job was redeployed before every subtask confirmed its commit")
	eff = append(eff, c.abortAll(now, Suspended, "the job was redeployed")...)
	c.attempt, c.active = attempt, true
	clear(c.tasks)
	clear(c.final)
	for v, vx := range c.vertices {
		for s := range vx.Parallelism {
			c.tasks[Subtask{v, s}] = taskDeploying
		}
	}
	for _, st := range finished {
		sub := Subtask{st.Vertex, st.Subtask}
		c.tasks[sub] = taskFinished
		c.final[sub] = finalState{states: st.States, attempt: st.Attempt}
	}
	c.nextTrigger = now.Add(c.cfg.Interval)
	return eff
}

// Restored records that the attempt restored checkpoint id (from path),
// and makes the next checkpoint's id follow it.
func (c *Coordinator) Restored(now time.Time, id ID, path string) {
	c.stats.Counts.Restored++
	c.stats.Latest.Restored = &Restored{ID: id, RestoreTime: now, Path: path}
	if id >= c.nextID {
		c.nextID = id + 1
	}
}

// Suspend stops checkpointing (the job fails over, is cancelled or ended):
// every pending checkpoint is aborted and no new one is triggered until
// Deployed.
func (c *Coordinator) Suspend(now time.Time, why string) []Effect {
	c.active = false
	eff := c.stopFailed(fmt.Sprintf("the job stopped running before every subtask confirmed its commit: %s", why))
	return append(eff, c.abortAll(now, Suspended, why)...)
}

// TaskState records a subtask's state ("RUNNING", "FINISHED", "FAILED",
// "CANCELED", ...) reported by attempt. A stale attempt's report changes
// nothing (Stale). A subtask that finishes or fails while a checkpoint
// waits for it aborts that checkpoint.
func (c *Coordinator) TaskState(now time.Time, attempt int64, st Subtask, state string) (AckResult, []Effect) {
	if attempt != c.attempt {
		return Stale, nil
	}
	if _, ok := c.tasks[st]; !ok {
		return Unexpected, nil
	}
	var eff []Effect
	switch state {
	case "RUNNING":
		if c.tasks[st] == taskDeploying {
			c.tasks[st] = taskRunning
		}
	case "FINISHED":
		// A pending checkpoint that waits for it takes its final state
		// once known (Acknowledge with FinalID); until then it waits.
		c.tasks[st] = taskFinished
	case "FAILED", "CANCELED", "CANCELING":
		c.tasks[st] = taskFailed
		if c.commit != nil && c.commit.waiting[st] {
			eff = append(eff, c.stopFailed(fmt.Sprintf("subtask %s is %s before it confirmed its commit", st, state))...)
		}
		for _, p := range c.sortedPending() {
			if p.needed[st] {
				eff = append(eff, c.abort(now, p, TaskFailure, fmt.Sprintf("subtask %s is %s", st, state))...)
			}
		}
	}
	return Accepted, eff
}

// Tick advances time: pending checkpoints past the timeout are aborted,
// and a periodic checkpoint is triggered when due.
func (c *Coordinator) Tick(now time.Time) []Effect {
	var eff []Effect
	if sc := c.commit; sc != nil && c.cfg.Timeout > 0 && now.Sub(sc.completed) >= c.cfg.Timeout {
		eff = append(eff, c.stopFailed(fmt.Sprintf("not every subtask confirmed its commit within %v (execution.checkpointing.timeout): %s still owe it", c.cfg.Timeout, waitingList(sc.waiting)))...)
		// The job fails over: the restore commits what the savepoint holds.
		eff = append(eff, FailJob{Err: fmt.Sprintf("stop-savepoint %d: the commits of its transactions were not confirmed in time", sc.id)})
	}
	for _, p := range c.sortedPending() {
		if now.Sub(p.triggered) >= c.cfg.Timeout && c.cfg.Timeout > 0 {
			eff = append(eff, c.abort(now, p, Expired, fmt.Sprintf("not complete within %v (execution.checkpointing.timeout)", c.cfg.Timeout))...)
		}
	}
	return append(eff, c.maybeTrigger(now)...)
}

// NextEvent is when the coordinator next needs a Tick without other
// events: the next trigger or timeout; zero if none.
func (c *Coordinator) NextEvent() time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if c.active && c.cfg.Interval > 0 {
		t := c.nextTrigger
		if pause := c.lastCompleted.Add(c.cfg.MinPause); !c.lastCompleted.IsZero() && pause.After(t) {
			t = pause
		}
		earlier(t)
	}
	for _, p := range c.pending {
		if c.cfg.Timeout > 0 {
			earlier(p.triggered.Add(c.cfg.Timeout))
		}
	}
	if c.commit != nil && c.cfg.Timeout > 0 {
		earlier(c.commit.completed.Add(c.cfg.Timeout))
	}
	return next
}

func (c *Coordinator) maybeTrigger(now time.Time) []Effect {
	if !c.active || c.cfg.Interval <= 0 || now.Before(c.nextTrigger) || c.stopping() {
		return nil
	}
	if c.periodicPending() >= c.cfg.MaxConcurrent {
		// Due, and triggered once one ends.
		return nil
	}
	if !c.lastCompleted.IsZero() && now.Before(c.lastCompleted.Add(c.cfg.MinPause)) {
		return nil
	}
	p, _ := c.newPending(now, Periodic)
	if p == nil {
		return nil
	}
	c.nextTrigger = now.Add(c.cfg.Interval)
	return c.start(now, p)
}

// stopping tells whether a stop-savepoint is pending: no checkpoint is
// triggered after it.
func (c *Coordinator) stopping() bool {
	if c.commit != nil {
		return true
	}
	for _, p := range c.pending {
		if p.kind == StopSavepoint {
			return true
		}
	}
	return false
}

// periodicPending counts the pending periodic checkpoints: savepoints do
// not count towards max-concurrent, as in Flink.
func (c *Coordinator) periodicPending() int {
	n := 0
	for _, p := range c.pending {
		if p.kind == Periodic {
			n++
		}
	}
	return n
}

// ErrSavepointRefused classes a savepoint that cannot be triggered now
// (the job is not running, a stop-savepoint is pending); the caller may
// try again later.
var ErrSavepointRefused = errors.New("savepoint refused")

// TriggerSavepoint starts a savepoint (kind Savepoint or StopSavepoint)
// at now, whatever the interval, min-pause and max-concurrent say; it
// returns the savepoint's id. It is refused (ErrSavepointRefused) while
// the job is not running with every unfinished subtask RUNNING, or a
// stop-savepoint is pending.
func (c *Coordinator) TriggerSavepoint(now time.Time, kind Kind) (ID, []Effect, error) {
	if !kind.IsSavepoint() {
		return 0, nil, fmt.Errorf("trigger a savepoint of kind %s: %w", kind, ErrSavepointRefused)
	}
	if !c.active {
		return 0, nil, fmt.Errorf("the job is not running: %w", ErrSavepointRefused)
	}
	if c.stopping() {
		return 0, nil, fmt.Errorf("the job is stopping with a savepoint already: %w", ErrSavepointRefused)
	}
	p, why := c.newPending(now, kind)
	if p == nil {
		return 0, nil, fmt.Errorf("%s: %w", why, ErrSavepointRefused)
	}
	return p.id, c.start(now, p), nil
}

// newPending makes the next checkpoint of kind, or returns why it cannot
// be taken now.
func (c *Coordinator) newPending(now time.Time, kind Kind) (*pending, string) {
	p := &pending{id: c.nextID, attempt: c.attempt, triggered: now, kind: kind, needed: map[Subtask]bool{}, acks: map[Subtask]Ack{}, fromFinal: map[Subtask]bool{}}
	for _, st := range c.allSubtasks() {
		switch c.tasks[st] {
		case taskFinished:
			p.finished = append(p.finished, st)
		case taskRunning:
			p.needed[st] = true
		default:
			// Not every subtask runs yet (deploying, or failed and the
			// job about to fail over): skip this one, as Flink does
			// (NOT_ALL_REQUIRED_TASKS_RUNNING, not a failure).
			return nil, fmt.Sprintf("subtask %s is not running yet", st)
		}
	}
	if len(p.needed) == 0 {
		return nil, "every subtask finished" // the job is finishing
	}
	return p, ""
}

// start triggers p.
func (c *Coordinator) start(now time.Time, p *pending) []Effect {
	var at []Subtask
	for _, st := range c.allSubtasks() {
		if p.needed[st] && c.inputsFinished(st) {
			at = append(at, st)
		}
	}
	c.nextID++
	c.pending[p.id] = p
	p.stat = &Stat{ID: p.id, Status: StatusInProgress, TriggerTime: now, NumSubtasks: len(p.needed), Kind: p.kind}
	c.stats.Counts.Total++
	c.stats.Counts.InProgress++
	c.stats.pushHistory(p.stat)
	return []Effect{Trigger{ID: p.id, Attempt: c.attempt, Timestamp: now, Mode: c.cfg.Mode, Subtasks: at, Kind: p.kind}}
}

// inputsFinished tells whether every subtask st reads from has finished:
// true for a source.
func (c *Coordinator) inputsFinished(st Subtask) bool {
	for _, in := range c.vertices[st.Vertex].Inputs {
		if in.Forward {
			if c.tasks[Subtask{in.From, st.Index}] != taskFinished {
				return false
			}
			continue
		}
		for s := range c.vertices[in.From].Parallelism {
			if c.tasks[Subtask{in.From, s}] != taskFinished {
				return false
			}
		}
	}
	return true
}

func (c *Coordinator) allSubtasks() []Subtask {
	var out []Subtask
	for v, vx := range c.vertices {
		for s := range vx.Parallelism {
			out = append(out, Subtask{v, s})
		}
	}
	return out
}

func (c *Coordinator) sortedPending() []*pending {
	out := make([]*pending, 0, len(c.pending))
	for _, p := range c.pending {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *pending) int { return int(a.id - b.id) })
	return out
}

// Acknowledge takes a subtask's acknowledgement. Once every needed subtask
// has acknowledged, the effects ask for the metadata to be written.
func (c *Coordinator) Acknowledge(now time.Time, a Ack) (AckResult, []Effect) {
	if a.Attempt != c.attempt {
		return Stale, nil
	}
	if a.ID == FinalID {
		return c.finalState(now, a)
	}
	p, ok := c.pending[a.ID]
	if !ok || p.finalizing {
		return Late, nil
	}
	if !p.needed[a.Subtask] {
		return Unexpected, nil
	}
	if _, dup := p.acks[a.Subtask]; dup {
		return Accepted, nil
	}
	return Accepted, c.take(now, p, a)
}

// take records a's part of p, and asks for the metadata once p has every
// part.
func (c *Coordinator) take(now time.Time, p *pending, a Ack) []Effect {
	p.acks[a.Subtask] = a
	p.stat.NumAcknowledged++
	p.stat.LatestAck = now
	for _, h := range a.States {
		p.stat.StateSize += h.Size
	}
	p.stat.SyncMax = max(p.stat.SyncMax, a.Sync)
	p.stat.AsyncMax = max(p.stat.AsyncMax, a.Async)
	p.stat.AlignmentMax = max(p.stat.AlignmentMax, a.Alignment)
	if len(p.acks) < len(p.needed) {
		return nil
	}
	p.finalizing = true
	return []Effect{WriteMetadata{Meta: c.metadata(p), Kind: p.kind}}
}

// finalState takes a finished subtask's final state: it stands for the
// pending checkpoints after a.After that wait for the subtask, and for
// every later one.
func (c *Coordinator) finalState(now time.Time, a Ack) (AckResult, []Effect) {
	if _, ok := c.tasks[a.Subtask]; !ok {
		return Unexpected, nil
	}
	c.tasks[a.Subtask] = taskFinished
	c.final[a.Subtask] = finalState{after: a.After, states: a.States, attempt: a.Attempt}
	var eff []Effect
	for _, p := range c.sortedPending() {
		if _, acked := p.acks[a.Subtask]; p.needed[a.Subtask] && !acked && !p.finalizing && p.id > a.After {
			x := a
			x.ID = p.id
			p.fromFinal[a.Subtask] = true
			eff = append(eff, c.take(now, p, x)...)
		}
	}
	return Accepted, eff
}

func (c *Coordinator) metadata(p *pending) Metadata {
	m := Metadata{ID: p.id, Attempt: p.attempt, TimestampMs: p.triggered.UnixMilli()}
	for _, st := range p.finished {
		f := c.final[st]
		m.Subtasks = append(m.Subtasks, SubtaskState{Vertex: st.Vertex, Subtask: st.Index, Finished: true, Attempt: f.attempt, States: f.states})
	}
	for _, st := range c.allSubtasks() {
		if a, ok := p.acks[st]; ok {
			m.Subtasks = append(m.Subtasks, SubtaskState{Vertex: st.Vertex, Subtask: st.Index, Attempt: a.Attempt, States: a.States, Finished: p.fromFinal[st]})
		}
	}
	slices.SortFunc(m.Subtasks, func(a, b SubtaskState) int {
		if a.Vertex != b.Vertex {
			return a.Vertex - b.Vertex
		}
		return a.Subtask - b.Subtask
	})
	return m
}

// Decline takes a subtask's decline: the checkpoint is aborted.
func (c *Coordinator) Decline(now time.Time, d Decline) (AckResult, []Effect) {
	if d.Attempt != c.attempt {
		return Stale, nil
	}
	p, ok := c.pending[d.ID]
	if !ok || p.finalizing {
		return Late, nil
	}
	if !p.needed[d.Subtask] {
		return Unexpected, nil
	}
	r := d.Reason
	if r == 0 {
		r = Declined
	}
	return Accepted, c.abort(now, p, r, fmt.Sprintf("declined by subtask %s: %s", d.Subtask, d.Message))
}

// MetadataWritten reports the outcome of a WriteMetadata: err nil when
// checkpoint id's metadata is durable at path. Only then is the
// checkpoint complete. The metadata of a checkpoint no longer pending (of
// a stale attempt, aborted meanwhile) is refused: its files are
// discarded.
func (c *Coordinator) MetadataWritten(now time.Time, id ID, attempt int64, path string, err error) (AckResult, []Effect) {
	p, ok := c.pending[id]
	if !ok || !p.finalizing || p.attempt != attempt || attempt != c.attempt {
		res := Late
		if attempt != c.attempt {
			res = Stale
		}
		if c.isCompleted(id) {
			return res, nil
		}
		return res, []Effect{Discard{ID: id}}
	}
	if err != nil {
		return Accepted, c.abort(now, p, FinalizeFailed, fmt.Sprintf("write metadata: %v", err))
	}
	delete(c.pending, id)
	c.failures = 0
	c.lastCompleted = now
	done := Completed{ID: id, Attempt: attempt, Timestamp: p.triggered, Path: path, Size: p.stat.StateSize}
	c.completed = append(c.completed, done)
	// A savepoint may complete after a newer checkpoint (it is not
	// subsumed): the retained ones stay in id order, so that Latest is
	// the newest and the oldest go first.
	slices.SortFunc(c.completed, func(a, b Completed) int { return cmp.Compare(a.ID, b.ID) })
	p.stat.Status, p.stat.EndTime, p.stat.Path = StatusCompleted, now, path
	c.stats.Counts.InProgress--
	c.stats.Counts.Completed++
	c.stats.Latest.Completed = p.stat
	if p.kind.IsSavepoint() {
		c.stats.Latest.Savepoint = p.stat
	}
	c.stats.addCompleted(p.stat)
	// A savepoint is a completed checkpoint too: a failover after it
	// restores it (or a later one), since the sinks committed up to it.
	eff := []Effect{NotifyComplete{ID: id, Attempt: attempt, Timestamp: p.triggered, ConfirmCommit: p.kind == StopSavepoint}}
	if p.kind == StopSavepoint {
		// The job ends once every subtask that took part confirmed its
		// commit (CommitConfirmed); nothing more is triggered.
		c.active = false
		c.commit = &stopCommit{id: id, attempt: attempt, path: path, completed: now, waiting: maps.Clone(p.needed)}
	}
	for _, o := range c.sortedPending() {
		// A savepoint is never subsumed, as in Flink: the user waits
		// for it, and a periodic checkpoint triggered after it may
		// complete first while its canonical copy is being written.
		if o.id < id && !o.kind.IsSavepoint() {
			eff = append(eff, c.abort(now, o, Subsumed, fmt.Sprintf("subsumed by checkpoint %d", id))...)
		}
	}
	for len(c.completed) > c.cfg.Retained {
		old := c.completed[0]
		c.completed = c.completed[1:]
		c.stats.discarded(old.ID)
		eff = append(eff, Discard{ID: old.ID, Completed: true})
	}
	// A trigger held back by max-concurrent may go now.
	return Accepted, append(eff, c.maybeTrigger(now)...)
}

// CommitConfirmed takes a worker's confirmation that subtasks committed
// the transactions of stop-savepoint id (they heard NotifyComplete with
// ConfirmCommit). Once every subtask that took part in the savepoint
// confirmed, the job stops: StopJob. A confirmation of another attempt
// is Stale; one of a stop no longer waited for (failed, or of another
// checkpoint) is Late; subtasks the stop does not wait for (finished
// before the savepoint) are ignored.
func (c *Coordinator) CommitConfirmed(now time.Time, attempt int64, id ID, subtasks []Subtask) (AckResult, []Effect) {
	if attempt != c.attempt {
		return Stale, nil
	}
	sc := c.commit
	if sc == nil || sc.id != id || sc.attempt != attempt {
		return Late, nil
	}
	for _, st := range subtasks {
		delete(sc.waiting, st)
	}
	if len(sc.waiting) > 0 {
		return Accepted, nil
	}
	c.commit = nil
	return Accepted, []Effect{StopJob{ID: sc.id, Path: sc.path}}
}

// stopFailed ends the wait for the commits of a completed stop-savepoint,
// if any: the stop failed for why. The savepoint stays complete and
// usable: a restore from it commits its transactions.
func (c *Coordinator) stopFailed(why string) []Effect {
	sc := c.commit
	if sc == nil {
		return nil
	}
	c.commit = nil
	return []Effect{StopFailed{ID: sc.id, Path: sc.path, Err: why}}
}

func waitingList(m map[Subtask]bool) string {
	var s []string
	for _, st := range slices.SortedFunc(maps.Keys(m), func(a, b Subtask) int {
		if a.Vertex != b.Vertex {
			return a.Vertex - b.Vertex
		}
		return a.Index - b.Index
	}) {
		s = append(s, st.String())
	}
	return "subtask(s) " + strings.Join(s, ",")
}

func (c *Coordinator) isCompleted(id ID) bool {
	for _, d := range c.completed {
		if d.ID == id {
			return true
		}
	}
	return false
}

// CompletedCheckpoints returns the retained completed checkpoints, oldest
// first.
func (c *Coordinator) CompletedCheckpoints() []Completed { return slices.Clone(c.completed) }

// Latest returns the latest completed checkpoint, if any.
func (c *Coordinator) Latest() (Completed, bool) {
	if len(c.completed) == 0 {
		return Completed{}, false
	}
	return c.completed[len(c.completed)-1], true
}

// Forget drops a completed checkpoint that turned out unusable (its files
// are damaged), so that restores fall back to an older one.
func (c *Coordinator) Forget(id ID) {
	c.completed = slices.DeleteFunc(c.completed, func(d Completed) bool { return d.ID == id })
}

func (c *Coordinator) abortAll(now time.Time, r Reason, why string) []Effect {
	var eff []Effect
	for _, p := range c.sortedPending() {
		eff = append(eff, c.abort(now, p, r, why)...)
	}
	return eff
}

// abort ends p: workers are told, its files discarded, the failure
// counted if its kind counts, and the job failed past the tolerance.
func (c *Coordinator) abort(now time.Time, p *pending, r Reason, why string) []Effect {
	delete(c.pending, p.id)
	p.stat.Status, p.stat.EndTime, p.stat.FailureMessage = StatusFailed, now, why
	c.stats.Counts.InProgress--
	c.stats.Counts.Failed++
	c.stats.Latest.Failed = p.stat
	eff := []Effect{NotifyAborted{ID: p.id, Attempt: p.attempt, Reason: r}, Discard{ID: p.id}}
	// A failed savepoint is the user's to retry: it does not count.
	if r.Counts() && c.active && p.kind == Periodic {
		c.failures++
		if c.failures > c.cfg.TolerableFailures {
			eff = append(eff, FailJob{Err: fmt.Sprintf("checkpoint %d failed (%s: %s), %d checkpoint failure(s) in a row, more than tolerated (execution.checkpointing.tolerable-failed-checkpoints = %d)",
				p.id, r, why, c.failures, c.cfg.TolerableFailures)})
			c.failures = 0
			// The job fails over: no trigger until it is deployed again.
			c.active = false
		}
	}
	return eff
}
