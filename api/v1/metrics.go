package v1

// Metric is one entry of a metrics answer, as Flink's: GET …/metrics lists
// the available ids (Value empty); GET …/metrics?get=a,b answers the
// values of those that exist, as strings.
type Metric struct {
	ID    string `json:"id"`
	Value string `json:"value,omitempty"`
}

// AggregatedMetric is one entry of GET
// /v1/jobs/{id}/vertices/{vid}/subtasks/metrics?get=…&agg=…: a metric
// aggregated over the vertex's subtasks, each aggregate present if asked
// for (all by default).
type AggregatedMetric struct {
	ID   string   `json:"id"`
	Min  *float64 `json:"min,omitempty"`
	Max  *float64 `json:"max,omitempty"`
	Avg  *float64 `json:"avg,omitempty"`
	Sum  *float64 `json:"sum,omitempty"`
	Skew *float64 `json:"skew,omitempty"`
}

// Back-pressure levels, as Flink grades a back-pressured time ratio:
// ok up to 0.10, low up to 0.5, high above.
const (
	BackPressureOK   = "ok"
	BackPressureLow  = "low"
	BackPressureHigh = "high"
)

// JobVertexBackPressure is GET /v1/jobs/{id}/vertices/{vid}/backpressure,
// Flink's JobVertexBackPressureInfo: Status is "ok" when figures are
// there, "deprecated" while none have arrived yet.
type JobVertexBackPressure struct {
	Status            string                `json:"status"`
	BackpressureLevel string                `json:"backpressure-level,omitempty"`
	EndTimestamp      int64                 `json:"end-timestamp,omitempty"`
	Subtasks          []SubtaskBackPressure `json:"subtasks,omitempty"`
}

// SubtaskBackPressure is one subtask of a JobVertexBackPressure: the
// shares of the last second it spent back-pressured (Ratio), idle and
// busy.
type SubtaskBackPressure struct {
	Subtask           int     `json:"subtask"`
	BackpressureLevel string  `json:"backpressure-level"`
	Ratio             float64 `json:"ratio"`
	IdleRatio         float64 `json:"idleRatio"`
	BusyRatio         float64 `json:"busyRatio"`
}
