package jobmanager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/jobmaster"
	"github.com/spate-dev/spate/internal/resource"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// fakeClock is a Clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// startJMWith runs a JobManager configured by cfg (on free loopback ports,
// with a fake clock and heartbeats that never time out unless cfg says)
// until the test ends.
func startJMWith(t *testing.T, cfg Config) (*JobManager, *client.Client, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	cfg.Clock = clock
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval, cfg.HeartbeatTimeout = 50*time.Millisecond, 24*time.Hour
	}
	jm, c := runJM(t, cfg)
	return jm, c, clock
}

// tick runs the JobManager's periodic check at the clock's time plus d.
func tick(jm *JobManager, clock *fakeClock, d time.Duration) {
	now := clock.advance(d)
	jm.mu.Lock()
	defer jm.mu.Unlock()
	jm.tickLocked(now)
}

func submit(t *testing.T, c *client.Client, artifact string, parallelism int) string {
	t.Helper()
	id, err := c.SubmitJob(context.Background(), v1.JobSubmitRequest{JobGraph: graphJSON(t, parallelism), Artifact: artifact, Program: "prog",
		Env: map[string]string{"SECRET": "s3cret"}, Args: []string{"--token", "t0k"}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func upload(t *testing.T, c *client.Client) string {
	t.Helper()
	up, err := c.UploadArtifactReader(context.Background(), strings.NewReader("binary"), -1)
	if err != nil {
		t.Fatal(err)
	}
	return up.ID
}

func state(t *testing.T, c *client.Client, id string) string {
	t.Helper()
	d, err := c.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d.State
}

// TestScheduleBackfill: a job that waits for more slots than are free
// does not block a smaller job behind it (main at 629c30d served them
// strictly in order), and jobs waiting are scheduled when slots are freed.
func TestScheduleBackfill(t *testing.T) {
	jm, c, _ := startJMWith(t, Config{})
	art := upload(t, c)
	tm := connectFakeTM(t, jm, 2)
	big := submit(t, c, art, 3)
	small := submit(t, c, art, 1)
	dep := tm.next("deploy").GetDeploy()
	if dep.JobId != small {
		t.Fatalf("deployed %s, want the small job %s", dep.JobId, small)
	}
	if s := state(t, c, big); s != v1.JobCreated {
		t.Fatalf("big job is %s, want CREATED", s)
	}
	// Another 1-slot job takes the last free slot; a third waits for it.
	second := submit(t, c, art, 1)
	if d := tm.next("deploy").GetDeploy(); d.JobId != second {
		t.Fatalf("deployed %s, want %s", d.JobId, second)
	}
	third := submit(t, c, art, 2)
	if s := state(t, c, third); s != v1.JobCreated {
		t.Fatalf("third job is %s with no free slot", s)
	}
	// The big job leaves; the others still wait for slots, then run when
	// both small jobs are released.
	if err := c.CancelJob(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{small, second} {
		if err := c.CancelJob(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		tm.next("release")
		tm.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_JobReleased{JobReleased: &rpcpb.JobReleased{JobId: id}}})
	}
	if d := tm.next("deploy").GetDeploy(); d.JobId != third || d.Slots != 2 {
		t.Fatalf("deployed %+v, want %s on 2 slots", d, third)
	}
}

// fakeProvider records the TaskManagers asked of it; none ever starts.
type fakeProvider struct {
	mu      sync.Mutex
	started []resource.TaskManagerSpec
	exits   chan resource.Exit
}

func (p *fakeProvider) StartTaskManager(ctx context.Context, spec resource.TaskManagerSpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started = append(p.started, spec)
	return nil
}
func (p *fakeProvider) StopTaskManager(ctx context.Context, id string) error { return nil }
func (p *fakeProvider) Exits() <-chan resource.Exit                          { return p.exits }
func (p *fakeProvider) Close() error                                         { return nil }

func (p *fakeProvider) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.started)
}

var _ Provider = (*fakeProvider)(nil)

// TestSlotCeiling: with slotmanager.number-of-slots.max, a job that needs
// more slots is refused at submission naming the key, and the provider is
// never asked for TaskManagers beyond it, however many jobs wait (main at
// 629c30d had no ceiling).
func TestSlotCeiling(t *testing.T) {
	p := &fakeProvider{exits: make(chan resource.Exit)}
	jm, c, _ := startJMWith(t, Config{Provider: p, ProvidedSlots: 2, SlotsMax: 5})
	art := upload(t, c)
	// 5 slots make 2 TaskManagers of 2: a job needing 5 can never run.
	_, err := c.SubmitJob(context.Background(), v1.JobSubmitRequest{JobGraph: graphJSON(t, 5), Artifact: art})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || !strings.Contains(err.Error(), KeySlotsMax) || !strings.Contains(err.Error(), `vertex "src`) {
		t.Fatalf("job above the ceiling: %v, want a 400 naming %s and the vertex", err, KeySlotsMax)
	}
	for range 3 {
		submit(t, c, art, 3)
	}
	waitFor(t, 5*time.Second, "TaskManagers requested", func() bool { return p.count() == 2 })
	jm.mu.Lock()
	jm.scheduleLocked(jm.clock.Now())
	jm.mu.Unlock()
	if n := p.count(); n != 2 {
		t.Fatalf("the provider was asked for %d TaskManagers of 2 slots with a ceiling of 5 slots", n)
	}
	if _, err := New(Config{Provider: p, ProvidedSlots: 2, SlotsMax: 4, MinTaskManagers: 3, RPCAddress: "127.0.0.1:0", RESTAddress: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), KeySlotsMax) {
		t.Errorf("3 TaskManagers of 2 slots under a ceiling of 4: %v", err)
	}
}

// TestDeploymentTimeout: a job whose worker never reports ready fails
// once the deployment timeout has passed, naming the program, the worker
// and its TaskManager, and its slots are released (on main at 629c30d it
// stayed RUNNING forever).
func TestDeploymentTimeout(t *testing.T) {
	jm, c, clock := startJMWith(t, Config{DeploymentTimeout: 10 * time.Second})
	art := upload(t, c)
	tm := connectFakeTM(t, jm, 1)
	id := submit(t, c, art, 1)
	tm.next("deploy")
	tick(jm, clock, 9*time.Second)
	if s := state(t, c, id); s != v1.JobRunning {
		t.Fatalf("job is %s before the deployment timeout", s)
	}
	tick(jm, clock, 2*time.Second)
	if s := state(t, c, id); s != v1.JobFailing {
		t.Fatalf("job is %s after the deployment timeout, want FAILING while its worker is released", s)
	}
	ex, err := c.JobExceptions(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`program "prog"`, "worker w0", "tm-1", "(fake)", KeyDeploymentTimeout, "10s"} {
		if !strings.Contains(ex.RootException, want) {
			t.Errorf("root exception lacks %q: %s", want, ex.RootException)
		}
	}
	if rel := tm.next("release").GetRelease(); rel.JobId != id {
		t.Fatalf("release = %+v", rel)
	}
	tm.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_JobReleased{JobReleased: &rpcpb.JobReleased{JobId: id}}})
	waitFor(t, 5*time.Second, "the job FAILED and its slot free", func() bool {
		o, _ := c.Overview(context.Background())
		return state(t, c, id) == v1.JobFailed && o.SlotsAvailable == 1
	})
}

