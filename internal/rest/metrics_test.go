package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/metrics"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rest/resttest"
)

// metricsFake is the fake Backend with metrics: vertex v1 of jobA has
// three subtasks, back-pressured 50, 300 and 800 ms per second.
type metricsFake struct {
	*resttest.Fake
}

func (metricsFake) JobManagerMetrics(context.Context) ([]metrics.Value, error) {
	return []metrics.Value{{ID: "taskSlotsTotal", Value: 4}, {ID: "Status.Go.Goroutines", Value: 12}}, nil
}

func (metricsFake) TaskManagerMetrics(_ context.Context, id string) ([]metrics.Value, error) {
	if id != "tm-1" {
		return nil, fmt.Errorf("unknown taskmanager %q: %w", id, rest.ErrNotFound)
	}
	return []metrics.Value{{ID: "Status.Go.Memory.Heap.Used", Value: 1 << 20}}, nil
}

func (f metricsFake) JobMetrics(ctx context.Context, job string) ([]metrics.Value, error) {
	if _, err := f.Job(ctx, job); err != nil {
		return nil, err
	}
	return []metrics.Value{{ID: "uptime", Value: 5}, {ID: "numRestarts", Value: 0}}, nil
}

func (f metricsFake) VertexMetrics(ctx context.Context, job, vid string) (map[int][]metrics.Value, int64, error) {
	if _, err := f.Job(ctx, job); err != nil {
		return nil, 0, err
	}
	if vid != "v1" {
		return nil, 0, fmt.Errorf("job %s has no vertex %q: %w", job, vid, rest.ErrNotFound)
	}
	out := map[int][]metrics.Value{}
	for i, bp := range []float64{50, 300, 800} {
		out[i] = []metrics.Value{
			{ID: "numRecordsIn", Value: float64(10 * (i + 1))},
			{ID: "backPressuredTimeMsPerSecond", Value: bp},
			{ID: "idleTimeMsPerSecond", Value: 100},
			{ID: "busyTimeMsPerSecond", Value: 900 - bp},
			{ID: "Map.numRecordsOut", Value: 1.5},
		}
	}
	return out, 1234, nil
}

var _ rest.MetricsBackend = metricsFake{}

