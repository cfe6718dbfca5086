package jobmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// startJM runs a JobManager on free loopback ports until the test ends.
func startJM(t *testing.T, slotTimeout time.Duration) (*JobManager, *client.Client) {
	t.Helper()
	return runJM(t, Config{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: time.Second, SlotRequestTimeout: slotTimeout})
}

// runJM runs a JobManager configured by cfg, on free loopback ports and
// with a 1 MiB artifact limit, until the test ends.
func runJM(t testing.TB, cfg Config) (*JobManager, *client.Client) {
	t.Helper()
	cfg.RPCAddress, cfg.RESTAddress, cfg.MaxArtifactBytes = "127.0.0.1:0", "127.0.0.1:0", 1<<20
	jm, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- jm.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	c, err := client.New(jm.RESTAddr())
	if err != nil {
		t.Fatal(err)
	}
	return jm, c
}

func graphJSON(t *testing.T, parallelism int) []byte {
	t.Helper()
	g, err := jobgraph.Build("job", []jobgraph.StreamNode{
		{ID: 1, Kind: "source", Name: "src", Parallelism: parallelism, MaxParallelism: 128, OutType: "int"},
		{ID: 2, Kind: "sink", Name: "sink", Parallelism: parallelism, MaxParallelism: 128, OutType: "none"},
	}, []jobgraph.StreamEdge{{From: 1, To: 2, Partitioning: jobgraph.Hash, Type: "int"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSubmitValidation(t *testing.T) {
	_, c := startJM(t, time.Minute)
	ctx := context.Background()
	up, err := c.UploadArtifactReader(ctx, strings.NewReader("#!/bin/false\n"), -1)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(graphJSON(t, 2), []byte(`"parallelism": 2`), []byte(`"parallelism": 3`), 1)
	tests := []struct {
		name    string
		req     v1.JobSubmitRequest
		wantErr string
	}{
		{name: "ok", req: v1.JobSubmitRequest{JobGraph: graphJSON(t, 2), Artifact: up.ID}},
		{name: "unknown artifact", req: v1.JobSubmitRequest{JobGraph: graphJSON(t, 2), Artifact: strings.Repeat("a", 64)}, wantErr: "upload the program first"},
		{name: "tampered graph", req: v1.JobSubmitRequest{JobGraph: tampered, Artifact: up.ID}, wantErr: "fingerprint"},
		{name: "not a graph", req: v1.JobSubmitRequest{JobGraph: json.RawMessage(`{"name":"x"}`), Artifact: up.ID}, wantErr: "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := c.SubmitJob(ctx, tt.req)
			if tt.wantErr == "" {
				if err != nil || len(id) != 32 {
					t.Fatalf("SubmitJob = %q, %v", id, err)
				}
				return
			}
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("SubmitJob error = %v, want a 400 mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// TestJobLifecycleWithoutWorkers drives the job state machine through the
// RPC surface with a TaskManager played by the test: a job waits for
// slots, deploys when a TaskManager registers, finishes when its subtasks
// report FINISHED and frees its slots when the TaskManager confirms the
// release; a second job is cancelled while waiting.
func TestJobLifecycleWithoutWorkers(t *testing.T) {
	jm, c := startJM(t, time.Minute)
	ctx := context.Background()
	up, err := c.UploadArtifactReader(ctx, strings.NewReader("binary"), -1)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.SubmitJob(ctx, v1.JobSubmitRequest{JobGraph: graphJSON(t, 2), Artifact: up.ID})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Job(ctx, id); d.State != v1.JobCreated {
		t.Fatalf("job without slots is %s, want CREATED", d.State)
	}

	tm := connectFakeTM(t, jm, 2)
	rpc, stream, next := tm.rpc, tm.stream, tm.next
	if _, err := rpc.RegisterTaskManager(ctx, &rpcpb.RegisterTaskManagerRequest{ResourceId: "fake", Slots: 0}); err == nil || !strings.Contains(err.Error(), "numberOfTaskSlots") {
		t.Fatalf("register with 0 slots: %v", err)
	}
	dep := next("deploy").GetDeploy()
	if dep.JobId != id || dep.Slots != 2 || len(dep.SlotWorkers) != 2 {
		t.Fatalf("deploy = %+v", dep)
	}
	if d, _ := c.Job(ctx, id); d.State != v1.JobRunning || d.StatusCounts[v1.TaskDeploying] != 4 {
		t.Fatalf("deployed job = %s %v", d.State, d.StatusCounts)
	}
	// A second job waits: no slot is free.
	id2, err := c.SubmitJob(ctx, v1.JobSubmitRequest{JobGraph: graphJSON(t, 1), Artifact: up.ID})
	if err != nil {
		t.Fatal(err)
	}
	ready, err := rpc.WorkerReady(ctx, &rpcpb.WorkerReadyRequest{JobId: id, WorkerId: dep.WorkerId, DataAddress: "127.0.0.1:1", Fingerprint: dep.Fingerprint})
	if err != nil || ready.DataAddresses[dep.WorkerId] != "127.0.0.1:1" {
		t.Fatalf("WorkerReady = %v, %v", ready, err)
	}
	tm.finish(dep, 2, 2)
	if d, _ := c.Job(ctx, id); d.State != v1.JobFinished || d.Vertices[1].Metrics.ReadRecords != 10 {
		t.Fatalf("job = %s, vertices %+v", d.State, d.Vertices)
	}
	// Cancel the waiting job: no worker, so CANCELED at once.
	if err := c.CancelJob(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.Job(ctx, id2); d.State != v1.JobCanceled {
		t.Fatalf("cancelled waiting job = %s", d.State)
	}
	rel := next("release").GetRelease()
	if rel.JobId != id {
		t.Fatalf("release = %+v", rel)
	}
	if o, _ := c.Overview(ctx); o.SlotsAvailable != 0 {
		t.Fatalf("slots freed before the release was confirmed: %+v", o)
	}
	stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_JobReleased{JobReleased: &rpcpb.JobReleased{JobId: id}}})
	var o v1.Overview
	waitFor(t, 5*time.Second, "the slots freed and both jobs ended", func() bool {
		o, _ = c.Overview(ctx)
		return o.SlotsAvailable == 2 && o.JobsFinished == 1 && o.JobsCancelled == 1
	})
	// Unknown workers are refused.
	if _, err := rpc.ReportTasks(ctx, &rpcpb.ReportTasksRequest{JobId: id, WorkerId: "w9"}); err == nil {
		t.Fatal("report from an unknown worker accepted")
	}
}

// fakeTM is a TaskManager played by a test over the real RPC surface.
type fakeTM struct {
	rpc    rpcpb.JobManagerClient
	stream rpcpb.JobManager_ConnectClient
	msgs   chan *rpcpb.JobManagerMessage
	t      *testing.T
	// stop ends the session, as the TaskManager's death does.
	stop context.CancelFunc
}

// connectFakeTM registers a TaskManager with slots slots and opens its
// session.
func connectFakeTM(t *testing.T, jm *JobManager, slots int32) *fakeTM {
	t.Helper()
	ctx := context.Background()
	conn, err := grpc.NewClient(jm.RPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rpc := rpcpb.NewJobManagerClient(conn)
	reg, err := rpc.RegisterTaskManager(ctx, &rpcpb.RegisterTaskManagerRequest{ResourceId: "fake", Slots: slots})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	stream, err := rpc.Connect(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_Hello{Hello: &rpcpb.Hello{TaskmanagerId: reg.TaskmanagerId}}}); err != nil {
		t.Fatal(err)
	}
	tm := &fakeTM{rpc: rpc, stream: stream, msgs: make(chan *rpcpb.JobManagerMessage, 16), t: t, stop: stop}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				close(tm.msgs)
				return
			}
			tm.msgs <- m
		}
	}()
	return tm
}

// next returns the next message of kind ("deploy", "release" or "shutdown"),
// answering every message with a heartbeat to keep the session.
func (tm *fakeTM) next(kind string) *rpcpb.JobManagerMessage {
	tm.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-tm.msgs:
			if !ok {
				tm.t.Fatal("session ended")
			}
			tm.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_Heartbeat{Heartbeat: &rpcpb.Heartbeat{}}})
			switch {
			case kind == "deploy" && m.GetDeploy() != nil, kind == "release" && m.GetRelease() != nil,
				kind == "shutdown" && m.GetShutdown() != nil:
				return m
			}
		case <-timeout:
			tm.t.Fatalf("no %s message", kind)
		}
	}
}

