package exec

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// step is one action of a scripted source.
type step struct {
	emit    int           // emit this many more records
	barrier int64         // inject this checkpoint's barrier
	finish  bool          // end the channel (else it ends after the script)
	signal  chan struct{} // close it
	wait    chan struct{} // wait until it is closed
}

// recorder is the consumer's head operator: it keeps what it received and
// passes it on.
type recorder struct {
	got  []int
	next Output[int]
}

func (r *recorder) Collect(v int, ts int64) { r.got = append(r.got, v); r.next.Collect(v, ts) }
func (r *recorder) Watermark(wm int64)      { r.next.Watermark(wm) }
func (r *recorder) Finish()                 { r.next.Finish() }

// counter is the sink's head.
type counter struct{ n int }

func (c *counter) Collect(int, int64) { c.n++ }
func (c *counter) Watermark(int64)    {}
func (c *counter) Finish()            {}

// perSource counts received records by source (value / 1e6).
func perSource(vs []int) map[int]int {
	m := map[int]int{}
	for _, v := range vs {
		m[v/1_000_000]++
	}
	return m
}

type barrierRun struct {
	consumerSnaps map[int64]map[int]int // checkpoint -> records per source
	sinkSnaps     map[int64]int         // checkpoint -> records at the sink
	aborts        []int64
	causes        []error // of the aborts
	got           []int
	finals        int                     // EndOfInput snapshots
	alignments    map[int64]time.Duration // at the consumer
}

// runBarrierJob runs two scripted sources into a consumer with two input
// channels, which forwards everything to a sink.
func runBarrierJob(t *testing.T, aligned bool, scripts [2][]step) barrierRun {
	t.Helper()
	return runBarrierJobLimit(t, aligned, 0, scripts)
}

