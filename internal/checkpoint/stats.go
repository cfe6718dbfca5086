package checkpoint

import (
	"slices"
	"time"
)

// Checkpoint statuses in the statistics, as Flink's REST API names them.
const (
	StatusInProgress = "IN_PROGRESS"
	StatusCompleted  = "COMPLETED"
	StatusFailed     = "FAILED"
)

// historySize is how many recent checkpoints the statistics keep, as
// Flink's web.checkpoints.history (10).
const historySize = 10

// Stat is the statistics of one checkpoint.
type Stat struct {
	ID                     ID
	Status                 string
	TriggerTime, LatestAck time.Time
	EndTime                time.Time
	StateSize              int64
	NumSubtasks            int
	NumAcknowledged        int
	SyncMax, AsyncMax      time.Duration
	AlignmentMax           time.Duration
	Path, FailureMessage   string
	Discarded              bool
	Kind                   Kind
}

// Restored is the checkpoint the job last restored.
type Restored struct {
	ID          ID
	RestoreTime time.Time
	Path        string
}

// Stats are a job's checkpoint statistics, shaped as Flink's
// /jobs/:jobid/checkpoints.
type Stats struct {
	Counts struct {
		Restored, Total, InProgress, Completed, Failed int
	}
	Latest struct {
		Completed, Failed, Savepoint *Stat
		Restored                     *Restored
	}
	// History holds the recent checkpoints, newest first.
	History []*Stat
	// completedSizes and completedDurations feed the summary.
	completedSizes     []int64
	completedDurations []time.Duration
}

// Summary is min/max/average of a quantity over completed checkpoints.
type Summary struct {
	Min, Max, Avg int64
}

// SizeSummary and DurationSummary (milliseconds) over the completed
// checkpoints, as Flink's summary.
func (s *Stats) SizeSummary() Summary { return summarize(s.completedSizes) }

// DurationSummary is the end-to-end durations' summary, in milliseconds.
func (s *Stats) DurationSummary() Summary {
	ms := make([]int64, len(s.completedDurations))
	for i, d := range s.completedDurations {
		ms[i] = d.Milliseconds()
	}
	return summarize(ms)
}

func summarize(v []int64) Summary {
	if len(v) == 0 {
		return Summary{}
	}
	out := Summary{Min: slices.Min(v), Max: slices.Max(v)}
	var sum int64
	for _, x := range v {
		sum += x
	}
	out.Avg = sum / int64(len(v))
	return out
}

func (s *Stats) pushHistory(st *Stat) {
	s.History = append([]*Stat{st}, s.History...)
	if len(s.History) > historySize {
		s.History = s.History[:historySize]
	}
}

// summaryWindow bounds the completed checkpoints the summary covers.
const summaryWindow = 1000

func (s *Stats) addCompleted(st *Stat) {
	s.completedSizes = append(s.completedSizes, st.StateSize)
	s.completedDurations = append(s.completedDurations, st.EndTime.Sub(st.TriggerTime))
	if len(s.completedSizes) > summaryWindow {
		s.completedSizes = s.completedSizes[1:]
		s.completedDurations = s.completedDurations[1:]
	}
}

func (s *Stats) discarded(id ID) {
	for _, h := range s.History {
		if h.ID == id {
			h.Discarded = true
		}
	}
}

// Stats returns a copy of the coordinator's statistics.
func (c *Coordinator) Stats() Stats {
	s := c.stats
	s.History = nil
	for _, h := range c.stats.History {
		x := *h
		s.History = append(s.History, &x)
	}
	if l := c.stats.Latest.Completed; l != nil {
		x := *l
		s.Latest.Completed = &x
	}
	if l := c.stats.Latest.Failed; l != nil {
		x := *l
		s.Latest.Failed = &x
	}
	if l := c.stats.Latest.Restored; l != nil {
		x := *l
		s.Latest.Restored = &x
	}
	s.completedSizes = slices.Clone(c.stats.completedSizes)
	s.completedDurations = slices.Clone(c.stats.completedDurations)
	return s
}