// finish reports every subtask of a deployed job FINISHED.
func (tm *fakeTM) finish(dep *rpcpb.DeployWorker, vertices, parallelism int) {
	tm.t.Helper()
	var tasks []*rpcpb.TaskStatus
	for v := range vertices {
		for s := range parallelism {
			tasks = append(tasks, &rpcpb.TaskStatus{Vertex: int32(v), Subtask: int32(s), State: v1.TaskFinished, RecordsIn: 5})
		}
	}
	if _, err := tm.rpc.ReportTasks(context.Background(), &rpcpb.ReportTasksRequest{JobId: dep.JobId, WorkerId: dep.WorkerId, Tasks: tasks}); err != nil {
		tm.t.Fatal(err)
	}
}

// TestPerJobResultLinger: a per-job JobManager waits after its job's end
// for a client to fetch the result, and no longer once one has, even if
// the client fetched it before the job's workers were gone.
func TestPerJobResultLinger(t *testing.T) {
	for _, acks := range []int{0, 2} {
		t.Run(fmt.Sprintf("acks=%d", acks), func(t *testing.T) { testPerJobResultLinger(t, acks) })
	}
}

// testPerJobResultLinger runs TestPerJobResultLinger with ResultAcks
// acks: with 2 (a Kubernetes per-job cluster's, whose CLI acknowledges
// too) the first acknowledgement does not end the wait.
func testPerJobResultLinger(t *testing.T, acks int) {
	jm, err := New(Config{RPCAddress: "127.0.0.1:0", RESTAddress: "127.0.0.1:0", HeartbeatInterval: 50 * time.Millisecond,
		HeartbeatTimeout: time.Second, SlotRequestTimeout: time.Minute, MaxArtifactBytes: 1 << 20,
		ExitAfterJob: true, ResultLinger: time.Minute, ResultAcks: acks})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- jm.Run(ctx) }()
	c, err := client.New(jm.RESTAddr())
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.UploadArtifactReader(ctx, strings.NewReader("binary"), -1)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.SubmitJob(ctx, v1.JobSubmitRequest{JobGraph: graphJSON(t, 1), Artifact: up.ID})
	if err != nil {
		t.Fatal(err)
	}
	tm := connectFakeTM(t, jm, 1)
	dep := tm.next("deploy").GetDeploy()
	if _, err := tm.rpc.WorkerReady(ctx, &rpcpb.WorkerReadyRequest{JobId: id, WorkerId: dep.WorkerId, DataAddress: "127.0.0.1:1", Fingerprint: dep.Fingerprint}); err != nil {
		t.Fatal(err)
	}
	tm.finish(dep, 2, 1)
	// The client has the result while the worker is still being released.
	if d, err := c.Job(ctx, id); err != nil || d.State != v1.JobFinished {
		t.Fatalf("job = %+v, %v", d, err)
	}
	tm.next("release")
	tm.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_JobReleased{JobReleased: &rpcpb.JobReleased{JobId: id}}})
	waitFor(t, 5*time.Second, "the job's worker to be released", func() bool {
		jm.mu.Lock()
		defer jm.mu.Unlock()
		return closed(jm.mu.jobEnded)
	})
	// GET requests have no side effects: reading the result, again, does
	// not end the linger; only the client's acknowledgement does.
	if _, err := c.Job(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.JobExceptions(ctx, id); err != nil {
		t.Fatal(err)
	}
	jm.mu.Lock()
	servedByGET := closed(jm.mu.resultServed)
	jm.mu.Unlock()
	if servedByGET {
		t.Fatal("GET /v1/jobs/{id} ended the per-job cluster's wait for its client: a GET had a side effect")
	}
	select {
	case err := <-done:
		t.Fatalf("the JobManager exited before its client acknowledged the result: %v", err)
	default:
	}
	for range acks - 1 {
		if err := c.AcknowledgeResult(ctx, id); err != nil {
			t.Fatal(err)
		}
		jm.mu.Lock()
		served := closed(jm.mu.resultServed)
		jm.mu.Unlock()
		if served {
			t.Fatalf("one acknowledgement ended the wait for %d", acks)
		}
	}
	if err := c.AcknowledgeResult(ctx, id); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the per-job JobManager still lingers although its client acknowledged the result")
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConfigFrom(t *testing.T) {
	var c config.Config
	c.Set(KeyHeartbeatInterval, "5 s")
	c.Set(KeyHeartbeatTimeout, "1 s")
	if _, err := ConfigFrom(c); err == nil || !strings.Contains(err.Error(), "must be longer") {
		t.Fatalf("timeout shorter than interval: %v", err)
	}
	c.Set(KeyHeartbeatTimeout, "30 s")
	c.Set(KeyRPCPort, "7000")
	cfg, err := ConfigFrom(c)
	if err != nil || cfg.RPCAddress != "localhost:7000" || cfg.RESTAddress != "localhost:8081" || cfg.HeartbeatTimeout != 30*time.Second {
		t.Fatalf("ConfigFrom = %+v, %v", cfg, err)
	}
	if cfg.KeepAfterApplication {
		t.Error("an application cluster stays after its application by default; Flink's shuts down")
	}
	c.Set(KeyShutdownOnApplicationFinish, "false")
	if cfg, err := ConfigFrom(c); err != nil || !cfg.KeepAfterApplication {
		t.Errorf("%s=false: KeepAfterApplication = %v, %v", KeyShutdownOnApplicationFinish, cfg.KeepAfterApplication, err)
	}
	c.Set(KeyShutdownOnApplicationFinish, "later")
	if _, err := ConfigFrom(c); err == nil || !strings.Contains(err.Error(), KeyShutdownOnApplicationFinish) {
		t.Errorf("malformed %s: %v", KeyShutdownOnApplicationFinish, err)
	}
}