// TestRootCause: a secondary failure (a lost peer connection) waits for
// its cause within the window: a worker's exit or a TaskManager's loss
// then is the root exception; without one, the secondary failure is, once
// the window has passed. Every failure is in the history (main at 629c30d
// kept the first and dropped the rest).
func TestRootCause(t *testing.T) {
	peerLost := func(tm *fakeTM, dep *rpcpb.DeployWorker) {
		tm.t.Helper()
		if _, err := tm.rpc.ReportTasks(context.Background(), &rpcpb.ReportTasksRequest{JobId: dep.JobId, WorkerId: dep.WorkerId,
			Tasks:   []*rpcpb.TaskStatus{{Vertex: 1, Subtask: 0, State: v1.TaskFailed, Error: "data connection to worker \"w1\" lost: connection reset by peer", PeerLost: true}},
			Failure: "data plane: connection reset by peer", PeerLost: true}); err != nil {
			tm.t.Fatal(err)
		}
	}
	exited := func(tm *fakeTM, dep *rpcpb.DeployWorker) {
		tm.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_WorkerExited{WorkerExited: &rpcpb.WorkerExited{
			JobId: dep.JobId, WorkerId: dep.WorkerId, ExitCode: -1, Reason: "killed by signal killed"}}})
	}
	tests := []struct {
		name string
		// run reports the failures; the first TaskManager's worker loses
		// its connection to the second's.
		run         func(t *testing.T, jm *JobManager, clock *fakeClock, tms [2]*fakeTM, deps [2]*rpcpb.DeployWorker)
		wantRoot    string
		wantHistory int
	}{
		{
			name: "worker exit after a lost connection",
			run: func(t *testing.T, jm *JobManager, clock *fakeClock, tms [2]*fakeTM, deps [2]*rpcpb.DeployWorker) {
				peerLost(tms[0], deps[0])
				tick(jm, clock, time.Second)
				if s := statusOf(jm, deps[0].JobId); s != v1.JobRunning {
					t.Fatalf("job is %s within the window after a secondary failure", s)
				}
				exited(tms[1], deps[1])
			},
			wantRoot: "killed by signal", wantHistory: 3,
		},
		{
			name: "lost connection alone",
			run: func(t *testing.T, jm *JobManager, clock *fakeClock, tms [2]*fakeTM, deps [2]*rpcpb.DeployWorker) {
				peerLost(tms[0], deps[0])
				tick(jm, clock, 3*time.Second)
			},
			wantRoot: "connection reset", wantHistory: 2,
		},
		{
			name: "worker exit first",
			run: func(t *testing.T, jm *JobManager, clock *fakeClock, tms [2]*fakeTM, deps [2]*rpcpb.DeployWorker) {
				exited(tms[1], deps[1])
				waitFor(t, 5*time.Second, "the job to fail", func() bool { return statusOf(jm, deps[0].JobId) == v1.JobFailing })
				peerLost(tms[0], deps[0])
			},
			wantRoot: "killed by signal", wantHistory: 3,
		},
		{
			name: "worker exit after more lost connections than the history holds",
			run: func(t *testing.T, jm *JobManager, clock *fakeClock, tms [2]*fakeTM, deps [2]*rpcpb.DeployWorker) {
				for i := range maxExceptionHistory + 4 {
					if _, err := tms[0].rpc.ReportTasks(context.Background(), &rpcpb.ReportTasksRequest{JobId: deps[0].JobId, WorkerId: deps[0].WorkerId,
						Failure: fmt.Sprintf("data plane: connection %d reset by peer", i), PeerLost: true}); err != nil {
						t.Fatal(err)
					}
				}
				exited(tms[1], deps[1])
			},
			wantRoot: "killed by signal", wantHistory: maxExceptionHistory + 1,
		},
		{
			name: "TaskManager lost after the window",
			run: func(t *testing.T, jm *JobManager, clock *fakeClock, tms [2]*fakeTM, deps [2]*rpcpb.DeployWorker) {
				peerLost(tms[0], deps[0])
				tick(jm, clock, 3*time.Second)
				tms[1].stream.CloseSend()
			},
			wantRoot: "was lost", wantHistory: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jm, c, clock := startJMWith(t, Config{RootCauseWindow: 2 * time.Second})
			art := upload(t, c)
			tms := [2]*fakeTM{connectFakeTM(t, jm, 1)}
			id := submit(t, c, art, 2)
			tms[1] = connectFakeTM(t, jm, 1)
			var deps [2]*rpcpb.DeployWorker
			for i, tm := range tms {
				deps[i] = tm.next("deploy").GetDeploy()
			}
			tt.run(t, jm, clock, tms, deps)
			var ex v1.JobExceptions
			waitFor(t, 5*time.Second, "the root exception and the history", func() bool {
				ex, _ = c.JobExceptions(context.Background(), id)
				return strings.Contains(ex.RootException, tt.wantRoot) && len(ex.History.Entries) == tt.wantHistory
			})
			if s := state(t, c, id); s != v1.JobFailing && s != v1.JobFailed {
				t.Errorf("job is %s", s)
			}
		})
	}
}

