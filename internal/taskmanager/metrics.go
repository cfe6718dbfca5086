package taskmanager

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/spate-dev/spate/internal/metrics"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// metricsInterval is how often the TaskManager sends its figures to the
// JobManager (its workers sample theirs as often).
const metricsInterval = time.Second

// maxWorkerReport bounds one message a worker writes on its metrics pipe.
const maxWorkerReport = 16 << 20

// tmMetrics is a TaskManager's metric state: the latest figures of each
// of its workers, its own process's, and its Prometheus listener.
type tmMetrics struct {
	proc metrics.ProcessSampler
	// promLn is the Prometheus listener, nil when the reporter is off.
	promLn net.Listener

	mu struct {
		sync.Mutex
		// id is the TaskManager's id at the JobManager, empty between
		// sessions.
		id string
		// workers holds each running worker's latest report, by pipe.
		workers map[*metricsPipe]*rpcpb.WorkerMetrics
	}
}

func newTMMetrics(host string, prom *metrics.PortRange) (*tmMetrics, error) {
	m := &tmMetrics{}
	m.mu.workers = map[*metricsPipe]*rpcpb.WorkerMetrics{}
	if prom != nil {
		ln, err := metrics.Listen(host, *prom)
		if err != nil {
			return nil, err
		}
		m.promLn = ln
	}
	return m, nil
}

// PrometheusAddr is the address of the TaskManager's /metrics, empty when
// the reporter is off (metrics.reporters).
func (tm *TaskManager) PrometheusAddr() string {
	if tm.metrics.promLn == nil {
		return ""
	}
	return tm.metrics.promLn.Addr().String()
}

// serveMetrics serves /metrics until ctx ends.
func (tm *TaskManager) serveMetrics(ctx context.Context) {
	defer tm.wg.Done()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Collector{Samples: func() []metrics.Sample {
		return metrics.TaskManagerSamples(tm.metricsSnapshot(), tm.cfg.Host)
	}})
	tm.log.Info("taskmanager: Prometheus metrics at http://"+tm.PrometheusAddr()+"/metrics", "prometheus", tm.PrometheusAddr())
	if err := metrics.Serve(ctx, tm.metrics.promLn, reg, tm.log); err != nil && ctx.Err() == nil {
		tm.log.Error("taskmanager: serving /metrics stopped", "err", err)
	}
}

// metricsSnapshot is the TaskManager's latest figures.
func (tm *TaskManager) metricsSnapshot() *rpcpb.TaskManagerMetrics {
	m := &rpcpb.TaskManagerMetrics{
		PrometheusAddress: tm.PrometheusAddr(), SampledUnixMs: time.Now().UnixMilli(), Process: tm.metrics.proc.Sample(),
	}
	tm.metrics.mu.Lock()
	m.TaskmanagerId = tm.metrics.mu.id
	for _, w := range tm.metrics.mu.workers {
		m.Workers = append(m.Workers, w)
	}
	tm.metrics.mu.Unlock()
	return m
}

// reportMetrics sends the TaskManager's figures to the JobManager every
// metricsInterval until ctx ends (the session's end). A failed report is
// retried at the next interval: figures are only ever the latest.
func (tm *TaskManager) reportMetrics(ctx context.Context, conn grpc.ClientConnInterface, id string) {
	tm.metrics.mu.Lock()
	tm.metrics.mu.id = id
	tm.metrics.mu.Unlock()
	client := rpcpb.NewMetricsReporterClient(conn)
	tick := time.NewTicker(metricsInterval)
	defer tick.Stop()
	failed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, metricsInterval)
		_, err := client.Report(rctx, tm.metricsSnapshot())
		cancel()
		switch {
		case err != nil && !failed && ctx.Err() == nil:
			tm.log.Warn("taskmanager: metrics report to the JobManager failed; retrying every interval", "err", err, "interval", metricsInterval)
			failed = true
		case err == nil:
			failed = false
		}
	}
}

// metricsPipe is the pipe a worker writes its figures to: the worker gets
// the write end as file descriptor 3 (metrics.PipeEnv says so), the
// TaskManager reads the other.
type metricsPipe struct {
	tm              *TaskManager
	jobID, workerID string
	r, w            *os.File
	done            chan struct{}
}

// openMetricsPipe prepares cmd to get a metrics pipe.
func (tm *TaskManager) openMetricsPipe(cmd *exec.Cmd, jobID, workerID string) (*metricsPipe, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create the worker's metrics pipe: %w", err)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", metrics.PipeEnv, 2+len(cmd.ExtraFiles)))
	return &metricsPipe{tm: tm, jobID: jobID, workerID: workerID, r: r, w: w, done: make(chan struct{})}, nil
}

// started begins reading, once the worker runs (or closes the pipe if it
// did not start).
func (p *metricsPipe) started(ok bool) {
	p.w.Close()
	if !ok {
		p.r.Close()
		close(p.done)
		return
	}
	go func() {
		defer close(p.done)
		err := readWorkerMetrics(p.r, func(m *rpcpb.WorkerMetrics) {
			p.tm.metrics.mu.Lock()
			p.tm.metrics.mu.workers[p] = m
			p.tm.metrics.mu.Unlock()
		})
		if err != nil && !errors.Is(err, os.ErrClosed) {
			p.tm.log.Warn("taskmanager: a worker's metrics pipe failed; its figures stop", "job", p.jobID, "worker", p.workerID, "err", err)
		}
	}()
}

// stop ends reading once the worker has exited and forgets its figures.
func (p *metricsPipe) stop() {
	p.r.Close()
	<-p.done
	p.tm.metrics.mu.Lock()
	delete(p.tm.metrics.mu.workers, p)
	p.tm.metrics.mu.Unlock()
}

// readWorkerMetrics reads length-delimited WorkerMetrics from r until it
// ends (nil at a clean end), handing each to put.
func readWorkerMetrics(r io.Reader, put func(*rpcpb.WorkerMetrics)) error {
	br := bufio.NewReader(r)
	for {
		m := &rpcpb.WorkerMetrics{}
		err := protodelim.UnmarshalOptions{MaxSize: maxWorkerReport}.UnmarshalFrom(br, m)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read worker metrics: %w", err)
		}
		put(m)
	}
}
