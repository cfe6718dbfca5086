package localexec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/snapshot"
)

// The test job: a source emitting 1..n (its position is its state), a
// checker that fails when a number does not follow the last one (its
// state), and a transactional sink committing into a shared log.

type sourceOp struct {
	next     int64
	restored *[]int64 // positions restored, for the test
}

func (o *sourceOp) SnapshotState(int64) (func() ([]snapshot.Entry, error), error) {
	next := o.next
	return func() ([]snapshot.Entry, error) {
		var b snapshot.Buffer
		b.Int(next)
		return []snapshot.Entry{{Name: "next", KeyGroup: snapshot.NoKeyGroup, Data: b.B}}, nil
	}, nil
}

func (o *sourceOp) RestoreState(es []snapshot.Entry) error {
	for _, e := range es {
		r := snapshot.NewReader(e.Data)
		o.next = r.Int()
		if err := r.Done(); err != nil {
			return err
		}
		*o.restored = append(*o.restored, o.next)
	}
	return nil
}

type checkOp struct {
	last   int64
	failAt int64 // fail on this number, 0 never
	next   exec.Output[int64]
	task   *exec.Task
}

func (o *checkOp) Collect(v int64, ts int64) {
	if v != o.last+1 {
		o.task.Fail(fmt.Errorf("got %d after %d", v, o.last))
	}
	if v == o.failAt {
		o.task.Fail(fmt.Errorf("injected failure at %d", v))
	}
	o.last = v
	o.next.Collect(v, ts)
}
func (o *checkOp) Watermark(int64) {}
func (o *checkOp) Finish()         { o.next.Finish() }

func (o *checkOp) SnapshotState(int64) (func() ([]snapshot.Entry, error), error) {
	last := o.last
	return func() ([]snapshot.Entry, error) {
		var b snapshot.Buffer
		b.Int(last)
		return []snapshot.Entry{{Name: "last", KeyGroup: 0, Data: b.B}}, nil
	}, nil
}

func (o *checkOp) RestoreState(es []snapshot.Entry) error {
	for _, e := range es {
		o.last = snapshot.NewReader(e.Data).Int()
	}
	return nil
}

// committedLog is the sink's external system: transactions commit once.
type committedLog struct {
	mu   sync.Mutex
	done map[string]bool
	vals []int64
}

func (l *committedLog) commit(txn string, vals []int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done[txn] {
		return
	}
	l.done[txn] = true
	l.vals = append(l.vals, vals...)
}

type txn struct {
	id   int64
	name string
	vals []int64
}

type sinkOp struct {
	log     *committedLog
	attempt int64
	buf     []int64
	mu      sync.Mutex
	pending []txn
}

func (o *sinkOp) Collect(v int64, _ int64) { o.buf = append(o.buf, v) }
func (o *sinkOp) Watermark(int64)          {}
func (o *sinkOp) Finish()                  {}

func (o *sinkOp) SnapshotState(id int64) (func() ([]snapshot.Entry, error), error) {
	o.mu.Lock()
	o.pending = append(o.pending, txn{id: id, name: fmt.Sprintf("a%d-c%d", o.attempt, id), vals: o.buf})
	all := slices.Clone(o.pending)
	o.mu.Unlock()
	o.buf = nil
	return func() ([]snapshot.Entry, error) {
		var es []snapshot.Entry
		for _, t := range all {
			var b snapshot.Buffer
			b.String(t.name)
			b.Uint(uint64(len(t.vals)))
			for _, v := range t.vals {
				b.Int(v)
			}
			es = append(es, snapshot.Entry{Name: "txn", KeyGroup: snapshot.NoKeyGroup, Data: b.B})
		}
		return es, nil
	}, nil
}

func (o *sinkOp) RestoreState(es []snapshot.Entry) error {
	for _, e := range es {
		r := snapshot.NewReader(e.Data)
		name := r.String()
		vals := make([]int64, r.Len())
		for i := range vals {
			vals[i] = r.Int()
		}
		if err := r.Done(); err != nil {
			return err
		}
		o.log.commit(name, vals) // commit what the checkpoint pre-committed
	}
	return nil
}

func (o *sinkOp) CommitCheckpoint(id int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	keep := o.pending[:0]
	for _, t := range o.pending {
		if t.id != exec.EndOfInput && t.id <= id {
			o.log.commit(t.name, t.vals)
		} else {
			keep = append(keep, t)
		}
	}
	o.pending = keep
	return nil
}

