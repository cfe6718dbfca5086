package exec

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Control is what a subtask's input loop tells the head of its chain besides
// records: the combined input watermark and the end of all inputs.
type Control interface {
	Watermark(wm int64)
	Finish()
}

// Clock tells the processing time in milliseconds since the Unix epoch.
type Clock func() int64

// WallClock is the real processing time.
func WallClock() int64 { return time.Now().UnixMilli() }

// Task is one subtask: a chain of operators run by one goroutine. The builder
// fills its fields before Run; afterwards only the task's goroutine touches
// it.
type Task struct {
	// Name is the name of the chain, used in errors.
	Name string
	// Subtask is the index of this subtask and Parallelism their number.
	Subtask, Parallelism int
	// Inbox receives the batches of every input channel. Nil for sources.
	Inbox chan Msg
	// ChannelGates maps each input channel to the gate (input index of the
	// head operator) it feeds.
	ChannelGates []int
	// Gates hands a received batch to the head operator's input and
	// returns its number of records.
	Gates []func(batch any) (int, error)
	// Head receives watermarks and the end of input.
	Head Control
	// Source, if set, drives the task instead of an input loop: it produces
	// records until its input ends, then returns.
	Source func(ctx context.Context) error
	// Opens run in order before processing; Closes run in reverse order
	// afterwards, also after a failure.
	Opens  []func() error
	Closes []func() error
	// Ends run once every task of the Run has ended (after their Closes),
	// with nil if every task finished its input and the Run was not
	// stopped, else with the reason: this task's own failure, or the
	// failure or stop that ended the Run. Sinks publish their output
	// there and only on nil, so that no failure in this process leaves
	// output published. An End's error fails the task.
	Ends []func(err error) error
	// Flushes run whenever the task sends its buffered records on (see
	// FlushOutputs): an operator that batches towards the outside (a
	// sink) sends its batch then, so a quiet stream is not held back.
	Flushes []func()
	// Clock is the processing-time clock; WallClock if nil.
	Clock Clock
	// Checkpoint connects the task to checkpoints; see Checkpointing.
	Checkpoint Checkpointing

	// In counts the records received and Out the records sent to other
	// subtasks; other goroutines may read them at any time.
	In, Out atomic.Int64
	// M holds the subtask's other figures (metrics.go); read them with
	// Sample.
	M TaskMetrics

	// Current names the operator whose code runs now; operators set it
	// before calling user code so that a panic names the right operator.
	Current string

	ctx     context.Context
	ops     []*OperatorMetrics
	writers []writer
	timers  procTimers
	timer   *time.Timer

	// trig holds the checkpoints triggered at a source; lastBarrier is
	// the latest checkpoint the task snapshotted or gave up.
	trig        triggers
	lastBarrier int64
	alignment   time.Duration // of the last checkpoint, see Alignment
}

// Context returns the job's context as seen by this subtask.
func (t *Task) Context() context.Context { return t.ctx }

// Now returns the processing time in milliseconds.
func (t *Task) Now() int64 { return t.Clock() }

// Fail unwinds the subtask with err; the job fails with it. Operators call it
// when user code returns an error.
func (t *Task) Fail(err error) {
	panic(errFail{err})
}

// Raise fails the running subtask with err, as Task.Fail does, from code
// that has no Task at hand (a key selector called by an edge's
// partitioner). It must be called on a subtask's goroutine.
func Raise(err error) { panic(errFail{err}) }

// Abort unwinds the subtask because the job stops (its context ended).
func (t *Task) Abort() {
	panic(errAbort{context.Cause(t.ctx)})
}

// SetIdle marks all of the task's outgoing channels idle or active.
func (t *Task) SetIdle(idle bool) {
	for _, w := range t.writers {
		w.setIdle(idle)
	}
}

// FlushOutputs sends every buffered record downstream.
func (t *Task) FlushOutputs() {
	for _, w := range t.writers {
		w.Flush()
	}
	for _, f := range t.Flushes {
		f()
	}
}

// RegisterProcTimer calls f once the processing time reaches at (ms). f
// runs on the task's goroutine. The returned handle cancels the timer.
func (t *Task) RegisterProcTimer(at int64, f func()) *ProcTimer {
	pt := &ProcTimer{at: at, seq: t.timers.seq, f: f}
	t.timers.seq++
	heap.Push(&t.timers, pt)
	return pt
}

