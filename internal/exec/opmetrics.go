package exec

import "sync/atomic"

// OperatorMetrics are one operator's figures in one subtask: the records
// it emitted on its main output and the last watermark it emitted. Its
// records in are its chained predecessor's records out, or the subtask's
// records in for the head of the chain (see Task.OperatorSamples).
//
// The count is a plain increment on the subtask's goroutine, published
// for other goroutines once per batch (Task.PublishMetrics), as Flink's
// CountingOutput counts per record and its reporters read a moment later.
type OperatorMetrics struct {
	// ID is the operator's node id in the JobGraph, Name its name.
	ID   int
	Name string
	// From is the ID of the operator it is chained to, -1 for the head.
	From int

	out   int64 // the subtask's goroutine only
	pub   atomic.Int64
	outWM atomic.Int64
	wmSet atomic.Bool
}

// AddOperator registers an operator of the task's chain; the task
// publishes its count with its own.
func (t *Task) AddOperator(m *OperatorMetrics) {
	t.ops = append(t.ops, m)
}

// PublishMetrics makes the operators' counts visible to samplers. The
// task's input loop calls it per batch; a source calls it per read.
func (t *Task) PublishMetrics() {
	for _, m := range t.ops {
		m.pub.Store(m.out)
	}
}

// OperatorSample is a reading of one operator's figures.
type OperatorSample struct {
	ID                              int
	Name                            string
	RecordsIn, RecordsOut           int64
	InputWatermark, OutputWatermark int64
}

// OperatorSamples reads the operators of the chain, in chain order, given
// the task's own reading s; it may be called from any goroutine.
func (t *Task) OperatorSamples(s TaskSample) []OperatorSample {
	out := make([]OperatorSample, len(t.ops))
	byID := make(map[int]int, len(t.ops))
	for i, m := range t.ops {
		byID[m.ID] = i
		out[i] = OperatorSample{ID: m.ID, Name: m.Name, RecordsOut: m.pub.Load(), OutputWatermark: MinWatermark}
		if m.wmSet.Load() {
			out[i].OutputWatermark = m.outWM.Load()
		}
	}
	for i, m := range t.ops {
		if p, ok := byID[m.From]; ok {
			out[i].RecordsIn, out[i].InputWatermark = out[p].RecordsOut, out[p].OutputWatermark
			continue
		}
		out[i].RecordsIn, out[i].InputWatermark = s.RecordsIn, s.InputWatermark
	}
	return out
}

// Counting is the Output through which an operator emits on its main
// output: it counts the records into m and remembers the watermark.
type Counting[T any] struct {
	Next Output[T]
	M    *OperatorMetrics
}

// Collect counts v and passes it on.
func (c *Counting[T]) Collect(v T, ts int64) {
	c.M.out++
	c.Next.Collect(v, ts)
}

// Watermark records wm and passes it on.
func (c *Counting[T]) Watermark(wm int64) {
	c.M.outWM.Store(wm)
	c.M.wmSet.Store(true)
	c.Next.Watermark(wm)
}

// Finish publishes the final count and passes the end on.
func (c *Counting[T]) Finish() {
	c.M.pub.Store(c.M.out)
	c.Next.Finish()
}