func (o *sinkOp) AbortCheckpoint(int64) {}

func (o *sinkOp) end(err error) error {
	if err != nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range o.pending {
		o.log.commit(t.name, t.vals)
	}
	o.log.commit(fmt.Sprintf("a%d-end", o.attempt), o.buf)
	return nil
}

// testJob builds the job; failAt[attempt] injects a failure.
// The source waits at each of waitAt until a checkpoint completes after it
// got there, so that a failure after it restores mid-stream.
func testJob(n int64, log *committedLog, failAt map[int64]int64, restored *[]int64, completed *atomic.Int64, waitAt ...int64) func(int64, *snapshot.Runner) ([]Subtask, error) {
	return func(attempt int64, r *snapshot.Runner) ([]Subtask, error) {
		sink := &exec.Task{Name: "sink", Parallelism: 1, Inbox: make(chan exec.Msg, 4), ChannelGates: []int{0}}
		so := &sinkOp{log: log, attempt: attempt}
		sink.Gates = []func(any) (int, error){exec.Deliverer[int64](so, nil)}
		sink.Head = so
		sink.Ends = []func(error) error{so.end}
		sinkState := r.Task(2, 0, 0, 1)
		sinkState.Add(3, so)

		chk := &exec.Task{Name: "check", Parallelism: 1, Inbox: make(chan exec.Msg, 4), ChannelGates: []int{0}}
		co := &checkOp{failAt: failAt[attempt], task: chk}
		co.next = exec.NewEdgeWriter(chk, exec.EdgeWriterConfig[int64]{Targets: []chan exec.Msg{sink.Inbox}, Part: exec.Forward, BatchSize: 16})
		chk.Gates = []func(any) (int, error){exec.Deliverer[int64](co, nil)}
		chk.Head = co
		chkState := r.Task(1, 0, 0, 1)
		chkState.Add(2, co)

		src := &exec.Task{Name: "source", Parallelism: 1}
		so2 := &sourceOp{next: 1, restored: restored}
		w := exec.NewEdgeWriter(src, exec.EdgeWriterConfig[int64]{Targets: []chan exec.Msg{chk.Inbox}, Part: exec.Forward, BatchSize: 16})
		src.Source = func(ctx context.Context) error {
			for so2.next <= n {
				for i := 0; i < 10 && so2.next <= n; i++ {
					w.Collect(so2.next, exec.NoTimestamp)
					so2.next++
				}
				src.PollCheckpoint()
				if slices.Contains(waitAt, so2.next) {
					src.FlushOutputs()
					for seen := completed.Load(); completed.Load() <= seen+1; {
						src.WaitTimers(time.Millisecond) // injects the barriers
					}
				}
			}
			w.Finish()
			return nil
		}
		srcState := r.Task(0, 0, 0, 1)
		srcState.Add(1, so2)
		return []Subtask{{Task: src, Vertex: 0, State: srcState}, {Task: chk, Vertex: 1, State: chkState}, {Task: sink, Vertex: 2, State: sinkState}}, nil
	}
}

// chain3 is the test job's graph: source -> check -> sink, forward.
var chain3 = []checkpoint.Vertex{
	{Parallelism: 1},
	{Parallelism: 1, Inputs: []checkpoint.Input{{From: 0, Forward: true}}},
	{Parallelism: 1, Inputs: []checkpoint.Input{{From: 1, Forward: true}}},
}