// runBarrierJobLimit is runBarrierJob with the consumer's alignment
// holding at most limit bytes.
func runBarrierJobLimit(t *testing.T, aligned bool, limit int64, scripts [2][]step) barrierRun {
	t.Helper()
	var res barrierRun
	res.consumerSnaps = map[int64]map[int]int{}
	res.sinkSnaps = map[int64]int{}
	res.alignments = map[int64]time.Duration{}
	var mu sync.Mutex // the finals of several tasks
	final := func() { mu.Lock(); res.finals++; mu.Unlock() }

	sink := &Task{Name: "sink", Parallelism: 1, Inbox: make(chan Msg, 4), ChannelGates: []int{0}}
	cnt := &counter{}
	sink.Gates = []func(any) (int, error){Deliverer[int](cnt, nil)}
	sink.Head = cnt
	sink.Checkpoint = Checkpointing{Aligned: aligned, Snapshot: func(id int64) {
		if id == EndOfInput {
			final()
			return
		}
		res.sinkSnaps[id] = cnt.n
	}}

	cons := &Task{Name: "consumer", Parallelism: 1, Inbox: make(chan Msg, 8), ChannelGates: []int{0, 0}}
	toSink := NewEdgeWriter(cons, EdgeWriterConfig[int]{Targets: []chan Msg{sink.Inbox}, Part: Forward, BatchSize: 4})
	rec := &recorder{next: toSink}
	cons.Gates = []func(any) (int, error){Deliverer[int](rec, nil)}
	cons.Head = rec
	cons.Checkpoint = Checkpointing{Aligned: aligned, MaxAlignedBytes: limit,
		Snapshot: func(id int64) {
			if id == EndOfInput {
				final()
				return
			}
			res.consumerSnaps[id] = perSource(rec.got)
			res.alignments[id] = cons.Alignment()
		},
		Abort: func(id int64, cause error) {
			res.aborts = append(res.aborts, id)
			res.causes = append(res.causes, cause)
		},
	}

	tasks := []*Task{sink, cons}
	for i, script := range scripts {
		src := &Task{Name: fmt.Sprintf("source %d", i), Subtask: i, Parallelism: 2}
		w := NewEdgeWriter(src, EdgeWriterConfig[int]{Targets: []chan Msg{cons.Inbox}, Channel: int32(i), Part: Rebalance, BatchSize: 4})
		src.Checkpoint = Checkpointing{Aligned: aligned, Snapshot: func(id int64) {
			if id == EndOfInput {
				final()
			}
		}}
		src.Source = func(ctx context.Context) error {
			next := 1
			finished := false
			for _, s := range script {
				for range s.emit {
					w.Collect(i*1_000_000+next, NoTimestamp)
					next++
				}
				if s.barrier != 0 {
					src.TriggerCheckpoint(s.barrier)
					src.PollCheckpoint()
				}
				if s.finish {
					w.Finish()
					finished = true
				}
				if s.signal != nil {
					w.Flush()
					close(s.signal)
				}
				if s.wait != nil {
					w.Flush()
					select {
					case <-s.wait:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			if !finished {
				w.Finish()
			}
			return nil
		}
		tasks = append(tasks, src)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Run(ctx, tasks); err != nil {
		t.Fatalf("Run: %v", err)
	}
	res.got = rec.got
	if cnt.n != len(rec.got) {
		t.Errorf("sink got %d records, consumer %d", cnt.n, len(rec.got))
	}
	return res
}

// TestBarrierAlignment runs two sources into a two-channel consumer with
// scripted barriers, aligned (EXACTLY_ONCE) and not (AT_LEAST_ONCE).
func TestBarrierAlignment(t *testing.T) {
	type want struct {
		snaps  map[int64]map[int]int // at the consumer
		sink   map[int64]int
		aborts []int64
	}
	cases := []struct {
		name    string
		scripts func() [2][]step
		// wantAligned is exact; wantAtLeastOnce, where the order of the
		// inbox makes it deterministic.
		wantAligned, wantAtLeastOnce want
		total                        [2]int
	}{
		{
			// Source 0 sends far more after its barrier than the inbox
			// holds before source 1 sends its barrier: aligned, the
			// consumer holds it all without stalling anyone.
			name: "records after the barrier of a blocked channel",
			scripts: func() [2][]step {
				done0 := make(chan struct{})
				return [2][]step{
					{{emit: 10, barrier: 1}, {emit: 3000, signal: done0}},
					{{emit: 5, wait: done0}, {barrier: 1}, {emit: 5}},
				}
			},
			wantAligned:     want{snaps: map[int64]map[int]int{1: {0: 10, 1: 5}}, sink: map[int64]int{1: 15}},
			wantAtLeastOnce: want{snaps: map[int64]map[int]int{1: {0: 3010, 1: 5}}, sink: map[int64]int{1: 3015}},
			total:           [2]int{3010, 10},
		},
		{
			name: "a finished channel delivered every later barrier",
			scripts: func() [2][]step {
				return [2][]step{
					{{emit: 10, barrier: 1}, {emit: 10}},
					{{emit: 5}},
				}
			},
			wantAligned: want{snaps: map[int64]map[int]int{1: {0: 10, 1: 5}}, sink: map[int64]int{1: 15}},
			total:       [2]int{20, 5},
		},
		{
			// The END of a channel that delivered the barrier comes before
			// the other channel ends without one: the last END completes
			// the checkpoint.
			name: "channels end after and without the barrier",
			scripts: func() [2][]step {
				d0 := make(chan struct{})
				return [2][]step{
					{{emit: 10, barrier: 1}, {emit: 10, finish: true, signal: d0}},
					{{emit: 5, wait: d0}, {emit: 3}},
				}
			},
			wantAligned:     want{snaps: map[int64]map[int]int{1: {0: 10, 1: 8}}, sink: map[int64]int{1: 18}},
			wantAtLeastOnce: want{snaps: map[int64]map[int]int{1: {0: 20, 1: 8}}, sink: map[int64]int{1: 28}},
			total:           [2]int{20, 8},
		},
		{
			name: "a later barrier overtakes a pending checkpoint",
			scripts: func() [2][]step {
				d0, d1 := make(chan struct{}), make(chan struct{})
				return [2][]step{
					{{emit: 10, barrier: 1}, {emit: 10, signal: d0}, {wait: d1}, {barrier: 2}, {emit: 10}},
					{{wait: d0}, {emit: 5, barrier: 2, signal: d1}, {emit: 5}},
				}
			},
			wantAligned: want{snaps: map[int64]map[int]int{2: {0: 20, 1: 5}}, sink: map[int64]int{2: 25}, aborts: []int64{1}},
			total:       [2]int{30, 10},
		},
	}
	for _, tc := range cases {
		for _, aligned := range []bool{true, false} {
			mode := "EXACTLY_ONCE"
			if !aligned {
				mode = "AT_LEAST_ONCE"
			}
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				res := runBarrierJob(t, aligned, tc.scripts())
				w := tc.wantAligned
				exact := aligned || tc.wantAtLeastOnce.snaps != nil
				if !aligned && tc.wantAtLeastOnce.snaps != nil {
					w = tc.wantAtLeastOnce
				}
				if got := slices.Sorted(maps.Keys(res.consumerSnaps)); !slices.Equal(got, slices.Sorted(maps.Keys(w.snaps))) {
					t.Fatalf("consumer snapshots of checkpoints %v, want %v", got, slices.Sorted(maps.Keys(w.snaps)))
				}
				for id, wantPer := range w.snaps {
					got := res.consumerSnaps[id]
					for src, n := range wantPer {
						if exact && got[src] != n || !exact && got[src] < n {
							t.Errorf("checkpoint %d: consumer snapshot holds %d records of source %d, want %d (exact %v)", id, got[src], src, n, exact)
						}
					}
					if exact && res.sinkSnaps[id] != w.sink[id] || !exact && res.sinkSnaps[id] < w.sink[id] {
						t.Errorf("checkpoint %d: sink snapshot after %d records, want %d (exact %v)", id, res.sinkSnaps[id], w.sink[id], exact)
					}
				}
				if !slices.Equal(res.aborts, w.aborts) {
					t.Errorf("aborted checkpoints %v, want %v", res.aborts, w.aborts)
				}
				// Every record arrives once, in order per source.
				per := perSource(res.got)
				if per[0] != tc.total[0] || per[1] != tc.total[1] {
					t.Errorf("received %v records per source, want %v", per, tc.total)
				}
				last := map[int]int{}
				for _, v := range res.got {
					if v <= last[v/1_000_000] {
						t.Fatalf("record %d after %d: out of order", v, last[v/1_000_000])
					}
					last[v/1_000_000] = v
				}
				if tc.name == "records after the barrier of a blocked channel" && res.alignments[1] <= 0 {
					t.Errorf("the consumer's alignment of checkpoint 1 took %v, want the time it waited for the second barrier", res.alignments[1])
				}
				if res.finals != 4 {
					t.Errorf("%d end-of-input snapshots, want one per task (4)", res.finals)
				}
			})
		}
	}
}

// TestTriggerWakesIdleSource: a checkpoint triggered from another
// goroutine reaches a source waiting for timers, which injects the
// barrier at once.
func TestTriggerWakesIdleSource(t *testing.T) {
	sink := &Task{Name: "sink", Parallelism: 1, Inbox: make(chan Msg, 4), ChannelGates: []int{0}}
	cnt := &counter{}
	sink.Gates = []func(any) (int, error){Deliverer[int](cnt, nil)}
	sink.Head = cnt
	snapped := make(chan int, 1)
	sink.Checkpoint.Snapshot = func(id int64) {
		if id == 7 {
			snapped <- cnt.n
		}
	}
	src := &Task{Name: "source", Parallelism: 1}
	w := NewEdgeWriter(src, EdgeWriterConfig[int]{Targets: []chan Msg{sink.Inbox}, Part: Forward})
	started := make(chan struct{})
	src.Source = func(ctx context.Context) error {
		for i := range 3 {
			w.Collect(i, NoTimestamp)
		}
		close(started)
		for src.lastBarrier < 7 {
			src.WaitTimers(time.Hour)
		}
		w.Finish()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []*Task{src, sink}) }()
	<-started
	src.TriggerCheckpoint(7)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	select {
	case n := <-snapped:
		if n != 3 {
			t.Errorf("sink snapshot after %d records, want 3", n)
		}
	default:
		t.Fatal("the sink took no snapshot of checkpoint 7")
	}
}

// TestBarrierAlignmentLimit: a fast producer goes on sending after its
// barrier while the other input's barrier is slow to come. With a limit,
// the aligning consumer holds no more than the limit (and one message):
// it gives the checkpoint up with an error that says why, passes on what
// it held in order, ignores that checkpoint's late barrier, and takes the
// next checkpoint exactly.
func TestBarrierAlignmentLimit(t *testing.T) {
	const limit = 4 << 10
	done0, late1 := make(chan struct{}), make(chan struct{})
	res := runBarrierJobLimit(t, true, limit, [2][]step{
		{{emit: 10, barrier: 1}, {emit: 3000, signal: done0}, {wait: late1}, {barrier: 2}, {emit: 5}},
		{{emit: 5, wait: done0}, {barrier: 1, signal: late1}, {emit: 5, barrier: 2}, {emit: 5}},
	})
	if !slices.Equal(res.aborts, []int64{1}) || len(res.causes) != 1 {
		t.Fatalf("aborts %v (%v), want checkpoint 1 given up", res.aborts, res.causes)
	}
	var le *AlignmentLimitError
	if !errors.As(res.causes[0], &le) || !errors.Is(res.causes[0], ErrAlignmentLimit) {
		t.Fatalf("abort cause %v, want an *AlignmentLimitError", res.causes[0])
	}
	// A held message is a batch of at most 4 records.
	maxMsg := msgSize(Msg{Batch: make([]Rec[int], 4)})
	if le.Held <= limit || le.Held > limit+maxMsg || le.Limit != limit || le.Checkpoint != 1 {
		t.Fatalf("gave up holding %d bytes, limit %d (a message is at most %d): %v", le.Held, le.Limit, maxMsg, le)
	}
	if !strings.Contains(le.Error(), "task.checkpoint.alignment.max-size") {
		t.Errorf("the message does not name the key: %v", le)
	}
	if _, ok := res.consumerSnaps[1]; ok {
		t.Errorf("checkpoint 1 was snapshotted after it was given up: %v", res.consumerSnaps[1])
	}
	if got, want := res.consumerSnaps[2], map[int]int{0: 3010, 1: 10}; !maps.Equal(got, want) {
		t.Errorf("checkpoint 2 at the consumer holds %v records per source, want %v", got, want)
	}
	// Every record once, each source's in order.
	last := map[int]int{}
	for _, v := range res.got {
		s, n := v/1_000_000, v%1_000_000
		if n != last[s]+1 {
			t.Fatalf("source %d: record %d after %d", s, n, last[s])
		}
		last[s] = n
	}
	if last[0] != 3015 || last[1] != 15 {
		t.Fatalf("received %v records per source, want 3015 and 15", last)
	}
}
