package worker

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// fakeJobManager answers WorkerHeartbeat on real TCP with what running
// says, and counts the calls.
type fakeJobManager struct {
	rpcpb.UnimplementedJobManagerServer
	running atomic.Bool
	calls   atomic.Int64
	// answered is when it last answered (Unix nanoseconds).
	answered atomic.Int64
	mu       sync.Mutex
	asked    []string
}

func (f *fakeJobManager) WorkerHeartbeat(ctx context.Context, req *rpcpb.WorkerHeartbeatRequest) (*rpcpb.WorkerHeartbeatResponse, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.asked = append(f.asked, req.JobId+"/"+req.WorkerId)
	f.mu.Unlock()
	defer func() { f.answered.Store(time.Now().UnixNano()) }()
	if f.running.Load() {
		return &rpcpb.WorkerHeartbeatResponse{Running: true}, nil
	}
	return &rpcpb.WorkerHeartbeatResponse{Reason: "job j1 is FAILED"}, nil
}

// serve starts f on a free loopback port; stop ends the server.
func serve(t *testing.T, f *fakeJobManager) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rpcpb.RegisterJobManagerServer(srv, f)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(lis) }()
	var once sync.Once
	stop = func() { once.Do(func() { srv.Stop(); <-done }) }
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

func client(t *testing.T, addr string) rpcpb.JobManagerClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return rpcpb.NewJobManagerClient(conn)
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

// watchAsync runs l.watch(ctx) and returns its result channel.
func watchAsync(ctx context.Context, l *liveness) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- l.watch(ctx) }()
	return ch
}

func waitResult(t *testing.T, ch <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(within):
		t.Fatalf("watch did not return within %v", within)
		return nil
	}
}

func TestLivenessJobOver(t *testing.T) {
	f := &fakeJobManager{}
	f.running.Store(true)
	addr, _ := serve(t, f)
	d := &Deployment{JobID: "j1", WorkerID: "w-1", JobManager: addr, HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: time.Second}
	l := newLiveness(client(t, addr), d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := watchAsync(ctx, l)
	// Running: the link keeps asking and watch does not return.
	waitFor(t, 5*time.Second, "three heartbeats", func() bool { return f.calls.Load() >= 3 })
	select {
	case err := <-ch:
		t.Fatalf("watch returned while the job runs: %v", err)
	default:
	}
	began := time.Now()
	f.running.Store(false)
	err := waitResult(t, ch, 5*time.Second)
	if !errors.Is(err, ErrAbandoned) || !errors.Is(err, errJobOver) || !strings.Contains(err.Error(), "job j1 is FAILED") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("watch = %v, want ErrAbandoned (job over) naming the reason and the JobManager", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("watch took %v to notice, want about one interval (20 ms)", took)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.asked[0] != "j1/w-1" {
		t.Errorf("asked about %q, want j1/w-1", f.asked[0])
	}
}

func TestLivenessJobManagerUnreachable(t *testing.T) {
	f := &fakeJobManager{}
	f.running.Store(true)
	addr, stop := serve(t, f)
	d := &Deployment{JobID: "j1", WorkerID: "w-1", JobManager: addr, HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond}
	l := newLiveness(client(t, addr), d)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := watchAsync(ctx, l)
	waitFor(t, 5*time.Second, "a heartbeat", func() bool { return f.calls.Load() > 0 })
	stop()
	err := waitResult(t, ch, 5*time.Second)
	// heartbeat.timeout counts from the last answer.
	took := time.Since(time.Unix(0, f.answered.Load()))
	if !errors.Is(err, ErrAbandoned) || errors.Is(err, errJobOver) || !strings.Contains(err.Error(), "heartbeat.timeout") {
		t.Fatalf("watch = %v, want ErrAbandoned (not job over) naming heartbeat.timeout", err)
	}
	if took < 300*time.Millisecond || took > 2*time.Second {
		t.Errorf("watch gave up after %v, want about heartbeat.timeout (300 ms)", took)
	}
}

func TestLivenessStopsWithContext(t *testing.T) {
	f := &fakeJobManager{}
	f.running.Store(true)
	addr, _ := serve(t, f)
	d := &Deployment{JobID: "j1", WorkerID: "w-1", JobManager: addr, HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	ch := watchAsync(ctx, newLiveness(client(t, addr), d))
	cancel()
	if err := waitResult(t, ch, 5*time.Second); err != nil {
		t.Fatalf("watch = %v after its context ended, want nil", err)
	}
}

func TestLivenessParentGone(t *testing.T) {
	f := &fakeJobManager{}
	f.running.Store(true)
	addr, _ := serve(t, f)
	d := &Deployment{JobID: "j1", WorkerID: "w-1", JobManager: addr, HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: time.Second}
	l := newLiveness(client(t, addr), d)
	var ppid atomic.Int64
	ppid.Store(4242)
	l.parent, l.getppid = 4242, func() int { return int(ppid.Load()) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := watchAsync(ctx, l)
	ppid.Store(1) // reparented: the TaskManager died
	err := waitResult(t, ch, 5*time.Second)
	if !errors.Is(err, ErrAbandoned) || !strings.Contains(err.Error(), "TaskManager (pid 4242) is gone") {
		t.Fatalf("watch = %v, want ErrAbandoned for the lost TaskManager", err)
	}
}

func TestLivenessDefaults(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		interval, timeout         time.Duration
		wantInterval, wantTimeout time.Duration
	}{
		{name: "from the deployment", interval: time.Second, timeout: 7 * time.Second, wantInterval: time.Second, wantTimeout: 7 * time.Second},
		{name: "unset", wantInterval: defaultHeartbeatInterval, wantTimeout: defaultHeartbeatTimeout},
		{name: "timeout not above interval", interval: 20 * time.Second, timeout: 20 * time.Second, wantInterval: 20 * time.Second, wantTimeout: 100 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLiveness(nil, &Deployment{HeartbeatInterval: tc.interval, HeartbeatTimeout: tc.timeout})
			if l.interval != tc.wantInterval || l.timeout != tc.wantTimeout {
				t.Errorf("interval, timeout = %v, %v, want %v, %v", l.interval, l.timeout, tc.wantInterval, tc.wantTimeout)
			}
		})
	}
}