// TestRestartFromCheckpoint: a job whose subtask fails restarts in-process
// from its latest checkpoint, and its committed output holds every number
// once, as the failure-free run's does.
func TestRestartFromCheckpoint(t *testing.T) {
	const n = 6000
	for _, tc := range []struct {
		name         string
		failAt       map[int64]int64
		wantRestarts int
	}{
		{"no failure", nil, 0},
		{"two failures", map[int64]int64{1: 2500, 2: 4500}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &committedLog{done: map[string]bool{}}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var restored []int64
			var completed atomic.Int64
			st, err := Run(ctx, Job{
				Completed: func(int64) { completed.Add(1) },
				Name:      "test", Build: testJob(n, log, tc.failAt, &restored, &completed, 2001, 4001),
				Checkpoints: checkpoint.Config{Interval: 5 * time.Millisecond, Mode: checkpoint.ExactlyOnce}, Vertices: chain3,
				Restart: func(failures int, err error) (time.Duration, bool) { return 0, failures <= 3 },
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if st.Restarts != tc.wantRestarts {
				t.Errorf("%d restarts, want %d", st.Restarts, tc.wantRestarts)
			}
			if st.Completed == 0 {
				t.Errorf("no checkpoint completed")
			}
			// Each restart resumed mid-stream from a checkpoint (the test
			// paces the source so that one completes before a failure).
			if len(restored) != tc.wantRestarts || slices.Contains(restored, 1) {
				t.Errorf("restored the source at %v, want %d positions past the start", restored, tc.wantRestarts)
			}
			got := slices.Clone(log.vals)
			slices.Sort(got)
			if len(got) != n {
				t.Fatalf("committed %d values, want %d", len(got), n)
			}
			for i, v := range got {
				if v != int64(i+1) {
					t.Fatalf("committed values sorted hold %d at %d: want 1..%d once each", v, i, n)
				}
			}
		})
	}
}

// TestRestartsExhausted: when the policy says no, the job fails with the
// subtask's error.
func TestRestartsExhausted(t *testing.T) {
	log := &committedLog{done: map[string]bool{}}
	always := map[int64]int64{1: 100, 2: 100, 3: 100}
	st, err := Run(context.Background(), Job{
		Name: "test", Build: testJob(1000, log, always, new([]int64), nil),
		Checkpoints: checkpoint.Config{Interval: 5 * time.Millisecond, Mode: checkpoint.ExactlyOnce}, Vertices: chain3,
		Restart: func(failures int, err error) (time.Duration, bool) { return 0, failures < 3 },
	})
	if err == nil || st.Restarts != 2 {
		t.Fatalf("Run = %v after %d restarts, want the injected failure after 2", err, st.Restarts)
	}
}

func TestDeclineReason(t *testing.T) {
	if got := reasonOf(fmt.Errorf("x: %w", snapshot.ErrSubsumed)); got != checkpoint.DeclinedSubsumed {
		t.Errorf("an overtaken checkpoint declines as %v, want declined-subsumed (not a failure)", got)
	}
	if got := reasonOf(fmt.Errorf("no codec")); got != checkpoint.SnapshotFailed {
		t.Errorf("a failed snapshot declines as %v", got)
	}
}

// TestRestoreRetainedCheckpoint: a run stopped by a failure (no restart)
// leaves its latest checkpoint in Stats.Metadata; another Run started
// from it, its state files moved to file:// URLs as a retained checkpoint
// has them, resumes mid-stream, and the two runs commit every number once.
func TestRestoreRetainedCheckpoint(t *testing.T) {
	const n = 6000
	log := &committedLog{done: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var restored []int64
	var completed atomic.Int64
	cfg := checkpoint.Config{Interval: 5 * time.Millisecond, Mode: checkpoint.ExactlyOnce}
	st, err := Run(ctx, Job{
		Completed: func(int64) { completed.Add(1) },
		Name:      "test", Build: testJob(n, log, map[int64]int64{1: 3000}, &restored, &completed, 2001),
		Checkpoints: cfg, Vertices: chain3,
	})
	if err == nil || st.Metadata == nil || st.Restarts != 0 {
		t.Fatalf("Run = %v, %d restarts, metadata %v; want the injected failure after a checkpoint", err, st.Restarts, st.Metadata)
	}
	m := *st.Metadata
	dir := t.TempDir()
	for i := range m.Subtasks {
		for j := range m.Subtasks[i].States {
			h := &m.Subtasks[i].States[j]
			path := filepath.Join(dir, fmt.Sprintf("%d-%d-%d", i, j, m.ID))
			if err := os.WriteFile(path, h.Inline, 0o600); err != nil {
				t.Fatal(err)
			}
			h.URL, h.Inline = "file://"+path, nil
		}
	}
	completed.Store(0)
	st, err = Run(ctx, Job{
		Completed: func(int64) { completed.Add(1) },
		Name:      "test", Build: testJob(n, log, nil, &restored, &completed),
		Checkpoints: cfg, Vertices: chain3, Restore: &m,
	})
	if err != nil {
		t.Fatalf("Run from checkpoint %d: %v", m.ID, err)
	}
	if len(restored) != 1 || restored[0] <= 1 {
		t.Errorf("restored the source at %v, want one position past the start", restored)
	}
	got := slices.Clone(log.vals)
	slices.Sort(got)
	if len(got) != n {
		t.Fatalf("committed %d values, want %d", len(got), n)
	}
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("committed values sorted hold %d at %d: want 1..%d once each", v, i, n)
		}
	}
}
