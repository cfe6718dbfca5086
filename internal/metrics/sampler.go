package metrics

import (
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// Subtask is a subtask a worker runs, with where it sits in the JobGraph.
type Subtask struct {
	Task    *exec.Task
	Vertex  int
	Subtask int
}

// Sampler turns readings of a worker's subtasks into SubtaskMetrics: the
// cumulative figures as they are, the rates per second from the previous
// reading. Busy, idle and back-pressured time per second are Flink's:
// each between 0 and 1000, busy being what the others leave. Only one
// goroutine may use a Sampler.
type Sampler struct {
	subtasks []Subtask
	prev     []exec.TaskSample
	prevOps  [][]exec.OperatorSample
}

// NewSampler returns a Sampler of subtasks, taking a first reading.
func NewSampler(subtasks []Subtask) *Sampler {
	s := &Sampler{subtasks: subtasks, prev: make([]exec.TaskSample, len(subtasks)), prevOps: make([][]exec.OperatorSample, len(subtasks))}
	for i, st := range subtasks {
		s.prev[i] = st.Task.Sample()
		s.prevOps[i] = st.Task.OperatorSamples(s.prev[i])
	}
	return s
}

// Sample reads every subtask and returns its figures.
func (s *Sampler) Sample() []*rpcpb.SubtaskMetrics {
	out := make([]*rpcpb.SubtaskMetrics, len(s.subtasks))
	for i, st := range s.subtasks {
		cur := st.Task.Sample()
		prev := s.prev[i]
		// Totals never go back, even if a wait ended between the loads
		// of a reading (see exec.Task.Sample).
		cur.IdleNs = max(cur.IdleNs, prev.IdleNs)
		cur.BackPressuredNs = max(cur.BackPressuredNs, prev.BackPressuredNs)
		m := &rpcpb.SubtaskMetrics{
			Vertex: int32(st.Vertex), Subtask: int32(st.Subtask), TaskName: st.Task.Name,
			RecordsIn: cur.RecordsIn, RecordsOut: cur.RecordsOut, BytesIn: cur.BytesIn, BytesOut: cur.BytesOut,
			InputWatermark: cur.InputWatermark, OutputWatermark: cur.OutputWatermark,
			PendingRecords: cur.PendingRecords, PendingBytes: cur.PendingBytes,
		}
		if dt := float64(cur.At - prev.At); dt > 0 {
			perSec := func(a, b int64) float64 { return max(float64(a-b), 0) * 1e9 / dt }
			m.RecordsInPerSecond = perSec(cur.RecordsIn, prev.RecordsIn)
			m.RecordsOutPerSecond = perSec(cur.RecordsOut, prev.RecordsOut)
			m.BytesInPerSecond = perSec(cur.BytesIn, prev.BytesIn)
			m.BytesOutPerSecond = perSec(cur.BytesOut, prev.BytesOut)
			idle := min(perSec(cur.IdleNs, prev.IdleNs)/1e6, 1000)
			bp := min(perSec(cur.BackPressuredNs, prev.BackPressuredNs)/1e6, 1000-idle)
			m.IdleMsPerSecond, m.BackPressuredMsPerSecond = idle, bp
			m.BusyMsPerSecond = max(1000-idle-bp, 0)
		}
		ops := st.Task.OperatorSamples(cur)
		for j, op := range ops {
			om := &rpcpb.OperatorMetrics{
				Id: int32(op.ID), Name: op.Name, RecordsIn: op.RecordsIn, RecordsOut: op.RecordsOut,
				InputWatermark: op.InputWatermark, OutputWatermark: op.OutputWatermark, PendingRecords: -1, PendingBytes: -1,
			}
			if dt := float64(cur.At - prev.At); dt > 0 && j < len(s.prevOps[i]) {
				p := s.prevOps[i][j]
				om.RecordsInPerSecond = max(float64(op.RecordsIn-p.RecordsIn), 0) * 1e9 / dt
				om.RecordsOutPerSecond = max(float64(op.RecordsOut-p.RecordsOut), 0) * 1e9 / dt
			}
			if j == 0 && st.Task.Source != nil {
				// A source's pending input is its head operator's.
				om.PendingRecords, om.PendingBytes = cur.PendingRecords, cur.PendingBytes
			}
			m.Operators = append(m.Operators, om)
		}
		s.prev[i], s.prevOps[i] = cur, ops
		out[i] = m
	}
	return out
}
