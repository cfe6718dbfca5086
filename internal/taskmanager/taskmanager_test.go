package taskmanager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spate-dev/spate/internal/deployment"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// The tests in this file run a real TaskManager against a fake JobManager
// served on real TCP (gRPC for the session and the artifact), with
// shell scripts as the workers' programs.

// fakeJM is a JobManager that registers one TaskManager, answers its
// heartbeats, sends it what the test puts in toTM and hands the test every
// other message the TaskManager sends.
type fakeJM struct {
	rpcpb.UnimplementedJobManagerServer
	rest   string
	toTM   chan *rpcpb.JobManagerMessage
	fromTM chan *rpcpb.TaskManagerMessage
}

func (f *fakeJM) RegisterTaskManager(ctx context.Context, req *rpcpb.RegisterTaskManagerRequest) (*rpcpb.RegisterTaskManagerResponse, error) {
	return &rpcpb.RegisterTaskManagerResponse{TaskmanagerId: "tm-1", HeartbeatIntervalMs: 50, HeartbeatTimeoutMs: 5000, RestAddress: f.rest}, nil
}

func (f *fakeJM) Connect(stream rpcpb.JobManager_ConnectServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	beats := make(chan struct{}, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			if m.GetHeartbeat() != nil {
				select {
				case beats <- struct{}{}:
				default:
				}
				continue
			}
			select {
			case f.fromTM <- m:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	for {
		var m *rpcpb.JobManagerMessage
		select {
		case <-stream.Context().Done():
			return nil
		case <-beats:
			m = &rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Heartbeat{Heartbeat: &rpcpb.Heartbeat{}}}
		case m = <-f.toTM:
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
}

// fakeArtifacts serves one artifact to the TaskManager.
type fakeArtifacts struct {
	rpcpb.UnimplementedClusterSecurityServer
	id   string
	data []byte
}

func (f fakeArtifacts) FetchArtifact(req *rpcpb.FetchArtifactRequest, stream rpcpb.ClusterSecurity_FetchArtifactServer) error {
	if req.Artifact != f.id {
		return status.Errorf(codes.NotFound, "no artifact %s", req.Artifact)
	}
	return stream.Send(&rpcpb.ArtifactChunk{Data: f.data, Size: int64(len(f.data))})
}

// syncBuffer is an io.Writer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a TaskManager under test with its fake JobManager.
type harness struct {
	jm       *fakeJM
	tm       *TaskManager
	out      *syncBuffer
	artifact string
}

// startTM runs a TaskManager with cfg's slots and memory against a fake
// JobManager whose blob store holds script as the program.
func startTM(t *testing.T, cfg Config, script string) *harness {
	t.Helper()
	sum := sha256.Sum256([]byte(script))
	h := &harness{out: &syncBuffer{}, artifact: hex.EncodeToString(sum[:])}
	h.jm = &fakeJM{toTM: make(chan *rpcpb.JobManagerMessage, 16), fromTM: make(chan *rpcpb.TaskManagerMessage, 16)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rpcpb.RegisterJobManagerServer(srv, h.jm)
	rpcpb.RegisterClusterSecurityServer(srv, fakeArtifacts{id: h.artifact, data: []byte(script)})
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(lis) }()
	cfg.JobManager, cfg.WorkDir, cfg.Output = lis.Addr().String(), t.TempDir(), h.out
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h.tm, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); h.tm.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ran
		srv.Stop()
		<-served
	})
	return h
}

// deploy asks the TaskManager to start worker w-1 of job j1 with args and
// env.
func (h *harness) deploy(slots int, args []string, env map[string]string) {
	h.jm.toTM <- &rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Deploy{Deploy: &rpcpb.DeployWorker{
		JobId: "j1", JobName: "test", WorkerId: "w-1", Artifact: h.artifact, Args: args, Env: env,
		Fingerprint: "f1", SlotWorkers: []string{"w-1"}, Slots: int32(slots),
	}}}
}

