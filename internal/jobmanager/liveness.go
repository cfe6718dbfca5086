package jobmanager

import (
	"context"
	"fmt"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// WorkerHeartbeat answers a worker's liveness check: whether its job still
// runs with it. A worker stops itself on a "no", and when it hears nothing
// for heartbeat.timeout, so that a worker whose TaskManager is frozen or
// cut off never runs user code for a job this JobManager has failed,
// cancelled or forgotten.
func (jm *JobManager) WorkerHeartbeat(ctx context.Context, req *rpcpb.WorkerHeartbeatRequest) (*rpcpb.WorkerHeartbeatResponse, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	over := func(format string, args ...any) (*rpcpb.WorkerHeartbeatResponse, error) {
		return &rpcpb.WorkerHeartbeatResponse{Running: false, Reason: fmt.Sprintf(format, args...)}, nil
	}
	j, ok := jm.mu.jobs[JobID(req.JobId)]
	if !ok {
		return over("the JobManager has no job %s", req.JobId)
	}
	if v1.TerminalJobStatus(j.status) || j.status == statusFailing || j.status == statusCancelling || j.status == statusRestarting {
		return over("job %s is %s", j.id, j.status)
	}
	if j.staleAttempt(req.Attempt) {
		return over("job %s runs attempt %d, not this worker's attempt %d", j.id, j.attempt, req.Attempt)
	}
	for _, w := range j.workers {
		if w.id == req.WorkerId {
			return &rpcpb.WorkerHeartbeatResponse{Running: true}, nil
		}
	}
	return over("job %s runs without worker %s", j.id, req.WorkerId)
}
