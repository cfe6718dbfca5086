package rest

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/metrics"
)

// MetricsBackend is a Backend that serves metrics, on Flink's routes:
//
//	GET /v1/jobmanager/metrics[?get=a,b]
//	GET /v1/taskmanagers/{id}/metrics[?get=a,b]
//	GET /v1/jobs/{id}/metrics[?get=a,b]
//	GET /v1/jobs/{id}/vertices/{vid}/metrics[?get=0.numRecordsIn,…]
//	GET /v1/jobs/{id}/vertices/{vid}/subtasks/metrics[?get=a,b&agg=min,max,avg,sum&subtasks=0-2,4]
//	GET /v1/jobs/{id}/vertices/{vid}/subtasks/{index}/metrics[?get=a,b]
//	GET /v1/jobs/{id}/vertices/{vid}/backpressure
//
// Without get, a route lists the ids it has ([{"id": …}]); with get, it
// answers the values of the ids asked for that exist
// ([{"id": …, "value": "…"}]). A vertex's ids are its subtasks' prefixed
// with the subtask index ("0.numRecordsIn", "0.Map.numRecordsOut").
type MetricsBackend interface {
	JobManagerMetrics(ctx context.Context) ([]metrics.Value, error)
	TaskManagerMetrics(ctx context.Context, id string) ([]metrics.Value, error)
	JobMetrics(ctx context.Context, job string) ([]metrics.Value, error)
	// VertexMetrics returns the latest figures of each subtask of the
	// job's vertex vid (its id in GET /v1/jobs/{id}) that has reported
	// some, by subtask index, and when the newest were sampled (Unix ms).
	VertexMetrics(ctx context.Context, job, vid string) (map[int][]metrics.Value, int64, error)
}

