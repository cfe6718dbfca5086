package jobmaster

import (
	"fmt"
	"time"
)

// Triage is a job's exception history, as the REST API shows it
// (GET /v1/jobs/{id}/exceptions), and the root-cause window: it decides
// which failure the job fails (or fails over) with, and which is its root
// exception. Like Master it is pure: each method takes one event with its
// time.
//
// A failure is primary (a subtask's error, a process that died) or
// secondary (a worker's lost connection to a peer: the consequence of
// another failure). A primary failure of a job CREATED or RUNNING fails it
// at once (FailNow). A secondary one, first, waits up to the window for
// its cause (AwaitCause): a primary failure within it fails the job instead,
// and Tick fails the job with the secondary one once the window passed.
// A process death reported after a job failed with a secondary root
// becomes the root. Every failure is kept (repeats once), up to the
// history's size; one that becomes the root is kept even beyond it.
type Triage struct {
	window  time.Duration
	max     int
	entries []Entry
	// root indexes the root exception in entries, -1 while none;
	// rootSecondary tells that it is a secondary failure.
	root          int
	rootSecondary bool
	truncated     bool
	suspect       *suspect
}

// Entry is one failure of the history.
type Entry struct {
	Time     time.Time
	Name     string
	Message  string
	Location string
}

// Report is one failure reported for the job.
type Report struct {
	Name     string
	Message  string
	Location string
	// Secondary marks a consequence of another failure; Death a process
	// that died (a worker's exit, a lost TaskManager), the cause a
	// secondary failure waits for.
	Secondary, Death bool
	// Attempt is the attempt it happened in; 0 for a failure of the job
	// itself (no slots, a checkpoint failure). The caller refuses another
	// attempt's.
	Attempt int64
}

// suspect is the secondary failure the job waits to explain.
type suspect struct {
	index    int
	report   Report
	deadline time.Time
}

// Verdict is what a reported failure means for the job.
type Verdict int

// The verdicts.
const (
	// Dropped: the job has finished or is being cancelled; not kept.
	Dropped Verdict = iota
	// Recorded: kept in the history; nothing to decide.
	Recorded
	// AwaitCause: a secondary failure, the first; the job waits for its
	// cause until Deadline.
	AwaitCause
	// FailNow: the job fails, or fails over, with it.
	FailNow
)

func (v Verdict) String() string {
	return [...]string{"dropped", "recorded", "await-cause", "fail-now"}[v]
}

// NewTriage returns the triage of a job just submitted: window is the
// root-cause window, max the history's size.
func NewTriage(window time.Duration, max int) *Triage {
	return &Triage{window: window, max: max, root: -1}
}

// Report takes a failure of the job, whose status (a Master status) is
// status, and returns the verdict and the failure's index in the history
// (-1 if it was not kept). On FailNow the caller decides (Master.Fail)
// and tells SetRoot if the failure became the root.
func (t *Triage) Report(now time.Time, status string, r Report) (Verdict, int) {
	switch status {
	case Finished, Canceled, Cancelling:
		return Dropped, -1
	case Restarting:
		// The attempt being released fails as it stops: kept, decided by
		// nobody. A failure of the job itself (no slots for the next
		// attempt) is decided again.
		idx := t.record(now, r, false)
		if r.Attempt != 0 {
			return Recorded, idx
		}
	}
	root := (status == Failing || status == Failed) && r.Death && t.rootSecondary ||
		(status == Created || status == Running) && (!r.Secondary || t.suspect == nil)
	idx := t.record(now, r, root)
	switch status {
	case Failing, Failed:
		if idx >= 0 && r.Death && t.rootSecondary {
			t.root, t.rootSecondary = idx, false
		}
		return Recorded, idx
	}
	if r.Secondary {
		if t.suspect == nil {
			t.suspect = &suspect{index: idx, report: r, deadline: now.Add(t.window)}
			return AwaitCause, idx
		}
		return Recorded, idx
	}
	return FailNow, idx
}

// Record keeps a failure in the history that decides nothing (a damaged
// checkpoint skipped at a restore); its index, -1 if the history is full.
func (t *Triage) Record(now time.Time, r Report) int { return t.record(now, r, false) }

// record appends r to the history, unless the same failure is there
// already (workers repeat theirs), and returns its index; -1 when the
// history is full, unless must.
func (t *Triage) record(now time.Time, r Report, must bool) int {
	for i, e := range t.entries {
		if e.Name == r.Name && e.Location == r.Location && e.Message == r.Message {
			return i
		}
	}
	if len(t.entries) >= t.max && !must {
		t.truncated = true
		return -1
	}
	t.entries = append(t.entries, Entry{Time: now, Name: r.Name, Message: r.Message, Location: r.Location})
	return len(t.entries) - 1
}

// Tick fails the job with the secondary failure it waited to explain once
// the window has passed: it returns it with its index, and waits no more.
func (t *Triage) Tick(now time.Time) (Report, int, bool) {
	s := t.suspect
	if s == nil || now.Before(s.deadline) {
		return Report{}, 0, false
	}
	t.suspect = nil
	return s.report, s.index, true
}

// Deadline is when the window of the secondary failure waiting for its
// cause ends; false if none waits.
func (t *Triage) Deadline() (time.Time, bool) {
	if t.suspect == nil {
		return time.Time{}, false
	}
	return t.suspect.deadline, true
}

// Clear stops waiting for a cause: the job failed over, or ended.
func (t *Triage) Clear() { t.suspect = nil }

// SetRoot makes the failure at index idx the root exception; secondary
// tells it is a secondary one, which a later process death replaces.
func (t *Triage) SetRoot(idx int, secondary bool) { t.root, t.rootSecondary = idx, secondary }

// Entries returns the history, in arrival order.
func (t *Triage) Entries() []Entry { return append([]Entry(nil), t.entries...) }

// Truncated tells that failures were dropped from the full history.
func (t *Triage) Truncated() bool { return t.truncated }

// Root returns the root exception, if any.
func (t *Triage) Root() (Entry, bool) {
	if t.root < 0 || t.root >= len(t.entries) {
		return Entry{}, false
	}
	return t.entries[t.root], true
}

func (r Report) String() string {
	s := fmt.Sprintf("name=%s message=%q", r.Name, r.Message)
	if r.Location != "" {
		s += " location=" + r.Location
	}
	if r.Secondary {
		s += " secondary"
	}
	if r.Death {
		s += " death"
	}
	return s
}
