package jobmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/blob"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/jobmaster"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
	"github.com/spate-dev/spate/internal/scheduler"
)

// Version is reported by the REST API.
const Version = "0.1.0"

var (
	_ rest.Backend       = (*JobManager)(nil)
	_ rest.StdoutBackend = (*JobManager)(nil)
	_ rest.ResultBackend = (*JobManager)(nil)
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
	now := jm.clock.Now().UnixMilli()
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
	now := jm.clock.Now().UnixMilli()
	start, end := j.timestamps[statusCreated], endTime(j)
	plan := json.RawMessage(j.graphJSON)
	if plan == nil {
		plan = j.plan
	}
	d := v1.JobDetails{
		JID: string(j.id), Name: j.name, State: j.status, StartTime: start, EndTime: end,
		Duration: duration(start, end, now), Now: now, Timestamps: map[string]int64{}, Plan: plan,
		Vertices: []v1.JobVertex{},
	}
	for k, v := range j.timestamps {
		d.Timestamps[k] = v
	}
	var all []task
	for vi, v := range j.vertices {
		ts := j.tasks[vi]
		all = append(all, ts...)
		vx := v1.JobVertex{ID: v.id, Name: v.name, Parallelism: v.parallelism, Status: vertexStatus(ts), Tasks: counts(ts), StartTime: -1, EndTime: -1}
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
	d.NumRestarts = restartsOf(j)
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
	jm.cancelLocked(j, jm.clock.Now())
	return nil
}

// AcknowledgeResult records that a client has the result of job id, which
// has ended: a per-job cluster waiting for it (ResultLinger) may go.
func (jm *JobManager) AcknowledgeResult(ctx context.Context, id string) error {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, err := jm.jobLocked(id)
	if err != nil {
		return err
	}
	if !v1.TerminalJobStatus(j.status) {
		return fmt.Errorf("job %s is %s: acknowledge its result once it has ended: %w", id, j.status, rest.ErrConflict)
	}
	jm.mu.resultAcks++
	if !closed(jm.mu.resultServed) && jm.mu.resultAcks >= max(1, jm.cfg.ResultAcks) {
		close(jm.mu.resultServed)
	}
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
	e := v1.JobExceptions{History: v1.ExceptionHistory{Entries: []v1.ExceptionEntry{}, Truncated: j.triage.Truncated()}}
	for _, x := range j.triage.Entries() {
		e.History.Entries = append(e.History.Entries, v1.ExceptionEntry{
			ExceptionName: x.Name, Stacktrace: x.Message, Timestamp: x.Time.UnixMilli(), Location: x.Location,
		})
	}
	if x, ok := j.triage.Root(); ok {
		e.RootException, e.Timestamp = x.Message, x.Time.UnixMilli()
	}
	return e, nil
}

// TaskManagers lists the registered TaskManagers.
func (jm *JobManager) TaskManagers(ctx context.Context) (v1.TaskManagers, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	out := v1.TaskManagers{TaskManagers: []v1.TaskManagerInfo{}}
	now := jm.clock.Now()
	for _, id := range jm.mu.tmOrder {
		tm := jm.mu.tms[id]
		silent, _ := jm.mu.beats.Silent(now, id)
		out.TaskManagers = append(out.TaskManagers, v1.TaskManagerInfo{
			ID: tm.id, Path: tm.resourceID, SlotsNumber: tm.slots, FreeSlots: jm.mu.sched.FreeOn(scheduler.TaskManagerID(tm.id)),
			TimeSinceLastHeartbeat: silent.Milliseconds(),
			Hardware:               v1.Hardware{CPUCores: tm.cpu, PhysicalMemory: tm.mem},
			PrometheusAddress:      tm.promAddr,
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

// SubmitJob accepts a JobGraph and schedules it. Every vertex's
// parallelism must be within its max parallelism (pipeline.max-parallelism)
// and the slots the job needs within the cluster's ceiling
// (slotmanager.number-of-slots.max), as the CLI checks: a job that can
// never run is refused at once.
func (jm *JobManager) SubmitJob(ctx context.Context, req v1.JobSubmitRequest) (v1.JobSubmitResponse, error) {
	g, err := jobgraph.Unmarshal(req.JobGraph)
	if err != nil {
		return v1.JobSubmitResponse{}, fmt.Errorf("jobGraph: %v: %w", err, rest.ErrInvalid)
	}
	if len(g.Vertices) == 0 {
		return v1.JobSubmitResponse{}, fmt.Errorf("jobGraph has no vertices: %w", rest.ErrInvalid)
	}
	need, widest := 0, ""
	for _, v := range g.Vertices {
		if err := checkParallelism(v); err != nil {
			return v1.JobSubmitResponse{}, fmt.Errorf("jobGraph: %w: %w", err, rest.ErrInvalid)
		}
		if v.Parallelism > need {
			need, widest = v.Parallelism, v.Name
		}
	}
	if ceiling := jm.slotCeiling(); need > ceiling {
		return v1.JobSubmitResponse{}, fmt.Errorf("jobGraph vertex %q has parallelism %d, so the job needs %d slots, more than this cluster allocates (%s = %d): lower the job's parallelism or raise %s: %w",
			widest, need, need, KeySlotsMax, jm.cfg.SlotsMax, KeySlotsMax, rest.ErrInvalid)
	}
	if !jm.blobs.Has(req.Artifact) {
		return v1.JobSubmitResponse{}, fmt.Errorf("artifact %q is not in the blob store: upload the program first (POST /v1/artifacts): %w", req.Artifact, rest.ErrInvalid)
	}
	ft, err := jm.newFaultTolerance(ctx, g, req.Env)
	if err != nil {
		return v1.JobSubmitResponse{}, fmt.Errorf("job %q: %w: %w", g.Name, err, rest.ErrInvalid)
	}
	now := jm.clock.Now()
	j := &job{ft: ft,
		id: newJobID(), name: g.Name, graph: g, graphJSON: req.JobGraph, artifact: req.Artifact,
		program: req.Program, args: req.Args, ordinal: req.JobOrdinal, env: req.Env, fingerprint: g.Fingerprint,
		timestamps: map[string]int64{}, submitted: now, slotsNeeded: need, ready: make(chan struct{}),
		triage: jobmaster.NewTriage(jm.cfg.RootCauseWindow, maxExceptionHistory),
	}
	j.tasks = make([][]task, len(g.Vertices))
	j.vertices = make([]vertexInfo, len(g.Vertices))
	for vi, v := range g.Vertices {
		j.vertices[vi] = vertexInfo{id: v.ID, name: v.Name, parallelism: v.Parallelism}
		j.tasks[vi] = make([]task, v.Parallelism)
		for s := range j.tasks[vi] {
			j.tasks[vi][s].state = v1.TaskCreated
		}
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if jm.mu.closed {
		return v1.JobSubmitResponse{}, fmt.Errorf("%v: %w", errClosed, rest.ErrUnavailable)
	}
	j.setStatusLocked(statusCreated, now)
	ft.master.Schedule(now)
	jm.mu.jobs[j.id] = j
	jm.mu.active[j.id] = j
	jm.mu.submitted++
	jm.log.Info("job submitted", "job", j.id, "name", j.name, "slots", need)
	jm.schedEffectsLocked(jm.mu.sched.Submit(now, schedJob(j), need), now)
	return v1.JobSubmitResponse{JobID: string(j.id)}, nil
}

// checkParallelism checks a vertex's parallelism against its max
// parallelism and its operators'.
func checkParallelism(v jobgraph.Vertex) error {
	if v.Parallelism <= 0 {
		return fmt.Errorf("vertex %q has parallelism %d: it must be at least 1", v.Name, v.Parallelism)
	}
	if v.MaxParallelism <= 0 || v.MaxParallelism > maxParallelism {
		return fmt.Errorf("vertex %q has max parallelism %d: set pipeline.max-parallelism between 1 and %d", v.Name, v.MaxParallelism, maxParallelism)
	}
	if v.Parallelism > v.MaxParallelism {
		return fmt.Errorf("vertex %q has parallelism %d above its max parallelism %d (pipeline.max-parallelism): lower the parallelism or raise pipeline.max-parallelism", v.Name, v.Parallelism, v.MaxParallelism)
	}
	for _, op := range v.Operators {
		if op.MaxParallelism > 0 && op.Parallelism > op.MaxParallelism {
			return fmt.Errorf("operator %q of vertex %q has parallelism %d above its max parallelism %d (pipeline.max-parallelism): lower the parallelism or raise pipeline.max-parallelism", op.Name, v.Name, op.Parallelism, op.MaxParallelism)
		}
	}
	return nil
}
