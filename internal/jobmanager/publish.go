package jobmanager

import (
	"context"
	"fmt"

	"google.golang.org/grpc/status"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// AwaitPublish holds a worker whose subtasks have all finished, and whose
// sinks wait to make their output final, until the job's fate is known.
// A sink subtask's own input ending well says nothing of the job's other
// workers: publishing then would make a job that fails later elsewhere
// leave part of its output as final. So the worker asks, and the answer
// is yes only once every subtask of the job has finished or waits here
// too; it is no once the job is ending any other way.
func (jm *JobManager) AwaitPublish(ctx context.Context, req *rpcpb.AwaitPublishRequest) (*rpcpb.AwaitPublishResponse, error) {
	jm.mu.Lock()
	j, w, err := jm.workerLocked(req.JobId, req.WorkerId)
	if err != nil {
		jm.mu.Unlock()
		return nil, err
	}
	if j.staleAttempt(req.Attempt) {
		jm.mu.Unlock()
		return &rpcpb.AwaitPublishResponse{Reason: fmt.Sprintf("job %s runs attempt %d, not this worker's attempt %d", j.id, j.attempt, req.Attempt)}, nil
	}
	answer := make(chan string, 1)
	if j.publish == nil {
		j.publish = map[string]chan string{}
	}
	j.publish[w.id] = answer
	j.publishLocked()
	jm.mu.Unlock()
	select {
	case reason := <-answer:
		return &rpcpb.AwaitPublishResponse{Publish: reason == "", Reason: reason}, nil
	case <-ctx.Done():
		jm.mu.Lock()
		if j.publish[w.id] == answer {
			delete(j.publish, w.id)
		}
		jm.mu.Unlock()
		select {
		case reason := <-answer: // answered meanwhile
			return &rpcpb.AwaitPublishResponse{Publish: reason == "", Reason: reason}, nil
		default:
		}
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// publishLocked answers the workers waiting to publish once j's fate is
// known: "" (publish) when every subtask has finished or runs in a worker
// that waits, the reason not to once j no longer runs.
func (j *job) publishLocked() {
	if len(j.publish) == 0 {
		return
	}
	reason := ""
	if j.status != statusRunning {
		reason = fmt.Sprintf("job %s is %s", j.id, j.status)
	} else {
		for vi := range j.tasks {
			for s := range j.tasks[vi] {
				if j.tasks[vi][s].state == v1.TaskFinished {
					continue
				}
				if _, waits := j.publish[j.slotWorker(s)]; !waits {
					return
				}
			}
		}
	}
	for id, answer := range j.publish {
		answer <- reason
		delete(j.publish, id)
	}
}

// slotWorker is the id of the worker that holds slot s, and so subtask s
// of every vertex; "" if none does.
func (j *job) slotWorker(s int) string {
	for _, w := range j.workers {
		if s < w.slots {
			return w.id
		}
		s -= w.slots
	}
	return ""
}
