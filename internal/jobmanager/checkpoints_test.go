package jobmanager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// The tests below drive the JobManager's side of fault tolerance through
// its real gRPC and REST servers, with test clients in place of
// TaskManagers and workers (the worker side is the runtime's; the
// end-to-end tests with real processes live in cmd/spate).

// ckptWorker is a test client acting as one deployed worker.
type ckptWorker struct {
	t      *testing.T
	dep    *rpcpb.DeployWorker
	rpc    rpcpb.JobManagerClient
	ckpt   rpcpb.CheckpointCoordinatorClient
	orders chan *rpcpb.CheckpointOrder
	ended  chan error
	cancel context.CancelFunc
}

func dialJM(t *testing.T, jm *JobManager) (rpcpb.JobManagerClient, rpcpb.CheckpointCoordinatorClient) {
	t.Helper()
	conn, err := grpc.NewClient(jm.RPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return rpcpb.NewJobManagerClient(conn), rpcpb.NewCheckpointCoordinatorClient(conn)
}

// startWorker makes a worker of dep: it subscribes to its checkpoint
// orders. Call ready once every worker is started.
func startWorker(t *testing.T, jm *JobManager, dep *rpcpb.DeployWorker) *ckptWorker {
	t.Helper()
	rpc, ck := dialJM(t, jm)
	w := &ckptWorker{t: t, dep: dep, rpc: rpc, ckpt: ck, orders: make(chan *rpcpb.CheckpointOrder, 64), ended: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	t.Cleanup(cancel)
	stream, err := ck.Subscribe(ctx, &rpcpb.CheckpointSubscribeRequest{JobId: dep.JobId, WorkerId: dep.WorkerId, Attempt: dep.Attempt})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			o, err := stream.Recv()
			if err != nil {
				w.ended <- err
				return
			}
			w.orders <- o
		}
	}()
	return w
}

// slots are the slots (subtask indexes) of the worker.
func (w *ckptWorker) slots() []int {
	var out []int
	for s, id := range w.dep.SlotWorkers {
		if id == w.dep.WorkerId {
			out = append(out, s)
		}
	}
	return out
}

// report reports the worker's subtasks of both vertices in state.
func (w *ckptWorker) report(state string) error {
	var tasks []*rpcpb.TaskStatus
	for v := range 2 {
		for _, s := range w.slots() {
			tasks = append(tasks, &rpcpb.TaskStatus{Vertex: int32(v), Subtask: int32(s), State: state, Attempt: w.dep.Attempt})
		}
	}
	_, err := w.rpc.ReportTasks(context.Background(), &rpcpb.ReportTasksRequest{JobId: w.dep.JobId, WorkerId: w.dep.WorkerId, Attempt: w.dep.Attempt, Tasks: tasks})
	return err
}

// next returns the worker's next order.
func (w *ckptWorker) next() *rpcpb.CheckpointOrder {
	w.t.Helper()
	select {
	case o := <-w.orders:
		return o
	case err := <-w.ended:
		w.t.Fatalf("worker %s: order stream ended: %v", w.dep.WorkerId, err)
	case <-time.After(5 * time.Second):
		w.t.Fatalf("worker %s: no checkpoint order", w.dep.WorkerId)
	}
	return nil
}

// ack writes a state file for each of the worker's subtasks at trigger's
// location and acknowledges.
func (w *ckptWorker) ack(tr *rpcpb.TriggerCheckpoint, value string) {
	w.t.Helper()
	s, err := storage.Open(tr.Location)
	if err != nil {
		w.t.Fatal(err)
	}
	for v := range 2 {
		for _, sub := range w.slots() {
			name := fmt.Sprintf("%d-%d-%d-state", v, sub, w.dep.Attempt)
			wc, err := s.Create(context.Background(), name)
			if err != nil {
				w.t.Fatal(err)
			}
			data := []byte(fmt.Sprintf("%s of %d/%d", value, v, sub))
			wc.Write(data)
			if err := wc.Close(); err != nil {
				w.t.Fatal(err)
			}
			_, err = w.ckpt.AcknowledgeCheckpoint(context.Background(), &rpcpb.AcknowledgeCheckpointRequest{
				JobId: w.dep.JobId, WorkerId: w.dep.WorkerId, Attempt: w.dep.Attempt, Vertex: int32(v), Subtask: int32(sub),
				CheckpointId: tr.CheckpointId, SyncDurationMs: 1, AsyncDurationMs: 3,
				States: []*rpcpb.StateHandle{{Operator: int32(v + 1), Kind: "keyed", Url: s.URL(name), Size: int64(len(data))}},
			})
			if err != nil {
				w.t.Fatalf("ack of checkpoint %d by %d/%d: %v", tr.CheckpointId, v, sub, err)
			}
		}
	}
}

