package jobmanager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/blob"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// Version is reported by the REST API.
const Version = "0.1.0"

var (
	_ rest.Backend       = (*JobManager)(nil)
	_ rest.StdoutBackend = (*JobManager)(nil)
)

// stdoutTimeout bounds the wait for a TaskManager's output.
const stdoutTimeout = 10 * time.Second

// TaskManagerStdout asks a TaskManager for its recent output.
func (jm *JobManager) TaskManagerStdout(ctx context.Context, id string) (string, error) {
	jm.mu.Lock()
	tm, ok := jm.mu.tms[id]
	if !ok {
		jm.mu.Unlock()
		return "", fmt.Errorf("unknown taskmanager %q: list them with GET /v1/taskmanagers: %w", id, rest.ErrNotFound)
	}
	jm.mu.nextReqID++
	req := jm.mu.nextReqID
	ch := make(chan string, 1)
	jm.mu.stdout[req] = ch
	tm.sendLocked(&rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_StdoutRequest{StdoutRequest: &rpcpb.StdoutRequest{RequestId: req}}})
	jm.mu.Unlock()
	defer func() {
		jm.mu.Lock()
		delete(jm.mu.stdout, req)
		jm.mu.Unlock()
	}()
	timer := time.NewTimer(stdoutTimeout)
	defer timer.Stop()
	select {
	case text := <-ch:
		return text, nil
	case <-ctx.Done():
		return "", ctx.Err()
	case <-timer.C:
		return "", fmt.Errorf("taskmanager %s did not send its output within %v: %w", id, stdoutTimeout, rest.ErrUnavailable)
	}
}

// Overview summarises the cluster.
func (jm *JobManager) Overview(ctx context.Context) (v1.Overview, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	o := v1.Overview{TaskManagers: len(jm.mu.tms), SlotsTotal: jm.totalSlotsLocked(), SlotsAvailable: jm.freeSlotsLocked(), Version: Version}
	for _, j := range jm.mu.jobs {
		switch j.status {
		case statusFinished:
			o.JobsFinished++
		case statusCanceled:
			o.JobsCancelled++
		case statusFailed:
			o.JobsFailed++
		default:
			o.JobsRunning++
		}
	}
	return o, nil
}

// Config returns the effective configuration.
func (jm *JobManager) Config(ctx context.Context) (v1.Config, error) {
	c := v1.Config{Version: Version, TimezoneName: time.Local.String()}
	entries := jm.cfg.Settings.Entries()
	entries[KeyRPCAddress+"(effective)"] = jm.RPCAddr()
	entries[KeyRESTAddress+"(effective)"] = jm.RESTAddr()
	for k, v := range entries {
		c.Entries = append(c.Entries, v1.ConfigEntry{Key: k, Value: v})
	}
	sort.Slice(c.Entries, func(a, b int) bool { return c.Entries[a].Key < c.Entries[b].Key })
	return c, nil
}

// JobsOverview lists every job, newest first.
func (jm *JobManager) JobsOverview(ctx context.Context) (v1.JobsOverview, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	out := v1.JobsOverview{Jobs: []v1.JobOverview{}}
	now := time.Now().UnixMilli()
	for _, j := range jm.sortedJobsLocked() {
		var all []task
		for _, ts := range j.tasks {
			all = append(all, ts...)
		}
		start, end := j.timestamps[statusCreated], endTime(j)
		last := start
		for _, t := range j.timestamps {
			last = max(last, t)
		}
		out.Jobs = append(out.Jobs, v1.JobOverview{
			JID: string(j.id), Name: j.name, State: j.status, StartTime: start, EndTime: end,
			Duration: duration(start, end, now), LastModification: last, Tasks: counts(all),
		})
	}
	return out, nil
}

func endTime(j *job) int64 {
	if v1.TerminalJobStatus(j.status) {
		return j.timestamps[j.status]
	}
	return -1
}

func duration(start, end, now int64) int64 {
	if end < 0 {
		return now - start
	}
	return end - start
}