// CancelProcTimer removes pt if it has not fired yet, releasing its
// function. Cancelling a fired or cancelled timer does nothing.
func (t *Task) CancelProcTimer(pt *ProcTimer) {
	if pt == nil || pt.index < 0 {
		return
	}
	heap.Remove(&t.timers, pt.index)
	pt.f = nil
}

// PendingProcTimers returns how many processing-time timers wait to fire.
func (t *Task) PendingProcTimers() int { return len(t.timers.h) }

// FireProcTimers runs every processing-time timer that is due.
func (t *Task) FireProcTimers() {
	if len(t.timers.h) == 0 {
		return
	}
	now := t.Now()
	for len(t.timers.h) > 0 && t.timers.h[0].at <= now {
		pt := heap.Pop(&t.timers).(*ProcTimer)
		f := pt.f
		pt.f = nil
		f()
	}
}

// nextTimer returns a channel that fires when the earliest timer is due, or
// nil if there is none.
func (t *Task) nextTimer() <-chan time.Time {
	if len(t.timers.h) == 0 {
		return nil
	}
	d := time.Duration(t.timers.h[0].at-t.Now()) * time.Millisecond
	if d < 0 {
		d = 0
	}
	if t.timer == nil {
		t.timer = time.NewTimer(d)
	} else {
		t.timer.Reset(d)
	}
	return t.timer.C
}