// ready reports every worker ready (WorkerReady answers when all are).
func ready(t *testing.T, ws ...*ckptWorker) {
	t.Helper()
	errs := make(chan error, len(ws))
	for _, w := range ws {
		go func() {
			_, err := w.rpc.WorkerReady(context.Background(), &rpcpb.WorkerReadyRequest{JobId: w.dep.JobId, WorkerId: w.dep.WorkerId,
				DataAddress: "127.0.0.1:1", Fingerprint: w.dep.Fingerprint, Attempt: w.dep.Attempt})
			errs <- err
		}()
	}
	for range ws {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func checkpointSettings(t *testing.T, dir string, kv ...string) config.Config {
	var c config.Config
	c.Set(checkpoint.KeyInterval, "1 s")
	c.Set(checkpoint.KeyDir, "file://"+dir)
	for i := 0; i+1 < len(kv); i += 2 {
		c.Set(kv[i], kv[i+1])
	}
	return c
}

func jobState(jm *JobManager, id string) string {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	return jm.mu.jobs[JobID(id)].status
}

// TestCheckpointAndFailover: a job of two workers takes a checkpoint
// (trigger at the sources, acks of every subtask, metadata written, every
// worker notified), loses a TaskManager, restarts (RESTARTING, numRestarts
// 1, attempt 2) restoring that checkpoint, refuses the old attempt's
// reports and acknowledgements, and finishes. The REST API shows it all.
func TestCheckpointAndFailover(t *testing.T) {
	dir := t.TempDir()
	jm, c, clock := startJMWith(t, Config{Settings: checkpointSettings(t, dir,
		"restart-strategy.type", "fixed-delay", "restart-strategy.fixed-delay.delay", "2 s")})
	ctx := context.Background()
	id := submit(t, c, upload(t, c), 2)
	tm1, tm2 := connectFakeTM(t, jm, 1), connectFakeTM(t, jm, 1)
	d1, d2 := tm1.next("deploy").GetDeploy(), tm2.next("deploy").GetDeploy()
	if d1.Attempt != 1 || d1.Checkpointing == nil || d1.Checkpointing.Mode != rpcpb.CheckpointMode_EXACTLY_ONCE || d1.Restore != nil {
		t.Fatalf("first deployment: attempt %d, checkpointing %v, restore %v", d1.Attempt, d1.Checkpointing, d1.Restore)
	}
	w1, w2 := startWorker(t, jm, d1), startWorker(t, jm, d2)
	ready(t, w1, w2)
	for _, w := range []*ckptWorker{w1, w2} {
		if err := w.report(v1.TaskRunning); err != nil {
			t.Fatal(err)
		}
	}

	// Checkpoint 1: triggered at each worker's source subtask (vertex 0).
	tick(jm, clock, time.Second)
	tr1, tr2 := w1.next().GetTrigger(), w2.next().GetTrigger()
	if tr1 == nil || tr2 == nil || tr1.CheckpointId != 1 || len(tr1.Subtasks) != 1 || tr1.Subtasks[0].Vertex != 0 {
		t.Fatalf("triggers: %v, %v; want checkpoint 1 at each worker's source subtask", tr1, tr2)
	}
	if !strings.HasPrefix(tr1.Location, "file://"+dir+"/"+id+"/chk-1") {
		t.Fatalf("trigger location %s is not %s/%s/chk-1", tr1.Location, dir, id)
	}
	w1.ack(tr1, "one")
	if s, _ := c.JobCheckpoints(ctx, id); s.Counts.InProgress != 1 || s.Counts.Completed != 0 {
		t.Fatalf("after half the acks: %+v", s.Counts)
	}
	w2.ack(tr2, "one")
	for _, w := range []*ckptWorker{w1, w2} {
		if o := w.next().GetComplete(); o == nil || o.CheckpointId != 1 {
			t.Fatalf("worker %s: want notify-complete of checkpoint 1, got %v", w.dep.WorkerId, o)
		}
	}
	meta := filepath.Join(dir, id, "chk-1", storage.MetadataName)
	if _, err := os.Stat(meta); err != nil {
		t.Fatalf("no _metadata after completion: %v", err)
	}
	stats, err := c.JobCheckpoints(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Counts.Completed != 1 || stats.Latest.Completed == nil || stats.Latest.Completed.ID != 1 ||
		stats.Latest.Completed.NumAcknowledgedSubtasks != 4 || !strings.HasSuffix(stats.Latest.Completed.ExternalPath, "chk-1/_metadata") ||
		len(stats.History) != 1 || stats.Summary.StateSize.Max == 0 {
		t.Fatalf("checkpoint statistics after checkpoint 1: %+v", stats)
	}
	cc, err := c.JobCheckpointConfig(ctx, id)
	if err != nil || cc.Mode != "exactly_once" || cc.Interval != 1000 || cc.Timeout != 600000 || cc.MaxConcurrent != 1 || cc.NumRetained != 1 ||
		!strings.HasPrefix(cc.RestartStrategy, "fixed-delay") {
		t.Fatalf("checkpoint config = %+v, %v", cc, err)
	}

	// TaskManager 2 is lost: the job restarts.
	tick(jm, clock, time.Second)
	tr1, tr2 = w1.next().GetTrigger(), w2.next().GetTrigger() // checkpoint 2 pending
	tm2.stop()
	waitFor(t, 5*time.Second, "RESTARTING", func() bool { return jobState(jm, id) == v1.JobRestarting })
	if d, _ := c.Job(ctx, id); d.State != v1.JobRestarting {
		t.Fatalf("REST shows %s, want RESTARTING", d.State)
	}
	rel := tm1.next("release").GetRelease()
	if rel.Attempt != 1 {
		t.Fatalf("release of attempt %d, want 1", rel.Attempt)
	}
	for _, w := range []*ckptWorker{w1, w2} {
		select {
		case err := <-w.ended:
			if status.Code(err) != codes.FailedPrecondition && status.Code(err) != codes.Canceled && status.Code(err) != codes.Unavailable {
				t.Errorf("worker %s: order stream ended with %v", w.dep.WorkerId, err)
			}
		case o := <-w.orders:
			if o.GetAborted() == nil {
				t.Errorf("worker %s got %v after the failover, want at most the abort of checkpoint 2", w.dep.WorkerId, o)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("worker %s: order stream still open after the failover", w.dep.WorkerId)
		}
	}
	tm1.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_JobReleased{JobReleased: &rpcpb.JobReleased{JobId: id, Attempt: 1}}})
	tm3 := connectFakeTM(t, jm, 1)
	// The backoff (2 s) holds the redeployment.
	tick(jm, clock, time.Second)
	jm.mu.Lock()
	queued := jm.mu.jobs[JobID(id)].ft.queued
	jm.mu.Unlock()
	if queued {
		t.Fatal("redeployment queued before the restart delay passed")
	}
	tick(jm, clock, time.Second)
	n1, n3 := tm1.next("deploy").GetDeploy(), tm3.next("deploy").GetDeploy()
	for _, d := range []*rpcpb.DeployWorker{n1, n3} {
		if d.Attempt != 2 || d.Restore == nil || d.Restore.CheckpointId != 1 || !strings.HasSuffix(d.Restore.Metadata, "chk-1/_metadata") {
			t.Fatalf("redeployment %s: attempt %d, restore %v; want attempt 2 restoring checkpoint 1", d.WorkerId, d.Attempt, d.Restore)
		}
		if len(d.Restore.Subtasks) != 2 {
			t.Fatalf("redeployment %s restores %d subtasks, want its 2: %v", d.WorkerId, len(d.Restore.Subtasks), d.Restore.Subtasks)
		}
		for _, st := range d.Restore.Subtasks {
			if d.SlotWorkers[st.Subtask] != d.WorkerId || len(st.States) != 1 || st.States[0].Sha256 == "" {
				t.Fatalf("redeployment %s restores %v", d.WorkerId, st)
			}
		}
	}

	// Zombies of attempt 1 are refused.
	if err := w1.report(v1.TaskFailed); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a report of attempt 1 after the restart: %v, want FailedPrecondition", err)
	}
	_, err = w2.ckpt.AcknowledgeCheckpoint(ctx, &rpcpb.AcknowledgeCheckpointRequest{JobId: id, WorkerId: d2.WorkerId, Attempt: 1, CheckpointId: tr2.CheckpointId})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("an acknowledgement of attempt 1 after the restart: %v, want FailedPrecondition", err)
	}
	hb, err := w1.rpc.WorkerHeartbeat(ctx, &rpcpb.WorkerHeartbeatRequest{JobId: id, WorkerId: d1.WorkerId, Attempt: 1})
	if err != nil || hb.Running {
		t.Fatalf("heartbeat of attempt 1: %+v, %v; want running=false", hb, err)
	}
	if _, err := w1.ckpt.Subscribe(ctx, &rpcpb.CheckpointSubscribeRequest{JobId: id, WorkerId: d1.WorkerId, Attempt: 1}); err != nil {
		t.Fatal(err) // the refusal comes on the stream
	}

	v1w, v3w := startWorker(t, jm, n1), startWorker(t, jm, n3)
	ready(t, v1w, v3w)
	for _, w := range []*ckptWorker{v1w, v3w} {
		if err := w.report(v1.TaskRunning); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "RUNNING again", func() bool { return jobState(jm, id) == v1.JobRunning })
	stats, _ = c.JobCheckpoints(ctx, id)
	if stats.NumRestarts != 1 || stats.Latest.Restored == nil || stats.Latest.Restored.ID != 1 {
		t.Fatalf("after the restart: numRestarts %d, restored %+v", stats.NumRestarts, stats.Latest.Restored)
	}
	if d, _ := c.Job(ctx, id); d.NumRestarts != 1 {
		t.Fatalf("job details: numRestarts %d, want 1", d.NumRestarts)
	}
	// The job metrics (REST /v1/jobs/{id}/metrics, Prometheus) read the
	// same cores.
	if s := jm.jobStats(JobID(id)); s.Restarts != 1 || s.CompletedCheckpoints != 1 || s.LastCheckpointSize == 0 || s.LastCheckpointDuration < 0 {
		t.Fatalf("job metrics after the restart: %+v; want 1 restart, 1 completed checkpoint with its size (the fake clock stood still: duration 0)", s)
	}
	// The next checkpoint of attempt 2 follows the restored one.
	tick(jm, clock, time.Second)
	if tr := v1w.next().GetTrigger(); tr == nil || tr.Attempt != 2 || tr.CheckpointId <= 2 {
		t.Fatalf("trigger after the restart: %v", tr)
	}
	for _, w := range []*ckptWorker{v1w, v3w} {
		if err := w.report(v1.TaskFinished); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "FINISHED", func() bool { return jobState(jm, id) == v1.JobFinished })
	ex, err := c.JobExceptions(ctx, id)
	if err != nil || !strings.Contains(ex.RootException, "TaskManager") {
		t.Fatalf("exceptions: %+v, %v; want the lost TaskManager as root", ex, err)
	}
}

