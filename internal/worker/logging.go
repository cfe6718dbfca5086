package worker

import (
	"log/slog"
	"os"

	"github.com/spate-dev/spate/internal/config"
)

// setupLogging makes the worker's default logger log in its daemons'
// format ($SPATE_LOG_FORMAT, set by the TaskManager that started it) with
// the job's and the worker's id on every line, and returns it. Without the
// variable (a worker not started by a daemon) the default logger stays as
// it is, and the one returned adds the ids to it.
func setupLogging(d *Deployment) *slog.Logger {
	format, ok := os.LookupEnv(config.LogFormatEnv)
	if !ok {
		return slog.Default().With("job", d.JobID, "worker", d.WorkerID)
	}
	l, err := config.NewLogger(format, os.Stderr)
	if err != nil {
		slog.Warn("worker: "+config.LogFormatEnv+": keeping the default log format", "err", err, "job", d.JobID, "worker", d.WorkerID)
		return slog.Default().With("job", d.JobID, "worker", d.WorkerID)
	}
	l = l.With("job", d.JobID, "worker", d.WorkerID)
	slog.SetDefault(l)
	return l
}