// WaitTimers blocks until the next processing-time timer is due, d passed,
// or the job stops; it is for sources that have nothing to read.
func (t *Task) WaitTimers(d time.Duration) {
	if len(t.timers.h) > 0 {
		if until := time.Duration(t.timers.h[0].at-t.Now()) * time.Millisecond; until < d {
			d = max(until, 0)
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	since := t.M.beginWait(waitIdle)
	select {
	case <-tm.C:
		t.M.endWait(waitIdle, since)
	case <-t.trigWake():
		t.M.endWait(waitIdle, since)
		t.PollCheckpoint()
	case <-t.ctx.Done():
		t.M.endWait(waitIdle, since)
		t.Abort()
	}
}

type channelState struct {
	wm    int64
	idle  bool
	ended bool
}

// runInputs is the loop of a task with inputs.
func (t *Task) runInputs() error {
	chans := make([]channelState, len(t.ChannelGates))
	for i := range chans {
		chans[i].wm = MinWatermark
	}
	open := len(chans)
	lastWM := MinWatermark
	allIdle := false
	al := newAlignment(t.Checkpoint, len(chans))
	for open > 0 {
		m, ok := al.next()
		if !ok {
			select {
			case m = <-t.Inbox:
			default:
				// Nothing waiting: send what is buffered before blocking, so a
				// quiet stream has no added latency and a busy one full batches.
				t.FlushOutputs()
				since := t.M.beginWait(waitIdle)
				select {
				case m = <-t.Inbox:
					t.M.endWait(waitIdle, since)
				case <-t.nextTimer():
					t.M.endWait(waitIdle, since)
					t.FireProcTimers()
					continue
				case <-t.ctx.Done():
					t.M.endWait(waitIdle, since)
					return context.Cause(t.ctx)
				}
			}
		}
		if al.pending != 0 && al.hold(m) {
			if al.overLimit() {
				t.abortOverLimit(al)
			}
			continue
		}
		c := &chans[m.Channel]
		switch m.Kind {
		case MsgData:
			c.idle = false
			n, err := t.Gates[t.ChannelGates[m.Channel]](m.Batch)
			if err != nil {
				return fmt.Errorf("input channel %d: %w", m.Channel, err)
			}
			t.In.Add(int64(n))
			t.PublishMetrics()
			if b, ok := m.Batch.([]byte); ok {
				t.M.bytesIn.Add(int64(len(b)))
			}
			if allIdle {
				allIdle = false
				t.SetIdle(false)
			}
		case MsgWatermark:
			c.idle = false
			if m.WM > c.wm {
				c.wm = m.WM
			}
		case MsgIdle:
			c.idle = true
		case MsgEnd:
			c.ended = true
			c.wm = MaxWatermark
			open--
			if al.pending != 0 {
				// With the last channel ended too, the pending
				// checkpoint has all its barriers.
				t.channelEnded(al, m.Channel, open)
			}
		case MsgBarrier:
			t.barrier(al, m.Channel, m.WM, open)
			t.FireProcTimers()
			continue
		}
		if m.Kind != MsgData {
			wm, idle := combine(chans)
			if wm > lastWM {
				lastWM = wm
				t.M.setInputWatermark(wm)
				t.Head.Watermark(wm)
			}
			if idle != allIdle && open > 0 {
				allIdle = idle
				t.SetIdle(idle)
			}
		}
		t.FireProcTimers()
	}
	t.Head.Finish()
	return nil
}

// combine returns the minimum watermark over the active channels and whether
// every open channel is idle.
func combine(chans []channelState) (wm int64, allIdle bool) {
	wm = MaxWatermark
	active := 0
	for i := range chans {
		c := &chans[i]
		if c.ended || c.idle {
			continue
		}
		active++
		if c.wm < wm {
			wm = c.wm
		}
	}
	if active == 0 {
		// Only idle (or ended) channels: the watermark may advance to
		// the highest of the idle ones, as Flink does when all are idle.
		wm = MinWatermark
		for i := range chans {
			if !chans[i].ended && chans[i].wm > wm {
				wm = chans[i].wm
			}
		}
		for i := range chans {
			if !chans[i].ended {
				return wm, true
			}
		}
		return MaxWatermark, false
	}
	return wm, false
}

// errAbort unwinds a subtask because the job is stopping.
type errAbort struct{ cause error }

// errFail unwinds a subtask with an operator's error.
type errFail struct{ err error }

// SubtaskError is the error of a failed subtask: which operator, which
// subtask, and why.
type SubtaskError struct {
	Operator    string
	Subtask     int
	Parallelism int
	Err         error
	// Stack is the goroutine stack of a panic, empty for returned errors.
	Stack string
}

func (e *SubtaskError) Error() string {
	return fmt.Sprintf("operator %q (subtask %d/%d) failed: %v", e.Operator, e.Subtask+1, e.Parallelism, e.Err)
}

func (e *SubtaskError) Unwrap() error { return e.Err }

// PanicError is a panic in user or operator code turned into an error.
type PanicError struct{ Value any }

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// run runs the task to its end and turns panics into errors.
func (t *Task) run(ctx context.Context) (err error) {
	t.ctx = ctx
	t.M.noWriters.Store(len(t.writers) == 0)
	if t.Clock == nil {
		t.Clock = WallClock
	}
	defer func() {
		if r := recover(); r != nil {
			err = t.recovered(r)
		}
		// An ended subtask idles from now on (see TaskMetrics).
		t.M.beginWait(waitIdle)
		t.PublishMetrics()
		for i := len(t.Closes) - 1; i >= 0; i-- {
			if cerr := t.closeOne(t.Closes[i]); cerr != nil && err == nil {
				err = t.wrap(cerr, "")
			}
		}
		if t.timer != nil {
			t.timer.Stop()
		}
	}()
	for _, open := range t.Opens {
		if err := open(); err != nil {
			return t.wrap(err, "")
		}
	}
	if t.Source != nil {
		if err := t.Source(ctx); err != nil {
			return t.wrap(err, "")
		}
	} else if err := t.runInputs(); err != nil {
		return t.wrap(err, "")
	}
	if t.Checkpoint.Snapshot != nil {
		t.Snapshot(EndOfInput)
	}
	return nil
}

func (t *Task) closeOne(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r}
		}
	}()
	return f()
}

func (t *Task) recovered(r any) error {
	switch r := r.(type) {
	case errAbort:
		return r.cause
	case errFail:
		return t.wrap(r.err, "")
	}
	return t.wrap(&PanicError{Value: r}, string(debug.Stack()))
}

func (t *Task) wrap(err error, stack string) error {
	var se *SubtaskError
	if errors.As(err, &se) || errors.Is(err, context.Canceled) || errors.Is(err, ErrJobStopping) {
		return err
	}
	op := t.Current
	if op == "" {
		op = t.Name
	}
	return &SubtaskError{Operator: op, Subtask: t.Subtask, Parallelism: t.Parallelism, Err: err, Stack: stack}
}