// next returns the TaskManager's next message other than a heartbeat.
func (h *harness) next(t *testing.T, within time.Duration) *rpcpb.TaskManagerMessage {
	t.Helper()
	select {
	case m := <-h.jm.fromTM:
		return m
	case <-time.After(within):
		t.Fatalf("no message from the TaskManager within %v; its output:\n%.4000s", within, h.out.String())
		return nil
	}
}

// lines returns job j1's output lines, untagged, in order.
func (h *harness) lines() []string {
	var lines []string
	for _, l := range strings.Split(h.out.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, "[job j1 w-1] "); ok {
			lines = append(lines, rest)
		}
	}
	return lines
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid has exited (a zombie counts).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(after, "Z") || strings.HasPrefix(after, "X")
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, 10*time.Second, "the pid in "+path, func() bool {
		b, _ := os.ReadFile(path)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return pid > 0
	})
	return pid
}

// groupScript is a worker that prints its deployment and memory limit,
// starts a child that shares its output, and waits.
const groupScript = `#!/bin/sh
cat "$SPATE_WORKER_DEPLOYMENT"; echo
echo "GOMEMLIMIT=$GOMEMLIMIT TOKEN=$TOKEN"
sleep 30 &
echo $! > "$CHILD_PID"
echo $$ > "$SELF_PID"
wait
`

// TestReleaseStopsWorkerGroup deploys a worker that starts a child, then
// releases the job: worker and child are stopped together, at once, and
// the release is confirmed. The worker got its deployment, the job's
// environment and its share of the TaskManager's memory.
func TestReleaseStopsWorkerGroup(t *testing.T) {
	h := startTM(t, Config{Slots: 4, ProcessMemory: 400 << 20, StopGrace: 20 * time.Second}, groupScript)
	dir := t.TempDir()
	childPid, selfPid := filepath.Join(dir, "child"), filepath.Join(dir, "self")
	h.deploy(2, nil, map[string]string{"TOKEN": "t1", "CHILD_PID": childPid, "SELF_PID": selfPid})
	child, self := readPid(t, childPid), readPid(t, selfPid)
	waitFor(t, 10*time.Second, "the worker's output", func() bool { return strings.Contains(h.out.String(), "GOMEMLIMIT=") })

	// What the TaskManager told the worker.
	var dep deployment.Deployment
	text := strings.Join(h.lines(), "\n")
	js, _, _ := strings.Cut(text, "\nGOMEMLIMIT=")
	if err := json.Unmarshal([]byte(js), &dep); err != nil {
		t.Fatalf("the worker's deployment: %v\n%s", err, text)
	}
	if dep.JobID != "j1" || dep.WorkerID != "w-1" || dep.Fingerprint != "f1" || dep.HeartbeatInterval != 50*time.Millisecond || dep.HeartbeatTimeout != 5*time.Second || !strings.Contains(dep.TaskManager, "tm-1") {
		t.Errorf("deployment = %+v", dep)
	}
	// 2 of 4 slots: half of 400 MiB, of which GOMEMLIMIT is 90%.
	if want := fmt.Sprintf("GOMEMLIMIT=%d TOKEN=t1", (200<<20)*9/10); !strings.Contains(text, want) {
		t.Errorf("the worker's environment lacks %q:\n%s", want, text)
	}

	began := time.Now()
	h.jm.toTM <- &rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Release{Release: &rpcpb.ReleaseJob{JobId: "j1", Reason: "test"}}}
	m := h.next(t, 15*time.Second)
	if r := m.GetJobReleased(); r == nil || r.JobId != "j1" {
		t.Fatalf("got %v, want JobReleased for j1", m)
	}
	// SIGTERM reached the group: nothing waited for the 20 s grace.
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("release took %v", took)
	}
	if !processGone(self) || !processGone(child) {
		t.Errorf("after release: worker gone %v, its child gone %v", processGone(self), processGone(child))
	}
	if entries, _ := os.ReadDir(filepath.Join(h.tm.WorkDir(), "jobs")); len(entries) != 0 {
		t.Errorf("the job's directory is left: %v", entries)
	}
}

