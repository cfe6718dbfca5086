package metrics

import (
	"math"
	"strconv"
	"strings"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// Flink's metric names, as the REST API and Prometheus show them.
const (
	NumRecordsIn                 = "numRecordsIn"
	NumRecordsOut                = "numRecordsOut"
	NumRecordsInPerSecond        = "numRecordsInPerSecond"
	NumRecordsOutPerSecond       = "numRecordsOutPerSecond"
	NumBytesIn                   = "numBytesIn"
	NumBytesOut                  = "numBytesOut"
	NumBytesInPerSecond          = "numBytesInPerSecond"
	NumBytesOutPerSecond         = "numBytesOutPerSecond"
	BusyTimeMsPerSecond          = "busyTimeMsPerSecond"
	BackPressuredTimeMsPerSecond = "backPressuredTimeMsPerSecond"
	IdleTimeMsPerSecond          = "idleTimeMsPerSecond"
	CurrentInputWatermark        = "currentInputWatermark"
	CurrentOutputWatermark       = "currentOutputWatermark"
	// WatermarkLag is FLIP-33's: how far (ms) the output watermark is
	// behind the wall clock when sampled. Absent before the first
	// watermark and after the last (end of input).
	WatermarkLag   = "watermarkLag"
	PendingRecords = "pendingRecords"
	PendingBytes   = "pendingBytes"

	// Job scope (JobManager).
	Uptime                       = "uptime"
	NumRestarts                  = "numRestarts"
	NumberOfCompletedCheckpoints = "numberOfCompletedCheckpoints"
	NumberOfFailedCheckpoints    = "numberOfFailedCheckpoints"
	LastCheckpointDuration       = "lastCheckpointDuration"
	LastCheckpointSize           = "lastCheckpointSize"

	// JobManager scope.
	NumRegisteredTaskManagers = "numRegisteredTaskManagers"
	NumRunningJobs            = "numRunningJobs"
	TaskSlotsAvailable        = "taskSlotsAvailable"
	TaskSlotsTotal            = "taskSlotsTotal"
)

// Value is one figure under its REST metric id.
type Value struct {
	ID    string
	Value float64
	// Counter marks a monotonic count (Prometheus type counter).
	Counter bool
}

// FormatValue renders v as the REST API does: integers without a
// fraction, others with as few digits as represent them.
func FormatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
		return strconv.FormatInt(int64(v), 10)
	}
	if v == float64(math.MinInt64) {
		return strconv.FormatInt(math.MinInt64, 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// lag is WatermarkLag for watermark wm sampled at nowMs, ok false when wm is
// not a watermark in time (none yet, or the end of input).
func lag(nowMs, wm int64) (float64, bool) {
	if wm == math.MinInt64 || wm == math.MaxInt64 || nowMs == 0 {
		return 0, false
	}
	return float64(nowMs - wm), true
}

// SubtaskValues lists a subtask's figures under their REST ids: the
// subtask's own ("numRecordsIn") and its operators'
// ("<operator>.numRecordsIn", the name made safe by OperatorKey). nowMs is
// when they were sampled, for the watermark lag.
func SubtaskValues(s *rpcpb.SubtaskMetrics, nowMs int64) []Value {
	vs := TaskValues(s, nowMs)
	for _, op := range s.Operators {
		for _, v := range OperatorValues(op, nowMs) {
			v.ID = OperatorKey(op.Name) + "." + v.ID
			vs = append(vs, v)
		}
	}
	return vs
}

// TaskValues lists a subtask's own figures, not its operators'.
func TaskValues(s *rpcpb.SubtaskMetrics, nowMs int64) []Value {
	vs := []Value{
		{ID: NumRecordsIn, Value: float64(s.RecordsIn), Counter: true},
		{ID: NumRecordsOut, Value: float64(s.RecordsOut), Counter: true},
		{ID: NumRecordsInPerSecond, Value: s.RecordsInPerSecond},
		{ID: NumRecordsOutPerSecond, Value: s.RecordsOutPerSecond},
		{ID: NumBytesIn, Value: float64(s.BytesIn), Counter: true},
		{ID: NumBytesOut, Value: float64(s.BytesOut), Counter: true},
		{ID: NumBytesInPerSecond, Value: s.BytesInPerSecond},
		{ID: NumBytesOutPerSecond, Value: s.BytesOutPerSecond},
		{ID: BusyTimeMsPerSecond, Value: s.BusyMsPerSecond},
		{ID: BackPressuredTimeMsPerSecond, Value: s.BackPressuredMsPerSecond},
		{ID: IdleTimeMsPerSecond, Value: s.IdleMsPerSecond},
		{ID: CurrentInputWatermark, Value: float64(s.InputWatermark)},
		{ID: CurrentOutputWatermark, Value: float64(s.OutputWatermark)},
	}
	if l, ok := lag(nowMs, s.OutputWatermark); ok {
		vs = append(vs, Value{ID: WatermarkLag, Value: l})
	}
	if s.PendingRecords >= 0 {
		vs = append(vs, Value{ID: PendingRecords, Value: float64(s.PendingRecords)})
	}
	if s.PendingBytes >= 0 {
		vs = append(vs, Value{ID: PendingBytes, Value: float64(s.PendingBytes)})
	}
	return vs
}

// OperatorValues lists an operator's figures under their metric names.
func OperatorValues(op *rpcpb.OperatorMetrics, nowMs int64) []Value {
	vs := []Value{
		{ID: NumRecordsIn, Value: float64(op.RecordsIn), Counter: true},
		{ID: NumRecordsOut, Value: float64(op.RecordsOut), Counter: true},
		{ID: NumRecordsInPerSecond, Value: op.RecordsInPerSecond},
		{ID: NumRecordsOutPerSecond, Value: op.RecordsOutPerSecond},
		{ID: CurrentInputWatermark, Value: float64(op.InputWatermark)},
		{ID: CurrentOutputWatermark, Value: float64(op.OutputWatermark)},
	}
	if l, ok := lag(nowMs, op.OutputWatermark); ok {
		vs = append(vs, Value{ID: WatermarkLag, Value: l})
	}
	if op.PendingRecords >= 0 {
		vs = append(vs, Value{ID: PendingRecords, Value: float64(op.PendingRecords)})
	}
	if op.PendingBytes >= 0 {
		vs = append(vs, Value{ID: PendingBytes, Value: float64(op.PendingBytes)})
	}
	return vs
}

// OperatorKey is an operator's name as it appears in a REST metric id:
// dots and spaces (which would split or break the id) become underscores.
func OperatorKey(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == ' ' {
			return '_'
		}
		return r
	}, name)
}