// handleMetrics adds the metric routes if b serves them.
func (h *handler) handleMetrics(b Backend) {
	mb, ok := b.(MetricsBackend)
	if !ok {
		return
	}
	h.handle("GET /v1/jobmanager/metrics", func(w http.ResponseWriter, r *http.Request) error {
		vs, err := mb.JobManagerMetrics(r.Context())
		if err != nil {
			return backendError(err, nil)
		}
		return answerMetrics(w, r, vs)
	})
	h.handle("GET /v1/taskmanagers/{id}/metrics", func(w http.ResponseWriter, r *http.Request) error {
		vs, err := mb.TaskManagerMetrics(r.Context(), r.PathValue("id"))
		if err != nil {
			return backendError(err, map[int]string{http.StatusNotFound: "list TaskManagers with GET /v1/taskmanagers"})
		}
		return answerMetrics(w, r, vs)
	})
	h.handle("GET /v1/jobs/{id}/metrics", func(w http.ResponseWriter, r *http.Request) error {
		id, err := jobID(r)
		if err != nil {
			return err
		}
		vs, err := mb.JobMetrics(r.Context(), id)
		if err != nil {
			return jobError(err, id)
		}
		return answerMetrics(w, r, vs)
	})
	vertex := func(r *http.Request) (map[int][]metrics.Value, int64, error) {
		id, err := jobID(r)
		if err != nil {
			return nil, 0, err
		}
		subs, at, err := mb.VertexMetrics(r.Context(), id, r.PathValue("vid"))
		if err != nil {
			return nil, 0, backendError(err, map[int]string{http.StatusNotFound: "list a job's vertices with GET /v1/jobs/" + id})
		}
		return subs, at, nil
	}
	h.handle("GET /v1/jobs/{id}/vertices/{vid}/metrics", func(w http.ResponseWriter, r *http.Request) error {
		subs, _, err := vertex(r)
		if err != nil {
			return err
		}
		var vs []metrics.Value
		for _, i := range slices.Sorted(maps.Keys(subs)) {
			for _, v := range subs[i] {
				v.ID = strconv.Itoa(i) + "." + v.ID
				vs = append(vs, v)
			}
		}
		return answerMetrics(w, r, vs)
	})
	h.handle("GET /v1/jobs/{id}/vertices/{vid}/subtasks/{index}/metrics", func(w http.ResponseWriter, r *http.Request) error {
		subs, _, err := vertex(r)
		if err != nil {
			return err
		}
		i, err := strconv.Atoi(r.PathValue("index"))
		if err != nil || i < 0 {
			return errorf(http.StatusBadRequest, "invalid subtask index %q: want a number from 0", r.PathValue("index"))
		}
		vs, ok := subs[i]
		if !ok {
			return errorf(http.StatusNotFound, "subtask %d of vertex %s has no metrics: it does not exist or has not reported yet", i, r.PathValue("vid"))
		}
		return answerMetrics(w, r, vs)
	})
	h.handle("GET /v1/jobs/{id}/vertices/{vid}/subtasks/metrics", func(w http.ResponseWriter, r *http.Request) error {
		subs, _, err := vertex(r)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		aggs, err := ParseAggregates(q.Get("agg"))
		if err != nil {
			return errorf(http.StatusBadRequest, "agg=%q: %v", q.Get("agg"), err)
		}
		if s := q.Get("subtasks"); s != "" {
			want, err := ParseSubtasks(s)
			if err != nil {
				return errorf(http.StatusBadRequest, "subtasks=%q: %v", s, err)
			}
			for i := range subs {
				if !want(i) {
					delete(subs, i)
				}
			}
		}
		byID := map[string][]float64{}
		for _, i := range slices.Sorted(maps.Keys(subs)) {
			for _, v := range subs[i] {
				byID[v.ID] = append(byID[v.ID], v.Value)
			}
		}
		get := getList(r)
		if get == nil {
			out := []v1.Metric{}
			for _, id := range slices.Sorted(maps.Keys(byID)) {
				out = append(out, v1.Metric{ID: id})
			}
			writeJSON(w, http.StatusOK, out)
			return nil
		}
		out := []v1.AggregatedMetric{}
		for _, id := range get {
			xs, ok := byID[id]
			if !ok {
				continue
			}
			out = append(out, aggregate(id, xs, aggs))
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
	h.handle("GET /v1/jobs/{id}/vertices/{vid}/backpressure", func(w http.ResponseWriter, r *http.Request) error {
		subs, at, err := vertex(r)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, BackPressure(subs, at))
		return nil
	})
}

// BackPressure grades a vertex's back pressure from its subtasks' figures
// as Flink does: each subtask by the share of the last second it was
// back-pressured, the vertex by its most back-pressured subtask.
func BackPressure(subs map[int][]metrics.Value, at int64) v1.JobVertexBackPressure {
	if len(subs) == 0 {
		return v1.JobVertexBackPressure{Status: "deprecated"}
	}
	out := v1.JobVertexBackPressure{Status: "ok", EndTimestamp: at}
	worst := 0.0
	for _, i := range slices.Sorted(maps.Keys(subs)) {
		var bp, idle, busy float64
		for _, v := range subs[i] {
			switch v.ID {
			case metrics.BackPressuredTimeMsPerSecond:
				bp = v.Value / 1000
			case metrics.IdleTimeMsPerSecond:
				idle = v.Value / 1000
			case metrics.BusyTimeMsPerSecond:
				busy = v.Value / 1000
			}
		}
		worst = max(worst, bp)
		out.Subtasks = append(out.Subtasks, v1.SubtaskBackPressure{
			Subtask: i, BackpressureLevel: BackPressureLevel(bp), Ratio: bp, IdleRatio: idle, BusyRatio: busy,
		})
	}
	out.BackpressureLevel = BackPressureLevel(worst)
	return out
}

// BackPressureLevel grades a back-pressured time ratio as Flink does.
func BackPressureLevel(ratio float64) string {
	switch {
	case ratio <= 0.10:
		return v1.BackPressureOK
	case ratio <= 0.5:
		return v1.BackPressureLow
	}
	return v1.BackPressureHigh
}

// getList is the ids of ?get=a,b (also repeated), nil without get.
func getList(r *http.Request) []string {
	q, ok := r.URL.Query()["get"]
	if !ok {
		return nil
	}
	ids := []string{}
	for _, g := range q {
		for _, id := range strings.Split(g, ",") {
			if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// answerMetrics answers the list of ids in vs, or with ?get= the values
// of those asked for.
func answerMetrics(w http.ResponseWriter, r *http.Request, vs []metrics.Value) error {
	out := []v1.Metric{}
	get := getList(r)
	if get == nil {
		for _, v := range vs {
			out = append(out, v1.Metric{ID: v.ID})
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	for _, id := range get {
		for _, v := range vs {
			if v.ID == id {
				out = append(out, v1.Metric{ID: id, Value: metrics.FormatValue(v.Value)})
				break
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Aggregates of GET …/subtasks/metrics?agg=.
const (
	aggMin = 1 << iota
	aggMax
	aggAvg
	aggSum
)

// ParseAggregates reads ?agg=min,max,avg,sum; empty means all.
func ParseAggregates(s string) (int, error) {
	if strings.TrimSpace(s) == "" {
		return aggMin | aggMax | aggAvg | aggSum, nil
	}
	var set int
	for _, a := range strings.Split(s, ",") {
		switch strings.TrimSpace(a) {
		case "min":
			set |= aggMin
		case "max":
			set |= aggMax
		case "avg":
			set |= aggAvg
		case "sum":
			set |= aggSum
		default:
			return 0, fmt.Errorf("unknown aggregate %q: want min, max, avg or sum, comma-separated", a)
		}
	}
	return set, nil
}

func aggregate(id string, xs []float64, aggs int) v1.AggregatedMetric {
	m := v1.AggregatedMetric{ID: id}
	lo, hi, sum := xs[0], xs[0], 0.0
	for _, x := range xs {
		lo, hi, sum = min(lo, x), max(hi, x), sum+x
	}
	avg := sum / float64(len(xs))
	if aggs&aggMin != 0 {
		m.Min = &lo
	}
	if aggs&aggMax != 0 {
		m.Max = &hi
	}
	if aggs&aggAvg != 0 {
		m.Avg = &avg
	}
	if aggs&aggSum != 0 {
		m.Sum = &sum
	}
	return m
}

// maxSubtaskIndex bounds the indexes ?subtasks= names (a job's
// parallelism is at most 32768).
const maxSubtaskIndex = 1 << 15

// ParseSubtasks reads ?subtasks=0,2-4 (indexes and inclusive ranges) into
// a membership test.
func ParseSubtasks(s string) (func(int) bool, error) {
	type span struct{ lo, hi int }
	var spans []span
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := subtaskIndex(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = subtaskIndex(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %q ends before it starts", part)
			}
		}
		spans = append(spans, span{a, b})
	}
	return func(i int) bool {
		for _, sp := range spans {
			if i >= sp.lo && i <= sp.hi {
				return true
			}
		}
		return false
	}, nil
}

func subtaskIndex(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxSubtaskIndex || s != strconv.Itoa(n) {
		return 0, fmt.Errorf("%q is not a subtask index: want indexes from 0 and ranges such as 0-3, comma-separated", s)
	}
	return n, nil
}