func (jm *JobManager) jobLocked(id string) (*job, error) {
	j, ok := jm.mu.jobs[JobID(id)]
	if !ok {
		return nil, fmt.Errorf("unknown job %q: list jobs with GET /v1/jobs: %w", id, rest.ErrNotFound)
	}
	return j, nil
}

// Job details one job with its vertices.
func (jm *JobManager) Job(ctx context.Context, id string) (v1.JobDetails, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, err := jm.jobLocked(id)
	if err != nil {
		return v1.JobDetails{}, err
	}
	now := time.Now().UnixMilli()
	start, end := j.timestamps[statusCreated], endTime(j)
	d := v1.JobDetails{
		JID: string(j.id), Name: j.name, State: j.status, StartTime: start, EndTime: end,
		Duration: duration(start, end, now), Now: now, Timestamps: map[string]int64{}, Plan: j.graphJSON,
		Vertices: []v1.JobVertex{},
	}
	for k, v := range j.timestamps {
		d.Timestamps[k] = v
	}
	var all []task
	for vi, v := range j.graph.Vertices {
		ts := j.tasks[vi]
		all = append(all, ts...)
		vx := v1.JobVertex{ID: v.ID, Name: v.Name, Parallelism: v.Parallelism, Status: vertexStatus(ts), Tasks: counts(ts), StartTime: -1, EndTime: -1}
		done := true
		for _, t := range ts {
			vx.Metrics.ReadRecords += t.in
			vx.Metrics.WriteRecords += t.out
			if t.start > 0 && (vx.StartTime < 0 || t.start < vx.StartTime) {
				vx.StartTime = t.start
			}
			if t.end > vx.EndTime {
				vx.EndTime = t.end
			}
			done = done && (t.state == "FINISHED" || t.state == "FAILED" || t.state == "CANCELED")
		}
		if !done {
			vx.EndTime = -1
		}
		vx.Metrics.ReadRecordsComplete, vx.Metrics.WriteRecordsComplete = done, done
		if vx.StartTime > 0 {
			vx.Duration = duration(vx.StartTime, vx.EndTime, now)
		} else {
			vx.Duration = -1
		}
		d.Vertices = append(d.Vertices, vx)
	}
	d.StatusCounts = counts(all)
	if j.status == statusFinished || j.status == statusCanceled {
		jm.servedLocked()
	}
	return d, nil
}

// CancelJob cancels a job that has not ended.
func (jm *JobManager) CancelJob(ctx context.Context, id string) error {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, err := jm.jobLocked(id)
	if err != nil {
		return err
	}
	if v1.TerminalJobStatus(j.status) {
		return fmt.Errorf("job %s already ended (%s): %w", id, j.status, rest.ErrConflict)
	}
	jm.cancelLocked(j)
	return nil
}

// JobExceptions returns a job's failures.
func (jm *JobManager) JobExceptions(ctx context.Context, id string) (v1.JobExceptions, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, err := jm.jobLocked(id)
	if err != nil {
		return v1.JobExceptions{}, err
	}
	if j.status == statusFailed {
		jm.servedLocked()
	}
	e := v1.JobExceptions{History: v1.ExceptionHistory{Entries: append([]v1.ExceptionEntry{}, j.exceptions...)}}
	for i, x := range j.exceptions {
		if i == 0 || x.ExceptionName == exceptionTMLost {
			e.RootException, e.Timestamp = x.Stacktrace, x.Timestamp
		}
		if x.ExceptionName == exceptionTMLost {
			break
		}
	}
	return e, nil
}

// TaskManagers lists the registered TaskManagers.
func (jm *JobManager) TaskManagers(ctx context.Context) (v1.TaskManagers, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	out := v1.TaskManagers{TaskManagers: []v1.TaskManagerInfo{}}
	now := time.Now()
	for _, id := range jm.mu.tmOrder {
		tm := jm.mu.tms[id]
		out.TaskManagers = append(out.TaskManagers, v1.TaskManagerInfo{
			ID: tm.id, Path: tm.resourceID, SlotsNumber: tm.slots, FreeSlots: tm.slots - tm.used,
			TimeSinceLastHeartbeat: now.Sub(tm.lastHeartbeat).Milliseconds(),
			Hardware:               v1.Hardware{CPUCores: tm.cpu, PhysicalMemory: tm.mem},
		})
	}
	return out, nil
}

