package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	v1 "github.com/spate-dev/spate/api/v1"
)

// scrape reads a /metrics endpoint with Prometheus' text parser.
func scrape(addr string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// promValues returns the values of family name whose labels include want,
// summed over the scrapes.
func promValues(scrapes []map[string]*dto.MetricFamily, name string, want map[string]string) (sum float64, n int) {
	for _, fams := range scrapes {
		f, ok := fams[name]
		if !ok {
			continue
		}
	metric:
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metric
				}
			}
			switch {
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			}
			n++
		}
	}
	return sum, n
}

// restAgg returns an aggregate of a vertex's metric over its subtasks.
func restAgg(t *testing.T, c *cluster, job, vid, id, agg string) (float64, bool) {
	t.Helper()
	var ms []v1.AggregatedMetric
	path := fmt.Sprintf("/v1/jobs/%s/vertices/%s/subtasks/metrics?get=%s&agg=%s", job, vid, url.QueryEscape(id), agg)
	if err := c.get(t, path, &ms); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if len(ms) != 1 {
		return 0, false
	}
	var p *float64
	switch agg {
	case "min":
		p = ms[0].Min
	case "max":
		p = ms[0].Max
	case "sum":
		p = ms[0].Sum
	case "avg":
		p = ms[0].Avg
	}
	if p == nil {
		t.Fatalf("GET %s: no %s in %+v", path, agg, ms[0])
	}
	return *p, true
}

var promAddrLog = regexp.MustCompile(`prometheus=(\S+)`)