// exitScript prints a long line and more, then fails.
const exitScript = `#!/bin/sh
head -c 200000 /dev/zero | tr '\0' 'a'
echo
echo after
echo boom >&2
exit 3
`

// TestWorkerExitReported runs a worker that prints a line of 200,000
// bytes, then more, then fails: every byte reaches the output (the long
// line in pieces of maxLineBytes) and the exit is reported with its status
// and last error line.
func TestWorkerExitReported(t *testing.T) {
	h := startTM(t, Config{Slots: 1}, exitScript)
	h.deploy(1, nil, nil)
	m := h.next(t, 15*time.Second)
	e := m.GetWorkerExited()
	if e == nil || e.JobId != "j1" || e.WorkerId != "w-1" || e.Expected || e.ExitCode != 3 {
		t.Fatalf("got %v, want an unexpected WorkerExited of j1/w-1 with code 3", m)
	}
	if !strings.Contains(e.Reason, "exit status 3") || !strings.Contains(e.Reason, "boom") {
		t.Errorf("reason %q lacks the status or the last error line", e.Reason)
	}
	// Standard error is another pipe: its line may come anywhere.
	var lines []string
	boom := 0
	for _, l := range h.lines() {
		if l == "boom" {
			boom++
		} else {
			lines = append(lines, l)
		}
	}
	want := []int{maxLineBytes, maxLineBytes, maxLineBytes, 200000 - 3*maxLineBytes}
	if len(lines) != len(want)+1 || boom != 1 {
		t.Fatalf("got %d lines and %d boom, want %d and 1", len(lines), boom, len(want)+1)
	}
	for i, n := range want {
		if lines[i] != strings.Repeat("a", n) {
			t.Errorf("piece %d of the long line has %d bytes, want %d a's", i, len(lines[i]), n)
		}
	}
	if lines[4] != "after" {
		t.Errorf("the line after the long line is %.100q", lines[4])
	}
}

// orphanScript exits at once, leaving a child that holds its output.
const orphanScript = `#!/bin/sh
sleep 30 &
echo $! > "$CHILD_PID"
echo bye
`

// TestWorkerChildHoldsOutput runs a worker that exits leaving a child with
// its standard output: the TaskManager reports the exit within pipeGrace,
// not when the child ends, and kills the child with the worker's group.
func TestWorkerChildHoldsOutput(t *testing.T) {
	h := startTM(t, Config{Slots: 1}, orphanScript)
	childPid := filepath.Join(t.TempDir(), "child")
	began := time.Now()
	h.deploy(1, nil, map[string]string{"CHILD_PID": childPid})
	e := h.next(t, 15*time.Second).GetWorkerExited()
	if e == nil {
		t.Fatal("want WorkerExited")
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("the exit was reported after %v: the TaskManager waited for the child", took)
	}
	if !strings.Contains(e.Reason, "held its output open") {
		t.Errorf("reason %q does not say a child held the output", e.Reason)
	}
	child := readPid(t, childPid)
	waitFor(t, 5*time.Second, "the child to be killed with the group", func() bool { return processGone(child) })
	if got := h.lines(); len(got) != 1 || got[0] != "bye" {
		t.Errorf("output %q, want bye", got)
	}
}

// TestWorkerMemoryLimit runs a worker over its memory limit: it is killed,
// and the exit names the limit and its key.
func TestWorkerMemoryLimit(t *testing.T) {
	h := startTM(t, Config{Slots: 1, WorkerMemory: 1 << 10}, groupScript)
	dir := t.TempDir()
	h.deploy(1, nil, map[string]string{"CHILD_PID": filepath.Join(dir, "c"), "SELF_PID": filepath.Join(dir, "s")})
	e := h.next(t, 15*time.Second).GetWorkerExited()
	if e == nil || !strings.Contains(e.Reason, "over the limit of 0 MiB ("+KeyWorkerMemory+")") {
		t.Fatalf("got %v, want an exit over the limit naming %s", e, KeyWorkerMemory)
	}
}