func TestMetricRoutes(t *testing.T) {
	h := rest.NewHandler(metricsFake{fixture(t)}, rest.Options{Logger: quietLogger()})
	cases := []struct {
		name, path string
		wantStatus int
		want       string // the JSON answer, compacted
	}{
		{name: "jobmanager ids", path: "/v1/jobmanager/metrics", wantStatus: 200,
			want: `[{"id":"taskSlotsTotal"},{"id":"Status.Go.Goroutines"}]`},
		{name: "jobmanager get", path: "/v1/jobmanager/metrics?get=Status.Go.Goroutines,unknown", wantStatus: 200,
			want: `[{"id":"Status.Go.Goroutines","value":"12"}]`},
		{name: "taskmanager get", path: "/v1/taskmanagers/tm-1/metrics?get=Status.Go.Memory.Heap.Used", wantStatus: 200,
			want: `[{"id":"Status.Go.Memory.Heap.Used","value":"1048576"}]`},
		{name: "unknown taskmanager", path: "/v1/taskmanagers/tm-9/metrics", wantStatus: 404},
		{name: "job get", path: "/v1/jobs/" + jobA + "/metrics?get=uptime&get=numRestarts", wantStatus: 200,
			want: `[{"id":"uptime","value":"5"},{"id":"numRestarts","value":"0"}]`},
		{name: "unknown job", path: "/v1/jobs/" + strings.Repeat("0", 32) + "/metrics", wantStatus: 404},
		{name: "vertex get", path: "/v1/jobs/" + jobA + "/vertices/v1/metrics?get=1.numRecordsIn,2.Map.numRecordsOut", wantStatus: 200,
			want: `[{"id":"1.numRecordsIn","value":"20"},{"id":"2.Map.numRecordsOut","value":"1.5"}]`},
		{name: "unknown vertex", path: "/v1/jobs/" + jobA + "/vertices/v9/metrics", wantStatus: 404},
		{name: "subtask get", path: "/v1/jobs/" + jobA + "/vertices/v1/subtasks/2/metrics?get=numRecordsIn", wantStatus: 200,
			want: `[{"id":"numRecordsIn","value":"30"}]`},
		{name: "subtask missing", path: "/v1/jobs/" + jobA + "/vertices/v1/subtasks/7/metrics", wantStatus: 404},
		{name: "subtask bad", path: "/v1/jobs/" + jobA + "/vertices/v1/subtasks/x/metrics", wantStatus: 400},
		{name: "aggregated ids", path: "/v1/jobs/" + jobA + "/vertices/v1/subtasks/metrics", wantStatus: 200,
			want: `[{"id":"Map.numRecordsOut"},{"id":"backPressuredTimeMsPerSecond"},{"id":"busyTimeMsPerSecond"},{"id":"idleTimeMsPerSecond"},{"id":"numRecordsIn"}]`},
		{name: "aggregated all", path: "/v1/jobs/" + jobA + "/vertices/v1/subtasks/metrics?get=numRecordsIn", wantStatus: 200,
			want: `[{"id":"numRecordsIn","min":10,"max":30,"avg":20,"sum":60}]`},
		{name: "aggregated some subtasks", path: "/v1/jobs/" + jobA + "/vertices/v1/subtasks/metrics?get=numRecordsIn&agg=sum,max&subtasks=0,2", wantStatus: 200,
			want: `[{"id":"numRecordsIn","max":30,"sum":40}]`},
		{name: "aggregated range", path: "/v1/jobs/" + jobA + "/vertices/v1/subtasks/metrics?get=numRecordsIn&agg=sum&subtasks=1-2", wantStatus: 200,
			want: `[{"id":"numRecordsIn","sum":50}]`},
		{name: "bad agg", path: "/v1/jobs/" + jobA + "/vertices/v1/subtasks/metrics?get=numRecordsIn&agg=median", wantStatus: 400},
		{name: "bad subtasks", path: "/v1/jobs/" + jobA + "/vertices/v1/subtasks/metrics?subtasks=2-1", wantStatus: 400},
		{name: "backpressure", path: "/v1/jobs/" + jobA + "/vertices/v1/backpressure", wantStatus: 200,
			want: `{"status":"ok","backpressure-level":"high","end-timestamp":1234,"subtasks":[` +
				`{"subtask":0,"backpressure-level":"ok","ratio":0.05,"idleRatio":0.1,"busyRatio":0.85},` +
				`{"subtask":1,"backpressure-level":"low","ratio":0.3,"idleRatio":0.1,"busyRatio":0.6},` +
				`{"subtask":2,"backpressure-level":"high","ratio":0.8,"idleRatio":0.1,"busyRatio":0.1}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := do(h, request{method: "GET", path: tc.path})
			if w.Code != tc.wantStatus {
				t.Fatalf("GET %s: status %d, want %d: %s", tc.path, w.Code, tc.wantStatus, w.Body)
			}
			if tc.wantStatus != 200 {
				checkError(t, w)
				return
			}
			if got := strings.TrimSpace(w.Body.String()); got != tc.want {
				t.Errorf("GET %s =\n%s\nwant\n%s", tc.path, got, tc.want)
			}
		})
	}
}

// TestBackPressureLevel checks Flink's thresholds at their edges.
func TestBackPressureLevel(t *testing.T) {
	for _, tc := range []struct {
		ratio float64
		want  string
	}{{0, "ok"}, {0.10, "ok"}, {0.1001, "low"}, {0.5, "low"}, {0.5001, "high"}, {1, "high"}} {
		if got := rest.BackPressureLevel(tc.ratio); got != tc.want {
			t.Errorf("BackPressureLevel(%v) = %q, want %q", tc.ratio, got, tc.want)
		}
	}
	if bp := rest.BackPressure(nil, 0); bp.Status != "deprecated" || bp.BackpressureLevel != "" {
		t.Errorf("no figures: %+v, want status deprecated and no level", bp)
	}
}

func FuzzParseSubtasks(f *testing.F) {
	for _, s := range []string{"0", "0-3", "1,3-5,7", "", "-", "3-1", "99999999999", " 2 , 4-4"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, i int) {
		in, err := rest.ParseSubtasks(s)
		if err != nil {
			return
		}
		in(i) // any index may be asked
		// Every listed index is in.
		for _, part := range strings.Split(s, ",") {
			lo, _, _ := strings.Cut(strings.TrimSpace(part), "-")
			var n int
			if _, err := fmt.Sscan(lo, &n); err == nil && !in(n) {
				t.Fatalf("ParseSubtasks(%q) leaves out %d", s, n)
			}
		}
	})
}

// FuzzMetricQueries sends arbitrary queries to the metric routes: the
// answer is never a 5xx, and a 200 is a JSON array (or object, for back
// pressure).
func FuzzMetricQueries(f *testing.F) {
	routes := []string{"/v1/jobmanager/metrics", "/v1/taskmanagers/tm-1/metrics", "/v1/jobs/" + jobA + "/metrics",
		"/v1/jobs/" + jobA + "/vertices/v1/metrics", "/v1/jobs/" + jobA + "/vertices/v1/subtasks/metrics",
		"/v1/jobs/" + jobA + "/vertices/v1/subtasks/1/metrics", "/v1/jobs/" + jobA + "/vertices/v1/backpressure"}
	f.Add(uint8(4), "get=numRecordsIn&agg=min,sum&subtasks=0-1")
	f.Add(uint8(3), "get=0.numRecordsIn,,1.x")
	f.Add(uint8(4), "agg=&subtasks=,")
	f.Add(uint8(0), "get")
	f.Fuzz(func(t *testing.T, route uint8, query string) {
		fake := metricsFake{fixture(t)}
		h := rest.NewHandler(fake, rest.Options{Logger: quietLogger()})
		u, err := url.ParseRequestURI(routes[int(route)%len(routes)] + "?" + query)
		if err != nil {
			return
		}
		r, err := http.NewRequest("GET", "http://jobmanager"+u.RequestURI(), nil)
		if err != nil {
			return
		}
		r.RequestURI = u.RequestURI()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("GET %s: %d %s", u.RequestURI(), w.Code, w.Body)
		}
		if w.Code == http.StatusOK {
			var v any
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Fatalf("GET %s: not JSON: %v", u.RequestURI(), err)
			}
		}
	})
}
