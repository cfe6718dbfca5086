package jobmanager

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
	"github.com/spate-dev/spate/internal/scheduler"
)

// RegisterTaskManager admits a TaskManager.
func (jm *JobManager) RegisterTaskManager(ctx context.Context, req *rpcpb.RegisterTaskManagerRequest) (*rpcpb.RegisterTaskManagerResponse, error) {
	if req.Slots <= 0 || req.Slots > 1024 {
		return nil, status.Errorf(codes.InvalidArgument, "taskmanager %q offers %d slots: set taskmanager.numberOfTaskSlots between 1 and 1024", req.ResourceId, req.Slots)
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if jm.mu.closed {
		return nil, status.Error(codes.Unavailable, errClosed.Error())
	}
	now := jm.clock.Now()
	jm.mu.nextTM++
	tm := &taskManager{
		id: fmt.Sprintf("tm-%d", jm.mu.nextTM), resourceID: req.ResourceId, host: req.Host,
		slots: int(req.Slots), cpu: int(req.CpuCores), mem: req.PhysicalMemory,
		out:  make(chan *rpcpb.JobManagerMessage, 256),
		done: make(chan struct{}), acked: make(chan struct{}),
	}
	jm.mu.tms[tm.id] = tm
	jm.mu.tmOrder = append(jm.mu.tmOrder, tm.id)
	jm.mu.beats.Add(now, tm.id)
	jm.log.Info("taskmanager registered", "taskmanager", tm.id, "resource", tm.resourceID, "slots", tm.slots)
	jm.schedEffectsLocked(jm.mu.sched.Registered(now, scheduler.TaskManagerID(tm.id), tm.resourceID, tm.slots), now)
	return &rpcpb.RegisterTaskManagerResponse{
		TaskmanagerId:       tm.id,
		HeartbeatIntervalMs: jm.cfg.HeartbeatInterval.Milliseconds(),
		HeartbeatTimeoutMs:  jm.cfg.HeartbeatTimeout.Milliseconds(),
		RestAddress:         jm.RESTAddr(),
	}, nil
}

// Connect serves a TaskManager's session.
func (jm *JobManager) Connect(stream rpcpb.JobManager_ConnectServer) error {
	first, err := jm.recvHello(stream)
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "a TaskManager session must start with hello")
	}
	jm.mu.Lock()
	tm, ok := jm.mu.tms[hello.TaskmanagerId]
	jm.mu.Unlock()
	if !ok {
		return status.Errorf(codes.NotFound, "unknown taskmanager %q: register first", hello.TaskmanagerId)
	}
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			jm.onTMMessage(tm, m)
		}
	}()
	for {
		select {
		case m := <-tm.out:
			if err := stream.Send(m); err != nil {
				jm.lose(tm, fmt.Sprintf("session broken: %v", err))
				return err
			}
		case err := <-recvErr:
			cause := "its session ended"
			if !errors.Is(err, io.EOF) {
				cause = fmt.Sprintf("its session ended: %v", status.Convert(err).Message())
			}
			jm.lose(tm, cause)
			return nil
		case <-tm.done:
			// Lost (heartbeat timeout) or the JobManager is stopping.
			return status.Error(codes.Aborted, "taskmanager dropped: "+tm.cause)
		}
	}
}

func (jm *JobManager) lose(tm *taskManager, cause string) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if jm.mu.closed {
		return
	}
	jm.loseTMLocked(tm, cause, jm.clock.Now())
}

func (jm *JobManager) onTMMessage(tm *taskManager, m *rpcpb.TaskManagerMessage) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	now := jm.clock.Now()
	jm.mu.beats.Heard(now, tm.id)
	switch k := m.Kind.(type) {
	case *rpcpb.TaskManagerMessage_Heartbeat:
	case *rpcpb.TaskManagerMessage_ShutdownAck:
		if !tm.ackedSet {
			tm.ackedSet = true
			close(tm.acked)
		}
	case *rpcpb.TaskManagerMessage_WorkerExited:
		e := k.WorkerExited
		j, ok := jm.mu.active[JobID(e.JobId)]
		if !ok || e.Expected || j.staleAttempt(e.Attempt) {
			return
		}
		jm.reportLocked(j, failure{name: exceptionWorkerExited, death: true, location: tm.id, attempt: j.attempt,
			err: fmt.Errorf("worker %s on TaskManager %s (%s) exited: %s%s", e.WorkerId, tm.id, tm.resourceID, e.Reason, exitHint(j, e.WorkerId, e.ExitCode))}, now)
	case *rpcpb.TaskManagerMessage_Stdout:
		if ch, ok := jm.mu.stdout[k.Stdout.RequestId]; ok {
			delete(jm.mu.stdout, k.Stdout.RequestId)
			ch <- k.Stdout.Text
		}
	case *rpcpb.TaskManagerMessage_JobReleased:
		if j, ok := jm.mu.active[JobID(k.JobReleased.JobId)]; ok {
			jm.releasedLocked(j, tm.id, now)
		}
	}
}

