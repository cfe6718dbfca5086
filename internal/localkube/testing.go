package localkube

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// Binaries returns the bin directory for tests. Outside CI a test whose
// binaries are not cached skips at once, saying how to build them (a cold
// build outlasts a test binary's default timeout). Under CI (CI=true, set by
// .ci/run, which builds them first) a missing cache is built within the
// test's deadline, less two minutes, and a failed build fails the test.
func Binaries(t testing.TB) string {
	t.Helper()
	if bin, ok := Cached(""); ok {
		return bin
	}
	if os.Getenv("CI") != "true" {
		// A cold build takes longer than a test binary's default timeout:
		// outside CI, say how to build once instead of starting it here.
		t.Skipf("localkube: the Kubernetes %s binaries are not cached, so the tests against a real kube-apiserver skip.\n"+
			"Build them once with `go run ./hack/localkube -build` (10 to 30 minutes cold; cached under $XDG_CACHE_HOME/spate/kube/%s), or run .ci/run, which does.", KubeVersion, KubeVersion)
	}
	ctx := context.Background()
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl.Add(-2*time.Minute))
			defer cancel()
		}
	}
	t.Logf("localkube: the Kubernetes %s binaries are not cached: building them (a cold build takes 10 to 30 minutes on 2 cores)", KubeVersion)
	bin, err := EnsureBinaries(ctx, BuildOptions{})
	if err != nil {
		msg := fmt.Sprintf("localkube: the Kubernetes binaries cannot be built, so the tests against a real kube-apiserver cannot run: %v\n"+
			"Build them once with `go run ./hack/localkube -build` (cached under $XDG_CACHE_HOME/spate/kube/%s).", err, KubeVersion)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// StartForTest starts a cluster in a temporary directory for the test,
// closed when the test ends. Options.Dir and BinDir default to t.TempDir()
// and Binaries(t); pod output goes to the test's log.
func StartForTest(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.BinDir == "" {
		o.BinDir = Binaries(t)
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.PodOutput == nil {
		o.PodOutput = testWriter{t}
	}
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// Shared is one cluster shared by the tests of a package, started by the
// first test that asks for it. Close it in TestMain after m.Run:
//
//	var kube localkube.Shared
//	func TestMain(m *testing.M) { code := m.Run(); kube.Close(); os.Exit(code) }
//	func TestX(t *testing.T) { c := kube.Get(t, localkube.Options{}) … }
//
// The options of the first Get count. Pod output goes to stderr when
// testing -v, else only to the pods' directories.
type Shared struct {
	mu      sync.Mutex
	c       *Cluster
	dir     string
	err     error
	skipMsg string
}

// Get returns the shared cluster, starting it on the first call; a test
// calling it is skipped or failed as Binaries says if the binaries are
// missing, and failed if the cluster did not start.
func (s *Shared) Get(t testing.TB, o Options) *Cluster {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil && s.err == nil {
		if o.BinDir == "" {
			o.BinDir = Binaries(t) // skips (runtime.Goexit) with the lock released by defer
		}
		if o.Dir == "" {
			s.dir, s.err = os.MkdirTemp("", "localkube-")
			o.Dir = s.dir
		}
		if o.PodOutput == nil && testing.Verbose() {
			o.PodOutput = os.Stderr
		}
		if s.err == nil {
			s.c, s.err = Start(context.Background(), o)
		}
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.c
}

// Close stops the shared cluster, if started, and removes its directory.
// The error names the processes left behind, if any (Cluster.Close).
func (s *Shared) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.c != nil {
		err = s.c.Close()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	return err
}
