package exec

import (
	"sync/atomic"
	"time"
)

// TaskMetrics are a subtask's figures that other goroutines (a metrics
// sampler) read while the subtask runs: bytes through its edges, the time
// it spent waiting for input and blocked on full output queues, and its
// watermarks. The subtask's goroutine writes them; everything else only
// reads, through Task.Sample.
//
// Time is accounted per wait, not per record: the subtask takes a clock
// reading only when it is about to block (its inbox is empty, or an output
// queue is full) and when it resumes, so a busy subtask that never blocks
// pays nothing. Busy time is what is left: Flink's busyTimeMsPerSecond is
// likewise 1000 minus idle and backpressured time.
type TaskMetrics struct {
	// bytesIn and bytesOut count the bytes of encoded batches received and
	// sent: the batches that cross a process boundary (and every batch
	// with pipeline.encode-exchanges). Batches handed over as Go values
	// within a process have no size to count.
	bytesIn, bytesOut atomic.Int64
	// idleNs and backPressuredNs are the waits that have ended;
	// waitKind/waitSince describe the wait in progress, if any.
	idleNs, backPressuredNs atomic.Int64
	waitKind                atomic.Int32
	waitSince               atomic.Int64
	// inWM and outWM are the combined input watermark and the last
	// watermark sent downstream; set marks that inWM/outWM were written
	// (a zero watermark is a valid one).
	inWM, outWM     atomic.Int64
	inSet, outSet   atomic.Bool
	pendingRecords  atomic.Int64
	pendingBytes    atomic.Int64
	pendingReported atomic.Bool
	// noWriters marks a subtask without outgoing edges (a sink).
	noWriters atomic.Bool
}

// Kinds of wait.
const (
	waitNone int32 = iota
	waitIdle
	waitBackPressured
)

// epoch anchors the monotonic clock the waits are measured with.
var epoch = time.Now()

// monoNs is the monotonic time in nanoseconds since epoch.
func monoNs() int64 { return int64(time.Since(epoch)) }

// beginWait notes that the subtask is about to block for the given kind of
// wait and returns when it began.
func (m *TaskMetrics) beginWait(kind int32) int64 {
	now := monoNs()
	m.waitSince.Store(now)
	m.waitKind.Store(kind)
	return now
}

// endWait adds the wait that began at since to its kind's total.
func (m *TaskMetrics) endWait(kind int32, since int64) {
	m.waitKind.Store(waitNone)
	d := monoNs() - since
	if kind == waitIdle {
		m.idleNs.Add(d)
	} else {
		m.backPressuredNs.Add(d)
	}
}

// SetPending tells how much input a source has left to read, where it
// knows: records (a bounded generator) and bytes (a file); -1 for a figure
// it does not know. A source calls it on its task's goroutine, typically
// after each read.
func (m *TaskMetrics) SetPending(records, bytes int64) {
	m.pendingRecords.Store(records)
	m.pendingBytes.Store(bytes)
	m.pendingReported.Store(true)
}

// setInputWatermark records the combined input watermark.
func (m *TaskMetrics) setInputWatermark(wm int64) {
	m.inWM.Store(wm)
	m.inSet.Store(true)
}

// setOutputWatermark records the watermark sent downstream.
func (m *TaskMetrics) setOutputWatermark(wm int64) {
	m.outWM.Store(wm)
	m.outSet.Store(true)
}

// TaskSample is a reading of a subtask's cumulative figures at one moment.
// Rates (per second) come from the difference of two samples.
type TaskSample struct {
	// At is the monotonic time of the reading in nanoseconds.
	At int64
	// RecordsIn and RecordsOut are Task.In and Task.Out.
	RecordsIn, RecordsOut int64
	// BytesIn and BytesOut count encoded batches' bytes.
	BytesIn, BytesOut int64
	// IdleNs and BackPressuredNs are the time spent waiting for input and
	// blocked on a full output queue (or missing credit), including a wait
	// in progress.
	IdleNs, BackPressuredNs int64
	// InputWatermark and OutputWatermark are MinWatermark until the first
	// one passed. A subtask with no outgoing edge (a sink) reports its
	// input watermark as its output watermark.
	InputWatermark, OutputWatermark int64
	// PendingRecords and PendingBytes are what a source has left to read,
	// -1 where it does not know (and for every other subtask).
	PendingRecords, PendingBytes int64
}

// Sample reads the subtask's figures; it may be called from any goroutine.
func (t *Task) Sample() TaskSample {
	m := &t.M
	s := TaskSample{
		RecordsIn: t.In.Load(), RecordsOut: t.Out.Load(),
		BytesIn: m.bytesIn.Load(), BytesOut: m.bytesOut.Load(),
		IdleNs: m.idleNs.Load(), BackPressuredNs: m.backPressuredNs.Load(),
		InputWatermark: MinWatermark, OutputWatermark: MinWatermark,
		PendingRecords: -1, PendingBytes: -1,
	}
	// A wait in progress counts up to now. The subtask may end it between
	// the loads above and these: the sampler keeps totals monotonic and
	// clamps rates, so such a race costs one sample's precision at most.
	kind, since := m.waitKind.Load(), m.waitSince.Load()
	s.At = monoNs()
	if d := s.At - since; d > 0 {
		switch kind {
		case waitIdle:
			s.IdleNs += d
		case waitBackPressured:
			s.BackPressuredNs += d
		}
	}
	if m.inSet.Load() {
		s.InputWatermark = m.inWM.Load()
	}
	if m.outSet.Load() {
		s.OutputWatermark = m.outWM.Load()
	} else if m.noWriters.Load() {
		s.OutputWatermark = s.InputWatermark
	}
	if m.pendingReported.Load() {
		s.PendingRecords, s.PendingBytes = m.pendingRecords.Load(), m.pendingBytes.Load()
	}
	return s
}