func statusOf(jm *JobManager, id string) string {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	return jm.mu.jobs[JobID(id)].status
}

// TestJobStore: an ended job drops its graph, arguments and secrets at
// once; ended jobs are kept up to jobstore.max-capacity and for
// jobstore.expiration-time; the periodic check does not walk them (on
// main at 629c30d every job stayed, whole, forever).
func TestJobStore(t *testing.T) {
	jm, c, clock := startJMWith(t, Config{JobStoreCapacity: 2, JobStoreExpiration: time.Minute})
	art := upload(t, c)
	var ids []string
	for range 3 {
		id := submit(t, c, art, 1)
		if err := c.CancelJob(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := c.Job(context.Background(), ids[0]); !client.IsStatus(err, http.StatusNotFound) {
		t.Errorf("the oldest of 3 ended jobs with capacity 2: %v, want 404", err)
	}
	jm.mu.Lock()
	for _, id := range ids[1:] {
		j := jm.mu.jobs[JobID(id)]
		if j == nil {
			t.Fatalf("job %s forgotten within the capacity", id)
		}
		if j.env != nil || j.args != nil || j.graph != nil || j.graphJSON != nil {
			t.Errorf("ended job %s keeps its submission: env %v args %v graph %v", id, j.env, j.args, j.graph != nil)
		}
	}
	if n := len(jm.mu.active) + jm.mu.sched.Waiting() + len(jm.mu.suspects); n != 0 {
		t.Errorf("%d ended jobs in the sets the periodic check walks", n)
	}
	jm.mu.Unlock()
	d, err := c.Job(context.Background(), ids[2])
	if err != nil || len(d.Vertices) != 2 || d.Vertices[0].Name != "src" || d.Vertices[0].Parallelism != 1 || d.Vertices[0].Tasks[v1.TaskCanceled] != 1 {
		t.Fatalf("an ended job's details = %+v, %v", d, err)
	}
	if !strings.Contains(string(d.Plan), `"fingerprint"`) || strings.Contains(string(d.Plan), `"operators"`) {
		t.Errorf("an ended job's plan is not the summary: %s", d.Plan)
	}
	tick(jm, clock, 59*time.Second)
	if _, err := c.Job(context.Background(), ids[2]); err != nil {
		t.Fatalf("job expired before jobstore.expiration-time: %v", err)
	}
	tick(jm, clock, 2*time.Second)
	for _, id := range ids[1:] {
		if _, err := c.Job(context.Background(), id); !client.IsStatus(err, http.StatusNotFound) {
			t.Errorf("job %s after jobstore.expiration-time: %v, want 404", id, err)
		}
	}
	if o, _ := c.Overview(context.Background()); o.JobsCancelled != 0 {
		t.Errorf("overview counts expired jobs: %+v", o)
	}
}

// TestShutdownAcknowledged: the JobManager waits for a TaskManager to
// acknowledge the cluster's end (no sleep: main at 629c30d slept 100 ms
// and hoped the message was out).
func TestShutdownAcknowledged(t *testing.T) {
	jm, _, _ := startJMWith(t, Config{})
	tm := connectFakeTM(t, jm, 1)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		jm.shutdownTaskManagers("test")
	}()
	tm.next("shutdown")
	select {
	case <-returned:
		t.Fatal("shutdownTaskManagers returned before the TaskManager acknowledged")
	default:
	}
	tm.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_ShutdownAck{ShutdownAck: &rpcpb.ShutdownAck{}}})
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdownTaskManagers did not return after the acknowledgement")
	}
}