// TestRestartsExhausted: with fixed-delay and one attempt, the second
// failure fails the job; both failures are in the exception history.
func TestRestartsExhausted(t *testing.T) {
	dir := t.TempDir()
	jm, c, clock := startJMWith(t, Config{Settings: checkpointSettings(t, dir,
		"restart-strategy.type", "fixed-delay", "restart-strategy.fixed-delay.attempts", "1", "restart-strategy.fixed-delay.delay", "0 s")})
	ctx := context.Background()
	id := submit(t, c, upload(t, c), 1)
	tm := connectFakeTM(t, jm, 1)
	fail := func(attempt int64, msg string) {
		t.Helper()
		d := tm.next("deploy").GetDeploy()
		if d.Attempt != attempt {
			t.Fatalf("deployment of attempt %d, want %d", d.Attempt, attempt)
		}
		w := startWorker(t, jm, d)
		ready(t, w)
		_, err := w.rpc.ReportTasks(ctx, &rpcpb.ReportTasksRequest{JobId: id, WorkerId: d.WorkerId, Attempt: d.Attempt,
			Tasks: []*rpcpb.TaskStatus{{Vertex: 1, Subtask: 0, State: v1.TaskFailed, Error: msg}}})
		if err != nil {
			t.Fatal(err)
		}
		tm.next("release")
		tm.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_JobReleased{JobReleased: &rpcpb.JobReleased{JobId: id, Attempt: attempt}}})
	}
	fail(1, "first failure")
	waitFor(t, 5*time.Second, "the restart", func() bool {
		tick(jm, clock, 10*time.Millisecond)
		jm.mu.Lock()
		defer jm.mu.Unlock()
		return jm.mu.jobs[JobID(id)].attempt == 2
	})
	fail(2, "second failure")
	waitFor(t, 5*time.Second, "FAILED", func() bool { return jobState(jm, id) == v1.JobFailed })
	ex, err := c.JobExceptions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ex.RootException, "second failure") || len(ex.History.Entries) < 2 {
		t.Fatalf("exceptions = %+v; want the second failure as root and both in the history", ex)
	}
	if d, _ := c.Job(ctx, id); d.NumRestarts != 1 {
		t.Fatalf("numRestarts %d, want 1", d.NumRestarts)
	}
}