// WorkerReady records a worker's data address and answers once all of the
// job's workers are ready.
func (jm *JobManager) WorkerReady(ctx context.Context, req *rpcpb.WorkerReadyRequest) (*rpcpb.WorkerReadyResponse, error) {
	jm.mu.Lock()
	j, w, err := jm.workerLocked(req.JobId, req.WorkerId)
	if err != nil {
		jm.mu.Unlock()
		return nil, err
	}
	if j.staleAttempt(req.Attempt) {
		jm.mu.Unlock()
		return nil, staleErr(j, "readiness", req.Attempt)
	}
	if req.Fingerprint != j.fingerprint {
		jm.failLocked(j, fmt.Errorf("worker %s rebuilt job %q with fingerprint %s, but the submitted JobGraph has %s: the program must build the same dataflow for the same arguments (is main non-deterministic?)", w.id, j.name, req.Fingerprint, j.fingerprint), w.tm.id, jm.clock.Now())
		jm.mu.Unlock()
		return nil, status.Error(codes.FailedPrecondition, "fingerprint mismatch")
	}
	w.addr = req.DataAddress
	all := true
	for _, o := range j.workers {
		all = all && o.addr != ""
	}
	if all && !closed(j.ready) {
		close(j.ready)
		if j.ft != nil {
			j.ft.master.Ready(jm.clock.Now(), j.attempt)
		}
	}
	ready := j.ready
	jm.mu.Unlock()

	select {
	case <-ready:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if j.readyErr != nil {
		return nil, status.Error(codes.Aborted, j.readyErr.Error())
	}
	addrs := map[string]string{}
	for _, o := range j.workers {
		addrs[o.id] = o.addr
	}
	return &rpcpb.WorkerReadyResponse{DataAddresses: addrs}, nil
}

// ReportTasks records subtask states and record counts from a worker.
func (jm *JobManager) ReportTasks(ctx context.Context, req *rpcpb.ReportTasksRequest) (*rpcpb.ReportTasksResponse, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if j, ok := jm.mu.jobs[JobID(req.JobId)]; ok && j.staleAttempt(req.Attempt) {
		// A zombie's report must not fail, finish or count for the
		// restored run.
		return nil, staleErr(j, "task report", req.Attempt)
	}
	j, w, err := jm.workerLocked(req.JobId, req.WorkerId)
	if err != nil {
		return nil, err
	}
	at := jm.clock.Now()
	now := at.UnixMilli()
	var finished [][2]int
	for _, ts := range req.Tasks {
		if ts.Vertex < 0 || int(ts.Vertex) >= len(j.tasks) || ts.Subtask < 0 || int(ts.Subtask) >= len(j.tasks[ts.Vertex]) {
			return nil, status.Errorf(codes.InvalidArgument, "job %s has no subtask %d of vertex %d", j.id, ts.Subtask, ts.Vertex)
		}
		t := &j.tasks[ts.Vertex][ts.Subtask]
		t.in, t.out = ts.RecordsIn, ts.RecordsOut
		jm.taskStateLocked(j, t, ts.State, now)
		jm.taskStateFTLocked(j, int(ts.Vertex), int(ts.Subtask), ts.State, at)
		if ts.State == v1.TaskFinished {
			finished = append(finished, [2]int{int(ts.Vertex), int(ts.Subtask)})
		}
		if ts.State == v1.TaskFailed {
			// Also when the job already fails: the history keeps every
			// failure (reportLocked drops repeats).
			name := j.vertices[ts.Vertex].name
			f := failure{name: exceptionFailure, err: errors.New(ts.Error), attempt: j.attempt,
				location: fmt.Sprintf("%s worker %s subtask %s (%d/%d)", w.tm.id, w.id, name, ts.Subtask+1, len(j.tasks[ts.Vertex]))}
			if ts.PeerLost {
				f.name, f.secondary = exceptionPeerLost, true
			}
			jm.reportLocked(j, f, at)
		}
	}
	if req.Failure != "" {
		f := failure{name: exceptionFailure, location: w.tm.id, attempt: j.attempt,
			err: fmt.Errorf("worker %s on TaskManager %s: %s", w.id, w.tm.id, req.Failure)}
		if req.PeerLost {
			f.name, f.secondary = exceptionPeerLost, true
		}
		jm.reportLocked(j, f, at)
	}
	j.publishLocked()
	jm.tasksFinishedLocked(j, finished, at)
	return &rpcpb.ReportTasksResponse{}, nil
}

// taskStateLocked moves subtask t to state, unless the job or the subtask
// has ended.
func (jm *JobManager) taskStateLocked(j *job, t *task, state string, now int64) {
	if state == "" || state == t.state || v1.TerminalJobStatus(j.status) {
		return
	}
	switch t.state {
	case v1.TaskFinished, v1.TaskFailed, v1.TaskCanceled:
		return
	}
	t.state = state
	switch state {
	case v1.TaskRunning:
		t.start = now
	case v1.TaskFinished, v1.TaskFailed, v1.TaskCanceled:
		t.end = now
	}
}

func (jm *JobManager) workerLocked(jobID, workerID string) (*job, *worker, error) {
	j, ok := jm.mu.jobs[JobID(jobID)]
	if !ok {
		return nil, nil, status.Errorf(codes.NotFound, "unknown job %q", jobID)
	}
	for _, w := range j.workers {
		if w.id == workerID {
			return j, w, nil
		}
	}
	return nil, nil, status.Errorf(codes.NotFound, "job %s has no worker %q", jobID, workerID)
}