// TestClusterMetrics runs a job whose sink is deliberately slow on two
// TaskManagers, and reads its figures back through the TaskManagers' and
// the JobManager's /metrics (Prometheus' text parser) and the REST metric
// endpoints: the upstream vertex is back-pressured and the sink busy;
// watermarks advance; once every record reached the sink, records and
// bytes out of the upstream vertex add up to those into the sink and to
// the records generated.
func TestClusterMetrics(t *testing.T) {
	// Small batches and queues, so that the upstream vertex soon waits
	// for the sink: 2 sinks at 1 ms per record take 4 s for them all.
	const records = 8000
	jobConf := []string{"-p", "2", "--detached", "-D", "execution.buffer.records=16", "-D", "execution.queue.batches=1", "-D", "taskmanager.network.memory.buffers-per-channel=1", "-D", "metrics.operator.enabled=true"}
	prom := []string{"-D", "metrics.reporter.prom.port=0"}
	c := startClusterTM(t, prom, prom, 1, 1)
	gate := filepath.Join(workerDir(t), "gate") // the workers, of their own uids, look for it
	out, id, err := c.run(t, jobConf, "slowsink", "-n", fmt.Sprint(records), "-gate", gate)
	if err != nil || id == "" {
		t.Fatalf("submit: %v\n%s", err, out)
	}
	d := c.waitStatus(t, id, v1.JobRunning)
	if len(d.Vertices) != 2 {
		t.Fatalf("job has %d vertices, want 2 (source and map, then the sink): %+v", len(d.Vertices), d.Vertices)
	}
	upV, sinkV := d.Vertices[0], d.Vertices[1]

	var tms v1.TaskManagers
	waitFor(t, 20*time.Second, "the TaskManagers to tell their /metrics address", func() bool {
		if err := c.get(t, "/v1/taskmanagers", &tms); err != nil {
			t.Fatal(err)
		}
		for _, tm := range tms.TaskManagers {
			if tm.PrometheusAddress == "" {
				return false
			}
		}
		return true
	})
	scrapeTMs := func() []map[string]*dto.MetricFamily {
		var all []map[string]*dto.MetricFamily
		for _, tm := range tms.TaskManagers {
			fams, err := scrape(tm.PrometheusAddress)
			if err != nil {
				t.Fatalf("scrape TaskManager %s: %v", tm.ID, err)
			}
			all = append(all, fams)
		}
		return all
	}
	task := func(v v1.JobVertex) map[string]string {
		return map[string]string{"job_id": id, "job_name": "slowsink", "task_name": v.Name, "task_id": v.ID}
	}
	const task_ = "spate_taskmanager_job_task_"

	// Back pressure upstream, a busy sink: through Prometheus...
	var upWM, sinkWM float64
	last := ""
	defer func() {
		if t.Failed() {
			t.Logf("last /metrics reading: %s", last)
		}
	}()
	waitFor(t, 30*time.Second, "the upstream vertex back-pressured and the sink busy on /metrics", func() bool {
		s := scrapeTMs()
		bp, n := promValues(s, task_+"backPressuredTimeMsPerSecond", task(upV))
		busy, m := promValues(s, task_+"busyTimeMsPerSecond", task(sinkV))
		upWM, _ = promValues(s, task_+"currentOutputWatermark", task(upV))
		sinkWM, _ = promValues(s, task_+"currentInputWatermark", task(sinkV))
		last = fmt.Sprintf("back-pressured %v ms/s over %d upstream subtasks, busy %v ms/s over %d sink subtasks", bp, n, busy, m)
		return n == 2 && m == 2 && bp/2 > 500 && busy/2 > 500
	})
	// ... and through REST, with Flink's grading.
	waitFor(t, 30*time.Second, "the upstream vertex back-pressured and the sink busy on REST", func() bool {
		bp, ok1 := restAgg(t, c, id, upV.ID, "backPressuredTimeMsPerSecond", "min")
		busy, ok2 := restAgg(t, c, id, sinkV.ID, "busyTimeMsPerSecond", "min")
		return ok1 && ok2 && bp > 500 && busy > 500
	})
	var bpInfo v1.JobVertexBackPressure
	waitFor(t, 30*time.Second, "GET …/backpressure to grade the upstream vertex high", func() bool {
		if err := c.get(t, "/v1/jobs/"+id+"/vertices/"+upV.ID+"/backpressure", &bpInfo); err != nil {
			t.Fatal(err)
		}
		return bpInfo.Status == "ok" && bpInfo.BackpressureLevel == v1.BackPressureHigh && len(bpInfo.Subtasks) == 2
	})
	var sinkBP v1.JobVertexBackPressure
	if err := c.get(t, "/v1/jobs/"+id+"/vertices/"+sinkV.ID+"/backpressure", &sinkBP); err != nil {
		t.Fatal(err)
	}
	if sinkBP.BackpressureLevel != v1.BackPressureOK {
		t.Errorf("the sink is graded %q, want ok (it has nothing downstream): %+v", sinkBP.BackpressureLevel, sinkBP)
	}

	// Watermarks advance, on both surfaces.
	if upWM <= 0 || sinkWM <= 0 {
		t.Fatalf("watermarks on /metrics: upstream out %v, sink in %v; want event times", upWM, sinkWM)
	}
	restWM := func() float64 {
		var ms []v1.Metric
		if err := c.get(t, "/v1/jobs/"+id+"/vertices/"+sinkV.ID+"/metrics?get=0.currentInputWatermark", &ms); err != nil || len(ms) != 1 {
			t.Fatalf("GET vertex metrics: %v %+v", err, ms)
		}
		var v float64
		fmt.Sscan(ms[0].Value, &v)
		return v
	}
	firstREST := restWM()
	waitFor(t, 30*time.Second, "the watermarks to advance", func() bool {
		s := scrapeTMs()
		u, _ := promValues(s, task_+"currentOutputWatermark", task(upV))
		k, _ := promValues(s, task_+"currentInputWatermark", task(sinkV))
		return u > upWM && k > sinkWM && restWM() > firstREST
	})

	// The JobManager: job and cluster figures.
	m := promAddrLog.FindStringSubmatch(c.jm.stderr())
	if m == nil {
		t.Fatalf("the JobManager's log does not tell its /metrics address:\n%s", c.jm.stderr())
	}
	jmFams, err := scrape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if up, n := promValues([]map[string]*dto.MetricFamily{jmFams}, "spate_jobmanager_job_uptime", map[string]string{"job_id": id}); n != 1 || up <= 0 {
		t.Errorf("spate_jobmanager_job_uptime = %v (%d series), want one above 0", up, n)
	}
	if _, n := promValues([]map[string]*dto.MetricFamily{jmFams}, "spate_jobmanager_job_numberOfCompletedCheckpoints", map[string]string{"job_id": id}); n != 1 {
		t.Errorf("no spate_jobmanager_job_numberOfCompletedCheckpoints for the job")
	}
	if tmsN, _ := promValues([]map[string]*dto.MetricFamily{jmFams}, "spate_jobmanager_numRegisteredTaskManagers", nil); tmsN != 2 {
		t.Errorf("spate_jobmanager_numRegisteredTaskManagers = %v, want 2", tmsN)
	}
	var jobMs []v1.Metric
	if err := c.get(t, "/v1/jobs/"+id+"/metrics?get=uptime,numRestarts", &jobMs); err != nil || len(jobMs) != 2 || jobMs[0].Value == "0" || jobMs[1].Value != "0" {
		t.Errorf("GET /v1/jobs/%s/metrics = %+v, %v; want uptime above 0 and no restarts", id, jobMs, err)
	}
	var tmMs []v1.Metric
	if err := c.get(t, "/v1/taskmanagers/"+tms.TaskManagers[0].ID+"/metrics?get=Status.Go.Memory.Heap.Used,Status.Workers.Count,Status.Workers.Go.Goroutines", &tmMs); err != nil || len(tmMs) != 3 || tmMs[0].Value == "0" || tmMs[1].Value != "1" {
		t.Errorf("GET /v1/taskmanagers/…/metrics = %+v, %v; want a heap and one worker", tmMs, err)
	}
	if g, n := promValues(scrapeTMs(), "spate_taskmanager_worker_Status_Go_Goroutines", map[string]string{"job_id": id}); n != 2 || g <= 0 {
		t.Errorf("spate_taskmanager_worker_Status_Go_Goroutines = %v (%d series), want two workers' goroutines", g, n)
	}

	// Every record reached the sink: the counts add up, on both surfaces.
	waitFor(t, 60*time.Second, "every record to reach the sink", func() bool {
		in, ok := restAgg(t, c, id, sinkV.ID, "numRecordsIn", "sum")
		return ok && in == records
	})
	if outN, _ := restAgg(t, c, id, upV.ID, "numRecordsOut", "sum"); outN != records {
		t.Errorf("REST: upstream numRecordsOut %v, want %d", outN, records)
	}
	bytesOut, _ := restAgg(t, c, id, upV.ID, "numBytesOut", "sum")
	bytesIn, _ := restAgg(t, c, id, sinkV.ID, "numBytesIn", "sum")
	if bytesOut <= 0 || bytesOut != bytesIn {
		t.Errorf("REST: bytes out of upstream %v, into the sink %v; want equal, above 0 (records cross between the workers)", bytesOut, bytesIn)
	}
	waitFor(t, 10*time.Second, "/metrics to show every record in the sink", func() bool {
		in, _ := promValues(scrapeTMs(), task_+"numRecordsIn", task(sinkV))
		return in == records
	})
	s := scrapeTMs()
	if outN, _ := promValues(s, task_+"numRecordsOut", task(upV)); outN != records {
		t.Errorf("/metrics: upstream numRecordsOut %v, want %d", outN, records)
	}
	if bo, _ := promValues(s, task_+"numBytesOut", task(upV)); bo != bytesOut {
		t.Errorf("/metrics: upstream numBytesOut %v, REST says %v", bo, bytesOut)
	}

	// Operator by operator: the generator emitted every record and has
	// none pending, the map passed them all on, the sink took them all.
	op := func(v v1.JobVertex, name string) map[string]string {
		l := task(v)
		l["operator_name"] = name
		return l
	}
	const op_ = "spate_taskmanager_job_task_operator_"
	for _, tc := range []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{op_ + "numRecordsOut", op(upV, "gen"), records},
		{op_ + "pendingRecords", op(upV, "gen"), 0},
		{op_ + "numRecordsIn", op(upV, "Upstream"), records},
		{op_ + "numRecordsOut", op(upV, "Upstream"), records},
		{op_ + "numRecordsIn", op(sinkV, "SlowSink"), records},
	} {
		if got, n := promValues(s, tc.metric, tc.labels); n != 2 || got != tc.want {
			t.Errorf("/metrics: %s%v = %v over %d subtasks, want %v over 2", tc.metric, tc.labels, got, n, tc.want)
		}
	}
	if got, _ := restAgg(t, c, id, upV.ID, "Upstream.numRecordsOut", "sum"); got != records {
		t.Errorf("REST: Upstream.numRecordsOut %v, want %d", got, records)
	}
	if got, _ := restAgg(t, c, id, upV.ID, "gen.currentOutputWatermark", "min"); got <= 0 {
		t.Errorf("REST: gen.currentOutputWatermark %v, want an event time", got)
	}

	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c.waitStatus(t, id, v1.JobFinished)
}
