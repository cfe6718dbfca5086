package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// Prefix starts every Prometheus metric name, as flink_ starts Flink's.
const Prefix = "spate_"

// Sample is one Prometheus sample: a full metric name, its labels as
// name/value pairs, and its value.
type Sample struct {
	Name    string
	Labels  []string
	Value   float64
	Counter bool
}

// PromName turns a scope and a metric id into a Prometheus name as Flink's
// reporter does: the parts joined by underscores, every character outside
// [a-zA-Z0-9_:] made an underscore.
func PromName(scope, id string) string {
	return Prefix + sanitize(scope+"_"+id)
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// Collector is a prometheus.Collector of the samples a function returns
// at each scrape. Samples of one name must have the same label names.
type Collector struct {
	Samples func() []Sample
}

var _ prometheus.Collector = Collector{}

// Describe sends nothing: the metrics come and go with jobs, so the
// collector is unchecked.
func (Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends the current samples.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	descs := map[string]*prometheus.Desc{}
	for _, s := range c.Samples() {
		names := make([]string, 0, len(s.Labels)/2)
		values := make([]string, 0, len(s.Labels)/2)
		for i := 0; i+1 < len(s.Labels); i += 2 {
			names = append(names, s.Labels[i])
			values = append(values, s.Labels[i+1])
		}
		key := s.Name + "\x00" + strings.Join(names, ",")
		d, ok := descs[key]
		if !ok {
			d = prometheus.NewDesc(s.Name, "Spate metric "+s.Name, names, nil)
			descs[key] = d
		}
		typ := prometheus.GaugeValue
		if s.Counter {
			typ = prometheus.CounterValue
		}
		m, err := prometheus.NewConstMetric(d, typ, s.Value, values...)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(d, err)
			continue
		}
		ch <- m
	}
}

// ProcessSamples are a process's Go runtime figures in scope (taskmanager,
// jobmanager) with labels.
func ProcessSamples(scope string, p *rpcpb.ProcessMetrics, labels ...string) []Sample {
	var out []Sample
	for _, v := range ProcessValues(p) {
		out = append(out, Sample{Name: PromName(scope, v.ID), Labels: labels, Value: v.Value, Counter: v.Counter})
	}
	return out
}

// TaskManagerSamples are the samples a TaskManager serves: its process's
// figures (spate_taskmanager_Status_…), each worker's
// (spate_taskmanager_worker_Status_…), each subtask's
// (spate_taskmanager_job_task_…) and each operator's
// (spate_taskmanager_job_task_operator_…), labelled as Flink's reporter
// labels them.
func TaskManagerSamples(m *rpcpb.TaskManagerMetrics, host string) []Sample {
	tm := m.TaskmanagerId
	out := ProcessSamples("taskmanager", m.Process, "host", host, "tm_id", tm)
	for _, w := range m.Workers {
		out = append(out, ProcessSamples("taskmanager_worker", w.Process,
			"host", host, "tm_id", tm, "job_id", w.JobId, "job_name", w.JobName, "worker_id", w.WorkerId)...)
		for _, s := range w.Subtasks {
			task := []string{"host", host, "tm_id", tm, "job_id", w.JobId, "job_name", w.JobName,
				"task_id", s.VertexId, "task_name", s.TaskName, "subtask_index", strconv.Itoa(int(s.Subtask))}
			for _, v := range TaskValues(s, w.SampledUnixMs) {
				out = append(out, Sample{Name: PromName("taskmanager_job_task", v.ID), Labels: task, Value: v.Value, Counter: v.Counter})
			}
			for _, op := range s.Operators {
				labels := append(append([]string{}, task...), "operator_id", strconv.Itoa(int(op.Id)), "operator_name", op.Name)
				for _, v := range OperatorValues(op, w.SampledUnixMs) {
					out = append(out, Sample{Name: PromName("taskmanager_job_task_operator", v.ID), Labels: labels, Value: v.Value, Counter: v.Counter})
				}
			}
		}
	}
	return out
}

// Serve serves reg's metrics at /metrics on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, reg *prometheus.Registry, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("metrics: serving /metrics", "err", fmt.Sprint(v...))
}