// ProcessValues lists a process's Go runtime figures under Flink-like
// ids (Flink's Status.JVM.* become Status.Go.*): memory in bytes,
// GarbageCollector.Time and LastPauseMs in milliseconds of
// stop-the-world pauses, CPU.Time in nanoseconds and CPU.Load as the
// share of one core (1 = a whole core) over the last sampling interval.
func ProcessValues(p *rpcpb.ProcessMetrics) []Value {
	if p == nil {
		return nil
	}
	return []Value{
		{ID: "Status.Go.Memory.Heap.Used", Value: float64(p.HeapUsed)},
		{ID: "Status.Go.Memory.Heap.Committed", Value: float64(p.HeapCommitted)},
		{ID: "Status.Go.Memory.Total", Value: float64(p.MemoryTotal)},
		{ID: "Status.Go.Goroutines", Value: float64(p.Goroutines)},
		{ID: "Status.Go.Threads.Count", Value: float64(p.Threads)},
		{ID: "Status.Go.GarbageCollector.Count", Value: float64(p.GcCount), Counter: true},
		{ID: "Status.Go.GarbageCollector.Time", Value: float64(p.GcPauseTotalNs) / 1e6, Counter: true},
		{ID: "Status.Go.GarbageCollector.LastPauseMs", Value: float64(p.GcLastPauseNs) / 1e6},
		{ID: "Status.Process.CPU.Time", Value: float64(p.CpuTimeNs), Counter: true},
		{ID: "Status.Process.CPU.Load", Value: p.CpuLoad},
	}
}