// PutArtifact stores a program binary.
func (jm *JobManager) PutArtifact(ctx context.Context, r io.Reader) (v1.ArtifactUploadResponse, error) {
	id, n, err := jm.blobs.Put(r, "")
	if errors.Is(err, blob.ErrTooLarge) {
		return v1.ArtifactUploadResponse{}, fmt.Errorf("%v: %w", err, rest.ErrTooLarge)
	}
	if err != nil {
		return v1.ArtifactUploadResponse{}, fmt.Errorf("%v: %w", err, rest.ErrInvalid)
	}
	return v1.ArtifactUploadResponse{ID: id, Size: n, Status: "success"}, nil
}

// OpenArtifact opens a stored binary.
func (jm *JobManager) OpenArtifact(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	r, n, err := jm.blobs.Open(id)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return nil, 0, fmt.Errorf("%v: %w", err, rest.ErrNotFound)
	case errors.Is(err, blob.ErrInvalidID):
		return nil, 0, fmt.Errorf("%v: %w", err, rest.ErrInvalid)
	}
	return r, n, err
}

// SubmitJob accepts a JobGraph and schedules it.
func (jm *JobManager) SubmitJob(ctx context.Context, req v1.JobSubmitRequest) (v1.JobSubmitResponse, error) {
	g, err := jobgraph.Unmarshal(req.JobGraph)
	if err != nil {
		return v1.JobSubmitResponse{}, fmt.Errorf("jobGraph: %v: %w", err, rest.ErrInvalid)
	}
	if len(g.Vertices) == 0 {
		return v1.JobSubmitResponse{}, fmt.Errorf("jobGraph has no vertices: %w", rest.ErrInvalid)
	}
	need := 0
	for _, v := range g.Vertices {
		if v.Parallelism <= 0 || v.Parallelism > 1<<15 {
			return v1.JobSubmitResponse{}, fmt.Errorf("jobGraph vertex %q has parallelism %d: %w", v.Name, v.Parallelism, rest.ErrInvalid)
		}
		need = max(need, v.Parallelism)
	}
	if !jm.blobs.Has(req.Artifact) {
		return v1.JobSubmitResponse{}, fmt.Errorf("artifact %q is not in the blob store: upload the program first (POST /v1/artifacts): %w", req.Artifact, rest.ErrInvalid)
	}
	now := time.Now()
	j := &job{
		id: newJobID(), name: g.Name, graph: g, graphJSON: req.JobGraph, artifact: req.Artifact,
		args: req.Args, env: req.Env, timestamps: map[string]int64{}, submitted: now,
		slotsNeeded: need, ready: make(chan struct{}),
	}
	j.tasks = make([][]task, len(g.Vertices))
	for vi, v := range g.Vertices {
		j.tasks[vi] = make([]task, v.Parallelism)
		for s := range j.tasks[vi] {
			j.tasks[vi][s].state = "CREATED"
		}
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if jm.mu.closed {
		return v1.JobSubmitResponse{}, fmt.Errorf("%v: %w", errClosed, rest.ErrUnavailable)
	}
	j.setStatusLocked(statusCreated, now)
	jm.mu.jobs[j.id] = j
	jm.mu.order = append(jm.mu.order, j.id)
	jm.log.Info("job submitted", "job", j.id, "name", j.name, "slots", need)
	jm.scheduleLocked()
	return v1.JobSubmitResponse{JobID: string(j.id)}, nil
}

// servedLocked notes that a client has the result of an ended job. The
// client may have it before the job's workers are gone (jobEnded), and
// ask no more.
func (jm *JobManager) servedLocked() {
	if !closed(jm.mu.resultServed) {
		close(jm.mu.resultServed)
	}
}
