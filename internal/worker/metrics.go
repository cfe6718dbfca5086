package worker

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/metrics"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// metricsInterval is how often the worker samples its subtasks for its
// TaskManager.
const metricsInterval = time.Second

// startMetrics writes the figures of the worker's subtasks to the metrics
// pipe its TaskManager gave it (metrics.PipeEnv) every metricsInterval,
// until the returned stop is called. Without a pipe (a worker not started
// by a TaskManager) it does nothing.
func startMetrics(ctx context.Context, d *Deployment, g *jobgraph.JobGraph, local []LocalTask, log *slog.Logger) (stop func()) {
	v, ok := os.LookupEnv(metrics.PipeEnv)
	if !ok {
		return func() {}
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		log.Warn("worker: no metrics: "+metrics.PipeEnv+" is not a file descriptor", "value", v)
		return func() {}
	}
	// Processes the job starts must not inherit the pipe.
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "metrics")
	subtasks := make([]metrics.Subtask, len(local))
	for i, lt := range local {
		subtasks[i] = metrics.Subtask{Task: lt.Task, Vertex: lt.Vertex, Subtask: lt.Subtask}
	}
	s := metrics.NewSampler(subtasks)
	var proc metrics.ProcessSampler
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer f.Close()
		w := bufio.NewWriter(f)
		tick := time.NewTicker(metricsInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m := &rpcpb.WorkerMetrics{
				JobId: d.JobID, JobName: d.JobName, WorkerId: d.WorkerID,
				SampledUnixMs: time.Now().UnixMilli(), Process: proc.Sample(), Subtasks: s.Sample(),
			}
			for _, st := range m.Subtasks {
				st.VertexId = g.Vertices[st.Vertex].ID
			}
			if _, err := protodelim.MarshalTo(w, m); err == nil {
				err = w.Flush()
			}
			if err != nil {
				log.Warn("worker: metrics pipe to the TaskManager failed; no more figures", "err", err)
				return
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}
