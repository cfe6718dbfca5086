package jobmanager

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/metrics"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// JobStats are a job's restart and checkpoint figures, which the job
// master's fault tolerance (restart strategy, checkpoint coordinator)
// keeps; they appear as Flink's job metrics numRestarts,
// numberOfCompletedCheckpoints, numberOfFailedCheckpoints,
// lastCheckpointDuration (ms) and lastCheckpointSize (bytes).
type JobStats struct {
	Restarts               int64
	CompletedCheckpoints   int64
	FailedCheckpoints      int64
	LastCheckpointDuration time.Duration
	LastCheckpointSize     int64
}

// JobStatsSource tells a job's JobStats. The JobManager's own reads its
// jobs' failover and checkpoint cores; SetJobStats replaces it. It is
// called without the JobManager's mutex held, from REST requests and
// Prometheus scrapes, so it must be safe for concurrent use.
type JobStatsSource interface {
	JobStats(job JobID) JobStats
}

// noJobStats reports zeros: no restarts or checkpoints are known yet.
type noJobStats struct{}

func (noJobStats) JobStats(JobID) JobStats { return JobStats{} }

// jmMetrics is the JobManager's metric state: the TaskManagers' reports,
// its own process's figures and its Prometheus endpoint.
type jmMetrics struct {
	store *metrics.Store
	proc  metrics.ProcessSampler
	// promLn is the Prometheus listener, nil when the reporter is off.
	promLn net.Listener

	mu    sync.Mutex
	stats JobStatsSource
}

// newJMMetrics opens the Prometheus listener on host if prom is set.
func newJMMetrics(host string, prom *metrics.PortRange) (*jmMetrics, error) {
	m := &jmMetrics{store: metrics.NewStore(), stats: noJobStats{}}
	if prom != nil {
		ln, err := metrics.Listen(host, *prom)
		if err != nil {
			return nil, err
		}
		m.promLn = ln
	}
	return m, nil
}

// SetJobStats makes s the source of the jobs' restart and checkpoint
// figures.
func (jm *JobManager) SetJobStats(s JobStatsSource) {
	jm.metrics.mu.Lock()
	jm.metrics.stats = s
	jm.metrics.mu.Unlock()
}

func (jm *JobManager) jobStats(id JobID) JobStats {
	jm.metrics.mu.Lock()
	s := jm.metrics.stats
	jm.metrics.mu.Unlock()
	return s.JobStats(id)
}

// PrometheusAddr is the address of the JobManager's /metrics, empty when
// the reporter is off (metrics.reporters).
func (jm *JobManager) PrometheusAddr() string {
	if jm.metrics.promLn == nil {
		return ""
	}
	return jm.metrics.promLn.Addr().String()
}

// serveMetrics serves /metrics until ctx ends; Run starts it.
func (jm *JobManager) serveMetrics(ctx context.Context) {
	defer jm.wg.Done()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Collector{Samples: jm.promSamples})
	jm.log.Info("jobmanager: Prometheus metrics at http://"+jm.PrometheusAddr()+"/metrics", "prometheus", jm.PrometheusAddr())
	if err := metrics.Serve(ctx, jm.metrics.promLn, reg, jm.log); err != nil && ctx.Err() == nil {
		jm.log.Error("jobmanager: serving /metrics stopped", "err", err)
	}
}

// metricsServer serves MetricsReporter to TaskManagers.
type metricsServer struct {
	jm *JobManager
	rpcpb.UnimplementedMetricsReporterServer
}

// Report records a registered TaskManager's figures.
func (s metricsServer) Report(ctx context.Context, m *rpcpb.TaskManagerMetrics) (*rpcpb.MetricsReportResponse, error) {
	jm := s.jm
	jm.mu.Lock()
	tm, ok := jm.mu.tms[m.TaskmanagerId]
	if ok {
		tm.promAddr = m.PrometheusAddress
	}
	jm.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown taskmanager %q: register first", m.TaskmanagerId)
	}
	jm.metrics.store.Put(m)
	return &rpcpb.MetricsReportResponse{}, nil
}

var _ rest.MetricsBackend = (*JobManager)(nil)

// JobManagerMetrics are the JobManager's own figures.
func (jm *JobManager) JobManagerMetrics(ctx context.Context) ([]metrics.Value, error) {
	vs := metrics.ProcessValues(jm.metrics.proc.Sample())
	jm.mu.Lock()
	defer jm.mu.Unlock()
	return append(vs, jm.clusterValuesLocked()...), nil
}

func (jm *JobManager) clusterValuesLocked() []metrics.Value {
	running := 0
	for _, j := range jm.mu.active {
		if j.status == statusRunning {
			running++
		}
	}
	return []metrics.Value{
		{ID: metrics.NumRegisteredTaskManagers, Value: float64(len(jm.mu.tms))},
		{ID: metrics.NumRunningJobs, Value: float64(running)},
		{ID: metrics.TaskSlotsAvailable, Value: float64(jm.freeSlotsLocked())},
		{ID: metrics.TaskSlotsTotal, Value: float64(jm.totalSlotsLocked())},
	}
}