func TestConfigFromLimits(t *testing.T) {
	var c config.Config
	cfg, err := ConfigFrom(c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SlotsMax != DefaultSlotsMax || cfg.DeploymentTimeout != DefaultDeploymentTimeout ||
		cfg.JobStoreCapacity != DefaultJobStoreCapacity || cfg.JobStoreExpiration != DefaultJobStoreExpiration {
		t.Errorf("defaults = %d %v %d %v", cfg.SlotsMax, cfg.DeploymentTimeout, cfg.JobStoreCapacity, cfg.JobStoreExpiration)
	}
	tests := []struct {
		key, value string
		want       func(Config) bool
		wantErr    bool
	}{
		{key: KeySlotsMax, value: "8", want: func(c Config) bool { return c.SlotsMax == 8 }},
		{key: KeySlotsMax, value: "0", wantErr: true},
		{key: KeySlotsMax, value: "lots", wantErr: true},
		{key: KeyDeploymentTimeout, value: "30 s", want: func(c Config) bool { return c.DeploymentTimeout == 30*time.Second }},
		{key: KeyDeploymentTimeout, value: "soon", wantErr: true},
		{key: KeyDeploymentTimeout, value: "0", wantErr: true},
		{key: KeyJobStoreCapacity, value: "5", want: func(c Config) bool { return c.JobStoreCapacity == 5 }},
		{key: KeyJobStoreCapacity, value: "-1", wantErr: true},
		{key: KeyJobStoreExpiration, value: "60", want: func(c Config) bool { return c.JobStoreExpiration == time.Minute }},
		{key: KeyJobStoreExpiration, value: "2 h", want: func(c Config) bool { return c.JobStoreExpiration == 2*time.Hour }},
		{key: KeyJobStoreExpiration, value: "never", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			var c config.Config
			c.Set(tt.key, tt.value)
			cfg, err := ConfigFrom(c)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), tt.value) {
					t.Errorf("error = %v, want one naming %s and %q", err, tt.key, tt.value)
				}
				return
			}
			if err != nil || !tt.want(cfg) {
				t.Errorf("ConfigFrom = %+v, %v", cfg, err)
			}
		})
	}
}

