package exec

import "testing"

type addOne struct{ out Output[int64] }

func (a *addOne) Collect(v int64, ts int64) { a.out.Collect(v+1, ts) }
func (a *addOne) Watermark(wm int64)        { a.out.Watermark(wm) }
func (a *addOne) Finish()                   { a.out.Finish() }

type sum struct{ n int64 }

func (s *sum) Collect(v int64, ts int64) { s.n += v }
func (s *sum) Watermark(int64)           {}
func (s *sum) Finish()                   {}

// chain builds ops operators that add one, each emitting through a
// Counting output if counted, registered with t, into a sum.
func chain(t *Task, ops int, counted bool) Output[int64] {
	var out Output[int64] = &sum{}
	ms := make([]*OperatorMetrics, ops)
	for i := ops - 1; i >= 0; i-- {
		if counted {
			ms[i] = &OperatorMetrics{ID: i, Name: "op", From: i - 1}
			out = &Counting[int64]{Next: out, M: ms[i]}
		}
		out = &addOne{out: out}
	}
	if counted {
		for _, m := range ms {
			t.AddOperator(m)
		}
	}
	return out
}

// TestOperatorSamples: an operator's records in are its predecessor's
// out, the head's the subtask's; counts show once published.
func TestOperatorSamples(t *testing.T) {
	task := &Task{}
	head := chain(task, 3, true)
	for i := range 5 {
		head.Collect(int64(i), NoTimestamp)
	}
	if got := task.OperatorSamples(TaskSample{RecordsIn: 5})[2].RecordsOut; got != 0 {
		t.Fatalf("unpublished count seen: %d", got)
	}
	task.PublishMetrics()
	head.Watermark(42)
	s := task.OperatorSamples(TaskSample{RecordsIn: 5, InputWatermark: 40})
	for i, o := range s {
		if o.RecordsIn != 5 || o.RecordsOut != 5 || o.OutputWatermark != 42 {
			t.Errorf("operator %d: %+v, want 5 in, 5 out, watermark 42 out", i, o)
		}
	}
	if s[0].InputWatermark != 40 || s[1].InputWatermark != 42 {
		t.Errorf("input watermarks %d, %d; want the subtask's 40 at the head, 42 after it", s[0].InputWatermark, s[1].InputWatermark)
	}
}

// BenchmarkCountingChain measures what operator counting
// (metrics.operator.enabled) adds to a chain of four trivial operators.
func BenchmarkCountingChain(b *testing.B) {
	for _, counted := range []bool{false, true} {
		b.Run(map[bool]string{false: "counted=false", true: "counted=true"}[counted], func(b *testing.B) {
			c := chain(&Task{}, 4, counted)
			for i := range b.N {
				c.Collect(int64(i), 0)
			}
		})
	}
}