// ErrJobStopping is the error of a subtask stopped because another one
// failed; RunObserved reports it for those subtasks.
var ErrJobStopping = errors.New("job is stopping")

// Run runs every task until all have ended, the first fails, or ctx ends. On
// a failure it cancels the others and returns the failure; on ctx's end it
// returns ctx's cause.
func Run(ctx context.Context, tasks []*Task) error {
	return RunObserved(ctx, tasks, nil)
}

// RunObserved is Run that also calls ended, if not nil, when each task
// ends, with the task's error (nil when it finished). ended may be called
// from several goroutines at once. A task with Ends counts as ended once
// they have run, after every task of the Run.
func RunObserved(ctx context.Context, tasks []*Task, ended func(t *Task, err error)) error {
	return RunGated(ctx, tasks, ended, nil)
}

// RunGated is RunObserved where, once every task finished, gate (if not
// nil) must also agree before any task's Ends run with success: a worker
// asks whether the whole job finished, of which its tasks are a share.
// When gate returns an error the Ends run with that error as the outcome,
// and the tasks that have Ends are reported ended with it.
func RunGated(ctx context.Context, tasks []*Task, ended func(t *Task, err error), gate func(context.Context) error) error {
	outer := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	errs := make([]error, len(tasks))
	for i, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := t.run(ctx)
			errs[i] = err
			if ended != nil && len(t.Ends) == 0 {
				ended(t, err)
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil && ctx.Err() == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel(ErrJobStopping)
			}
		}()
	}
	wg.Wait()
	runErr := firstErr
	if runErr == nil {
		if err := ctx.Err(); err != nil {
			runErr = err
			if c := context.Cause(ctx); c != nil && !errors.Is(c, ErrJobStopping) {
				runErr = c
			}
		}
	}
	// Only now is it known whether every task of this Run finished.
	var gateErr error
	if runErr == nil && gate != nil && slices.ContainsFunc(tasks, func(t *Task) bool { return len(t.Ends) > 0 }) {
		if gateErr = gate(outer); gateErr != nil {
			runErr = gateErr
		}
	}
	for i, t := range tasks {
		if len(t.Ends) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcome := errs[i]
			if outcome == nil {
				outcome = runErr
			}
			err := t.end(outcome)
			if errs[i] == nil && err != nil {
				mu.Lock()
				if runErr == nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			if errs[i] != nil {
				err = errs[i]
			} else if gateErr != nil {
				err = gateErr
			}
			if ended != nil {
				ended(t, err)
			}
		}()
	}
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	return firstErr
}

// end runs the task's Ends in reverse order with outcome and returns the
// first error, as a failure of the task.
func (t *Task) end(outcome error) error {
	var first error
	for i := len(t.Ends) - 1; i >= 0; i-- {
		f := t.Ends[i]
		if err := t.closeOne(func() error { return f(outcome) }); err != nil && first == nil {
			first = t.wrap(err, "")
		}
	}
	return first
}

// ProcTimer is a processing-time timer registered with a Task.
type ProcTimer struct {
	at    int64
	seq   uint64
	f     func()
	index int // position in the task's heap; -1 once fired or cancelled
}

// procTimers is a min-heap of timers by time, then registration order. A
// timer knows its position, so that cancelling it removes it at once.
type procTimers struct {
	h   []*ProcTimer
	seq uint64
}

func (p *procTimers) Len() int { return len(p.h) }
func (p *procTimers) Less(i, j int) bool {
	if p.h[i].at != p.h[j].at {
		return p.h[i].at < p.h[j].at
	}
	return p.h[i].seq < p.h[j].seq
}
func (p *procTimers) Swap(i, j int) {
	p.h[i], p.h[j] = p.h[j], p.h[i]
	p.h[i].index, p.h[j].index = i, j
}
func (p *procTimers) Push(x any) {
	pt := x.(*ProcTimer)
	pt.index = len(p.h)
	p.h = append(p.h, pt)
}
func (p *procTimers) Pop() any {
	n := len(p.h) - 1
	x := p.h[n]
	p.h[n] = nil
	p.h = p.h[:n]
	x.index = -1
	// Give back the memory of a burst of timers once most are gone.
	if c := cap(p.h); c > 1024 && n < c/4 {
		p.h = append(make([]*ProcTimer, 0, 2*n), p.h...)
	}
	return x
}