// ctxProvider records the contexts its calls get.
type ctxProvider struct {
	fakeProvider
	mu   sync.Mutex
	ctxs []context.Context
}

func (p *ctxProvider) StartTaskManager(ctx context.Context, spec resource.TaskManagerSpec) error {
	p.mu.Lock()
	p.ctxs = append(p.ctxs, ctx)
	p.mu.Unlock()
	return p.fakeProvider.StartTaskManager(ctx, spec)
}

// TestRunOwnsServersAndContexts: provider calls get a context that ends
// with Run (main at 629c30d passed context.Background()), and when Run
// returns its REST and RPC servers are gone.
func TestRunOwnsServersAndContexts(t *testing.T) {
	p := &ctxProvider{fakeProvider: fakeProvider{exits: make(chan resource.Exit)}}
	jm, err := New(Config{RPCAddress: "127.0.0.1:0", RESTAddress: "127.0.0.1:0", Provider: p, ProvidedSlots: 1, MinTaskManagers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- jm.Run(ctx) }()
	waitFor(t, 5*time.Second, "the provider to be asked for a TaskManager", func() bool { return p.count() == 1 })
	p.mu.Lock()
	started := p.ctxs[0]
	p.mu.Unlock()
	if started.Err() != nil {
		t.Fatal("the provider's context ended while the JobManager runs")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if started.Err() == nil {
		t.Error("the provider's context did not end with Run")
	}
	for _, addr := range []string{jm.RESTAddr(), jm.RPCAddr()} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Run returned", addr)
		}
	}
}

// TestJobFinishedByMaster: the job master hears every subtask finish and
// decides the job is FINISHED (it was never told, and stayed RUNNING):
// not while a worker's subtasks still run, and then the workers are
// released ("job finished") and their slots freed for the scheduler.
func TestJobFinishedByMaster(t *testing.T) {
	jm, c, _ := startJMWith(t, Config{})
	art := upload(t, c)
	tms := []*fakeTM{connectFakeTM(t, jm, 1), connectFakeTM(t, jm, 1)}
	id := submit(t, c, art, 2)
	report := func(tm *fakeTM, dep *rpcpb.DeployWorker, subtask int32) {
		t.Helper()
		var tasks []*rpcpb.TaskStatus
		for v := range int32(2) {
			tasks = append(tasks, &rpcpb.TaskStatus{Vertex: v, Subtask: subtask, State: v1.TaskFinished})
		}
		if _, err := tm.rpc.ReportTasks(context.Background(), &rpcpb.ReportTasksRequest{JobId: dep.JobId, WorkerId: dep.WorkerId, Attempt: dep.Attempt, Tasks: tasks}); err != nil {
			t.Fatal(err)
		}
	}
	masterStatus := func() string {
		jm.mu.Lock()
		defer jm.mu.Unlock()
		return jm.mu.jobs[JobID(id)].ft.master.Status()
	}
	deps := []*rpcpb.DeployWorker{tms[0].next("deploy").GetDeploy(), tms[1].next("deploy").GetDeploy()}
	report(tms[0], deps[0], 0)
	if s, m := state(t, c, id), masterStatus(); s != v1.JobRunning || m != jobmaster.Running {
		t.Fatalf("with worker w1's subtasks running: job %s, master %s; want RUNNING", s, m)
	}
	report(tms[1], deps[1], 1)
	if m := masterStatus(); m != jobmaster.Finished {
		t.Fatalf("every subtask finished: master %s, want FINISHED", m)
	}
	for i, tm := range tms {
		rel := tm.next("release").GetRelease()
		if rel.JobId != id || rel.Reason != "job finished" {
			t.Fatalf("release to TaskManager %d = %+v, want job %s finished", i, rel, id)
		}
		tm.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_JobReleased{JobReleased: &rpcpb.JobReleased{JobId: id}}})
	}
	waitFor(t, 5*time.Second, "the job FINISHED with both slots free", func() bool {
		o, _ := c.Overview(context.Background())
		return state(t, c, id) == v1.JobFinished && o.SlotsAvailable == 2
	})
}
