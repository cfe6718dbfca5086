package launcher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a Handler that keeps what it is told.
type recorder struct {
	mu        sync.Mutex
	requests  []ClusterRequest
	released  []string
	submitted []Submission
	deployErr error
}

func (r *recorder) DeployCluster(_ context.Context, req ClusterRequest) (Cluster, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deployErr != nil {
		return Cluster{}, r.deployErr
	}
	r.requests = append(r.requests, req)
	return Cluster{ID: "c" + req.JobName, REST: "127.0.0.1:1"}, nil
}

func (r *recorder) ReleaseCluster(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.released = append(r.released, id)
	return nil
}

func (r *recorder) Submitted(s Submission) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.submitted = append(r.submitted, s)
}

// serve runs a Server for h until the test ends.
func serve(t *testing.T, h Handler) *Server {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir())
	s, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		s.Close()
	})
	return s
}

func TestRoundTrip(t *testing.T) {
	h := &recorder{}
	s := serve(t, h)
	c := Dial(s.Path())
	ctx := context.Background()
	cl, err := c.DeployCluster(ctx, ClusterRequest{JobName: "daily", JobOrdinal: 1})
	if err != nil {
		t.Fatal(err)
	}
	if cl != (Cluster{ID: "cdaily", REST: "127.0.0.1:1"}) {
		t.Errorf("DeployCluster = %+v", cl)
	}
	sub := Submission{JobID: "j1", JobName: "daily", JobOrdinal: 1, REST: cl.REST, Cluster: cl.ID}
	if err := c.Submitted(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if err := c.ReleaseCluster(ctx, "cdaily"); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.requests) != 1 || h.requests[0] != (ClusterRequest{JobName: "daily", JobOrdinal: 1}) {
		t.Errorf("requests = %+v", h.requests)
	}
	if len(h.submitted) != 1 || h.submitted[0] != sub {
		t.Errorf("submitted = %+v", h.submitted)
	}
	if len(h.released) != 1 || h.released[0] != "cdaily" {
		t.Errorf("released = %+v", h.released)
	}
}

func TestErrors(t *testing.T) {
	s := serve(t, &recorder{deployErr: errors.New("no room for a cluster")})
	_, err := Dial(s.Path()).DeployCluster(context.Background(), ClusterRequest{JobName: "daily"})
	if err == nil || !strings.Contains(err.Error(), "no room for a cluster") || !strings.Contains(err.Error(), `job "daily"`) {
		t.Errorf("DeployCluster error = %v, want the handler's, naming the job", err)
	}
	missing := filepath.Join(t.TempDir(), "none.sock")
	err = Dial(missing).Submitted(context.Background(), Submission{JobID: "j1"})
	if err == nil || !strings.Contains(err.Error(), Env) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Submitted to no CLI = %v, want an error naming %s and the socket", err, Env)
	}
}

// TestClose checks that Close ends Serve, even with a request in
// progress, and removes the socket's directory.
func TestClose(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	s, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(s.Path())
	h := &blocking{entered: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), h) }()
	reqDone := make(chan error, 1)
	go func() {
		_, err := Dial(s.Path()).DeployCluster(context.Background(), ClusterRequest{JobName: "slow"})
		reqDone <- err
	}()
	<-h.entered
	s.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	if err := <-reqDone; err == nil {
		t.Error("a request cut off by Close succeeded")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("socket directory %s left after Close: %v", dir, err)
	}
}

// blocking is a Handler whose DeployCluster waits for its request's end.
type blocking struct {
	recorder
	entered chan struct{}
}

func (b *blocking) DeployCluster(ctx context.Context, _ ClusterRequest) (Cluster, error) {
	close(b.entered)
	<-ctx.Done()
	return Cluster{}, ctx.Err()
}