// TaskManagerMetrics are a TaskManager's figures: its own process's
// (Status.Go.…) and its workers' together (Status.Workers.…: their
// number, and the sums of their figures).
func (jm *JobManager) TaskManagerMetrics(ctx context.Context, id string) ([]metrics.Value, error) {
	jm.mu.Lock()
	_, ok := jm.mu.tms[id]
	jm.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unknown taskmanager %q: %w", id, rest.ErrNotFound)
	}
	m, ok := jm.metrics.store.TaskManager(id)
	if !ok {
		return []metrics.Value{}, nil
	}
	vs := metrics.ProcessValues(m.Process)
	sums := map[string]float64{}
	var order []string
	for _, w := range m.Workers {
		for _, v := range metrics.ProcessValues(w.Process) {
			if _, seen := sums[v.ID]; !seen {
				order = append(order, v.ID)
			}
			sums[v.ID] += v.Value
		}
	}
	vs = append(vs, metrics.Value{ID: "Status.Workers.Count", Value: float64(len(m.Workers))})
	for _, id := range order {
		vs = append(vs, metrics.Value{ID: "Status.Workers." + id[len("Status."):], Value: sums[id]})
	}
	return vs, nil
}

// JobMetrics are a job's own figures: uptime (ms since it runs; 0 before,
// -1 once ended, as Flink's), restarts and checkpoints.
func (jm *JobManager) JobMetrics(ctx context.Context, id string) ([]metrics.Value, error) {
	jm.mu.Lock()
	j, err := jm.jobLocked(id)
	if err != nil {
		jm.mu.Unlock()
		return nil, err
	}
	up := jm.uptimeLocked(j)
	jm.mu.Unlock()
	return jobValues(up, jm.jobStats(JobID(id))), nil
}

func (jm *JobManager) uptimeLocked(j *job) int64 {
	switch {
	case v1.TerminalJobStatus(j.status):
		return -1
	case j.status == statusRunning:
		return max(jm.clock.Now().UnixMilli()-j.timestamps[statusRunning], 0)
	}
	return 0
}

func jobValues(uptime int64, s JobStats) []metrics.Value {
	return []metrics.Value{
		{ID: metrics.Uptime, Value: float64(uptime)},
		{ID: metrics.NumRestarts, Value: float64(s.Restarts)},
		{ID: metrics.NumberOfCompletedCheckpoints, Value: float64(s.CompletedCheckpoints)},
		{ID: metrics.NumberOfFailedCheckpoints, Value: float64(s.FailedCheckpoints)},
		{ID: metrics.LastCheckpointDuration, Value: float64(s.LastCheckpointDuration.Milliseconds())},
		{ID: metrics.LastCheckpointSize, Value: float64(s.LastCheckpointSize)},
	}
}

// VertexMetrics are the latest figures of a vertex's subtasks.
func (jm *JobManager) VertexMetrics(ctx context.Context, id, vid string) (map[int][]metrics.Value, int64, error) {
	jm.mu.Lock()
	j, err := jm.jobLocked(id)
	if err != nil {
		jm.mu.Unlock()
		return nil, 0, err
	}
	vertex := -1
	for i, v := range j.vertices {
		if v.id == vid {
			vertex = i
		}
	}
	jm.mu.Unlock()
	if vertex < 0 {
		return nil, 0, fmt.Errorf("job %s has no vertex %q: %w", id, vid, rest.ErrNotFound)
	}
	out := map[int][]metrics.Value{}
	var at int64
	for _, r := range jm.metrics.store.Subtasks(id, vertex) {
		out[int(r.Subtask)] = metrics.SubtaskValues(r.SubtaskMetrics, r.SampledUnixMs)
		at = max(at, r.SampledUnixMs)
	}
	return out, at, nil
}

// promSamples are what the JobManager's /metrics serves: its process's
// figures, the cluster's and each job's that has not ended.
func (jm *JobManager) promSamples() []metrics.Sample {
	host, _, _ := net.SplitHostPort(jm.RPCAddr())
	out := metrics.ProcessSamples("jobmanager", jm.metrics.proc.Sample(), "host", host)
	type jobUp struct {
		id     JobID
		name   string
		uptime int64
	}
	var jobs []jobUp
	jm.mu.Lock()
	for _, v := range jm.clusterValuesLocked() {
		out = append(out, metrics.Sample{Name: metrics.PromName("jobmanager", v.ID), Labels: []string{"host", host}, Value: v.Value})
	}
	for _, j := range jobsOf(jm.mu.active) {
		if !v1.TerminalJobStatus(j.status) {
			jobs = append(jobs, jobUp{j.id, j.name, jm.uptimeLocked(j)})
		}
	}
	jm.mu.Unlock()
	for _, j := range jobs {
		labels := []string{"host", host, "job_id", string(j.id), "job_name", j.name}
		for _, v := range jobValues(j.uptime, jm.jobStats(j.id)) {
			out = append(out, metrics.Sample{Name: metrics.PromName("jobmanager_job", v.ID), Labels: labels, Value: v.Value})
		}
	}
	return out
}
