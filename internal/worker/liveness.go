package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc/status"

	"github.com/spate-dev/spate/internal/deployment"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// Defaults of the liveness link when the deployment does not carry the
// cluster's heartbeat settings (Flink's heartbeat.interval and
// heartbeat.timeout defaults).
const (
	defaultHeartbeatInterval = 10 * time.Second
	defaultHeartbeatTimeout  = 50 * time.Second
)

// ErrAbandoned is the class of the errors that end a worker on its own:
// its job is over at the JobManager, the JobManager did not answer for
// heartbeat.timeout, or its TaskManager is gone.
var ErrAbandoned = errors.New("worker abandoned")

// errJobOver marks the ErrAbandoned errors that say the JobManager gave
// the job up (rather than went silent, or the TaskManager went away).
var errJobOver = errors.New("job over")

// abandonedError is an ErrAbandoned; jobOver marks it as errJobOver too.
type abandonedError struct {
	msg     string
	jobOver bool
}

func (e *abandonedError) Error() string { return e.msg }

func (e *abandonedError) Is(target error) bool {
	return target == ErrAbandoned || e.jobOver && target == errJobOver
}

// ExitJobOver is the exit status of a worker that stopped itself because
// the JobManager said its job no longer runs with it (deployment.ExitJobOver).
const ExitJobOver = deployment.ExitJobOver

// endAbandoned ends the process of a worker that must stop on its own,
// with err on its standard error and ExitJobOver or 1 as its status. If
// writing err blocks (a frozen TaskManager no longer reads the worker's
// output), the process ends after grace anyway.
func endAbandoned(err error, grace time.Duration) {
	code := 1
	if errors.Is(err, errJobOver) {
		code = ExitJobOver
	}
	time.AfterFunc(grace, func() { os.Exit(code) })
	fmt.Fprintln(os.Stderr, "spate worker:", err)
	os.Exit(code)
}

// liveness is a worker's link to the JobManager and its TaskManager: watch
// asks the JobManager every interval whether the job still runs with this
// worker, and returns an error (of class ErrAbandoned) as soon as the
// worker must stop.
type liveness struct {
	jm                rpcpb.JobManagerClient
	jobID, workerID   string
	attempt           int64
	jobManager        string
	interval, timeout time.Duration
	// parent is the TaskManager's pid; getppid reports the current parent.
	// A changed parent means the TaskManager is gone. 0 skips the check.
	parent  int
	getppid func() int
}

func newLiveness(jm rpcpb.JobManagerClient, d *Deployment) *liveness {
	l := &liveness{
		jm: jm, jobID: d.JobID, workerID: d.WorkerID, attempt: d.Attempt, jobManager: d.JobManager,
		interval: d.HeartbeatInterval, timeout: d.HeartbeatTimeout,
		parent: os.Getppid(), getppid: os.Getppid,
	}
	if l.interval <= 0 {
		l.interval = defaultHeartbeatInterval
	}
	if l.timeout <= l.interval {
		l.timeout = max(defaultHeartbeatTimeout, 5*l.interval)
	}
	return l
}

// grace is how long an abandoned worker's user code has to return after
// its cancellation before the process ends anyway: a heartbeat interval,
// at most a second.
func (l *liveness) grace() time.Duration {
	return min(l.interval, time.Second)
}

// watch returns nil when ctx ends, or why the worker must stop.
func (l *liveness) watch(ctx context.Context) error {
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	lastHeard := time.Now()
	for {
		if l.parent != 0 && l.getppid() != l.parent {
			return fmt.Errorf("%w: its TaskManager (pid %d) is gone", ErrAbandoned, l.parent)
		}
		// Each check may take until the deadline of the whole link.
		rctx, cancel := context.WithDeadline(ctx, lastHeard.Add(l.timeout))
		resp, err := l.jm.WorkerHeartbeat(rctx, &rpcpb.WorkerHeartbeatRequest{JobId: l.jobID, WorkerId: l.workerID, Attempt: l.attempt})
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil && !resp.Running:
			return &abandonedError{msg: fmt.Sprintf("%v: %s (JobManager %s)", ErrAbandoned, resp.Reason, l.jobManager), jobOver: true}
		case err == nil:
			lastHeard = time.Now()
		case time.Since(lastHeard) >= l.timeout:
			return fmt.Errorf("%w: no answer from JobManager %s for %v (heartbeat.timeout): %s",
				ErrAbandoned, l.jobManager, time.Since(lastHeard).Round(time.Millisecond), status.Convert(err).Message())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