// TestRestoreSkipsDamagedCheckpoint: the latest checkpoint's state file is
// corrupted before a restart: the job restarts from the previous one, and
// the exception history names the damaged file.
func TestRestoreSkipsDamagedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	jm, c, clock := startJMWith(t, Config{Settings: checkpointSettings(t, dir, checkpoint.KeyNumRetained, "2",
		"restart-strategy.type", "fixed-delay", "restart-strategy.fixed-delay.delay", "0 s")})
	ctx := context.Background()
	id := submit(t, c, upload(t, c), 1)
	tm := connectFakeTM(t, jm, 1)
	d := tm.next("deploy").GetDeploy()
	w := startWorker(t, jm, d)
	ready(t, w)
	if err := w.report(v1.TaskRunning); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 2; n++ {
		tick(jm, clock, time.Second)
		tr := w.next().GetTrigger()
		w.ack(tr, fmt.Sprintf("state %d", n))
		if o := w.next().GetComplete(); o == nil || o.CheckpointId != int64(n) {
			t.Fatalf("want notify-complete of checkpoint %d, got %v", n, o)
		}
	}
	damaged := filepath.Join(dir, id, "chk-2", "1-0-1-state")
	b, err := os.ReadFile(damaged)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	os.WriteFile(damaged, b, 0o600)
	if err := w.report(v1.TaskFailed); err != nil {
		t.Fatal(err)
	}
	tm.next("release")
	tm.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_JobReleased{JobReleased: &rpcpb.JobReleased{JobId: id, Attempt: 1}}})
	var n *rpcpb.DeployWorker
	for n == nil {
		tick(jm, clock, 10*time.Millisecond)
		select {
		case m := <-tm.msgs:
			n = m.GetDeploy()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if n.Restore == nil || n.Restore.CheckpointId != 1 {
		t.Fatalf("restore = %v, want checkpoint 1 (checkpoint 2 is damaged)", n.Restore)
	}
	ex, _ := c.JobExceptions(ctx, id)
	found := false
	for _, e := range ex.History.Entries {
		found = found || e.ExceptionName == "CheckpointSkipped" && strings.Contains(e.Stacktrace, damaged) && strings.Contains(e.Stacktrace, "corrupt")
	}
	if !found {
		t.Fatalf("the exception history does not name the damaged state file %s: %+v", damaged, ex.History.Entries)
	}
}

// TestRestartAtOnce: without a backoff, a job whose TaskManager is lost
// (nothing left to release) is redeployed within the failover itself, and
// runs: it is not left RESTARTING (it was, before b2f163a).
func TestRestartAtOnce(t *testing.T) {
	jm, c, _ := startJMWith(t, Config{Settings: checkpointSettings(t, t.TempDir(),
		"restart-strategy.type", "fixed-delay", "restart-strategy.fixed-delay.delay", "0 s")})
	id := submit(t, c, upload(t, c), 1)
	tm1 := connectFakeTM(t, jm, 1)
	d := tm1.next("deploy").GetDeploy()
	w := startWorker(t, jm, d)
	ready(t, w)
	tm2 := connectFakeTM(t, jm, 1)
	tm1.stop()
	n := tm2.next("deploy").GetDeploy()
	if n.Attempt != 2 || n.WorkerId != "w0.2" {
		t.Fatalf("redeployment: attempt %d worker %s, want attempt 2 worker w0.2", n.Attempt, n.WorkerId)
	}
	if s := jobState(jm, id); s != v1.JobRunning {
		t.Fatalf("job is %s after its redeployment, want RUNNING", s)
	}
}

// TestLargeInlineState: an acknowledgement with 5 MiB of state inline
// (above gRPC's default 4 MiB) is taken; the checkpoint completes with the
// state in a file of its own, and _metadata stays small.
func TestLargeInlineState(t *testing.T) {
	dir := t.TempDir()
	jm, c, clock := startJMWith(t, Config{Settings: checkpointSettings(t, dir)})
	id := submit(t, c, upload(t, c), 1)
	tm := connectFakeTM(t, jm, 1)
	d := tm.next("deploy").GetDeploy()
	w := startWorker(t, jm, d)
	ready(t, w)
	if err := w.report(v1.TaskRunning); err != nil {
		t.Fatal(err)
	}
	tick(jm, clock, time.Second)
	tr := w.next().GetTrigger()
	big := strings.Repeat("s", 5<<20)
	for v := range 2 {
		st := &rpcpb.StateHandle{Kind: "subtask", Size: 1, Inline: []byte("x")}
		if v == 1 {
			st = &rpcpb.StateHandle{Kind: "subtask", Size: int64(len(big)), Inline: []byte(big)}
		}
		if _, err := w.ckpt.AcknowledgeCheckpoint(context.Background(), &rpcpb.AcknowledgeCheckpointRequest{JobId: id, WorkerId: d.WorkerId,
			Attempt: 1, Vertex: int32(v), CheckpointId: tr.CheckpointId, States: []*rpcpb.StateHandle{st}}); err != nil {
			t.Fatalf("ack of %d/0: %v", v, err)
		}
	}
	if o := w.next().GetComplete(); o == nil {
		t.Fatalf("want notify-complete, got %v", o)
	}
	fi, err := os.Stat(filepath.Join(dir, id, "chk-1", storage.MetadataName))
	if err != nil || fi.Size() > 16<<10 {
		t.Fatalf("_metadata: %v, %d bytes; want it small", err, fi.Size())
	}
	if fi, err := os.Stat(filepath.Join(dir, id, "chk-1", "1-0-1-inline-0")); err != nil || fi.Size() != int64(len(big)) {
		t.Fatalf("the large state's file: %v", err)
	}
}

// oldCheckpoint writes checkpoint id of job "old", taken at parallelism p
// of both vertices of graphJSON's job with maxPar key groups, into dir,
// and loads it back as a restore would.
func oldCheckpoint(t *testing.T, dir string, id checkpoint.ID, p, maxPar int) (checkpoint.Metadata, string) {
	t.Helper()
	ctx := context.Background()
	s, err := storage.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := checkpoint.Metadata{ID: id, Attempt: 1}
	for v := range 2 {
		for sub := range p {
			h, err := storage.WriteState(ctx, s, "old", id, fmt.Sprintf("%d-%d", v, sub), []byte(fmt.Sprintf("state of %d/%d", v, sub)))
			if err != nil {
				t.Fatal(err)
			}
			h.Operator, h.Kind = -1, "subtask"
			h.KeyGroupStart, h.KeyGroupEnd = (sub*maxPar+p-1)/p, ((sub+1)*maxPar+p-1)/p-1
			m.Subtasks = append(m.Subtasks, checkpoint.SubtaskState{Vertex: v, Subtask: sub, Attempt: 1, States: []checkpoint.Handle{h}})
		}
	}
	path, err := storage.WriteMetadata(ctx, s, "old", m)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := storage.Load(ctx, s, "old", id)
	if err != nil {
		t.Fatal(err)
	}
	return loaded, path
}

// TestRestoreAtAnotherParallelism: a job at parallelism 2 restoring a
// retained checkpoint taken at 4 (restoreFrom, where a start from a
// savepoint or retained checkpoint sets its restore point) deploys each
// of its subtasks with every old subtask's state file of its vertex, of
// kind shared, for the worker to take its share; checkpoint ids go on
// after the restored one. A checkpoint taken with other key groups is
// refused, naming pipeline.max-parallelism.
func TestRestoreAtAnotherParallelism(t *testing.T) {
	dir := t.TempDir()
	jm, c, clock := startJMWith(t, Config{Settings: checkpointSettings(t, dir)})
	id := submit(t, c, upload(t, c), 2)
	m, path := oldCheckpoint(t, filepath.Join(dir, "retained"), 3, 4, 128)
	other, _ := oldCheckpoint(t, filepath.Join(dir, "other"), 3, 2, 64)
	jm.mu.Lock()
	ft := jm.mu.jobs[JobID(id)].ft
	errOther := ft.restoreFrom(&other, "other")
	err := ft.restoreFrom(&m, path)
	jm.mu.Unlock()
	if errOther == nil || !strings.Contains(errOther.Error(), "pipeline.max-parallelism=64") || !strings.Contains(errOther.Error(), "pipeline.max-parallelism=128") {
		t.Errorf("restore of state taken with 64 key groups into a job of 128: %v; want an error naming both", errOther)
	}
	if err != nil {
		t.Fatal(err)
	}
	tm1, tm2 := connectFakeTM(t, jm, 1), connectFakeTM(t, jm, 1)
	var ws []*ckptWorker
	for _, d := range []*rpcpb.DeployWorker{tm1.next("deploy").GetDeploy(), tm2.next("deploy").GetDeploy()} {
		if d.Restore == nil || d.Restore.CheckpointId != 3 || d.Restore.Metadata != path {
			t.Fatalf("deployment %s restores %v, want checkpoint 3 at %s", d.WorkerId, d.Restore, path)
		}
		if len(d.Restore.Subtasks) != 2 {
			t.Fatalf("deployment %s restores %d subtasks, want its slot's 2: %v", d.WorkerId, len(d.Restore.Subtasks), d.Restore.Subtasks)
		}
		for _, st := range d.Restore.Subtasks {
			if d.SlotWorkers[st.Subtask] != d.WorkerId || st.Finished || len(st.States) != 4 {
				t.Fatalf("deployment %s restores %v, want every state file of the 4 old subtasks of its vertex", d.WorkerId, st)
			}
			for i, h := range st.States {
				want := m.Subtasks[int(st.Vertex)*4+i].States[0]
				if h.Kind != checkpoint.KindShared || h.Url != want.URL || h.Sha256 != want.SHA256 || h.KeyGroups == nil || int(h.KeyGroups.End) != want.KeyGroupEnd {
					t.Fatalf("deployment %s, subtask %d/%d, handle %d: %v, want %+v of kind %s", d.WorkerId, st.Vertex, st.Subtask, i, h, want, checkpoint.KindShared)
				}
			}
		}
		ws = append(ws, startWorker(t, jm, d))
	}
	ready(t, ws...)
	for _, w := range ws {
		if err := w.report(v1.TaskRunning); err != nil {
			t.Fatal(err)
		}
	}
	tick(jm, clock, time.Second)
	if tr := ws[0].next().GetTrigger(); tr == nil || tr.CheckpointId != 4 {
		t.Fatalf("first trigger after restoring checkpoint 3: %v, want checkpoint 4", tr)
	}
	stats, err := c.JobCheckpoints(context.Background(), id)
	if err != nil || stats.Latest.Restored == nil || stats.Latest.Restored.ID != 3 || stats.Latest.Restored.ExternalPath != path {
		t.Fatalf("checkpoint statistics: %+v, %v; want checkpoint 3 restored from %s", stats.Latest.Restored, err, path)
	}
}
