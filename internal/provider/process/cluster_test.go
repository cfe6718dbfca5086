package process

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/provider"
)

var spateBin string

func TestMain(m *testing.M) {
	code := func() int {
		flag.Parse()
		if !testing.Short() {
			dir, err := os.MkdirTemp("", "spate-process-test-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			spateBin = filepath.Join(dir, "spate")
			if out, err := exec.Command("go", "build", "-o", spateBin, "github.com/spate-dev/spate/cmd/spate").CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build spate: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// processesIn lists the live processes whose command line names dir.
func processesIn(dir string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || gone(pid) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(dir)) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}

// TestDeploySession starts a session cluster with two TaskManagers, checks
// its REST API sees them and that its configuration reached them, then
// tears it down through Kill, as another client does, and finds none of
// its processes left.
func TestDeploySession(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := Deployer{Binary: spateBin}.Deploy(ctx, provider.ClusterSpec{
		Mode: provider.Session, Dir: dir, TaskManagers: 2,
		Config: map[string]string{"taskmanager.numberOfTaskSlots": "3", "heartbeat.interval": "2s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Stop(context.Background()) })
	c, err := client.New(cl.REST())
	if err != nil {
		t.Fatal(err)
	}
	var ov v1.Overview
	if !waitFor(ctx, func() bool {
		ov, err = c.Overview(ctx)
		return err == nil && ov.TaskManagers == 2
	}) {
		t.Fatalf("the session's TaskManagers did not register: %+v, %v", ov, err)
	}
	if ov.SlotsTotal != 6 {
		t.Errorf("overview = %+v, want 2 TaskManagers with 3 slots each", ov)
	}
	procs := processesIn(dir)
	if len(procs) != 3 {
		t.Errorf("processes of the cluster = %q, want a JobManager and 2 TaskManagers", procs)
	}
	for _, p := range procs {
		if strings.Contains(p, " taskmanager ") && !strings.Contains(p, "heartbeat.interval=2s") {
			t.Errorf("TaskManager %s lacks the cluster's configuration", p)
		}
	}
	select {
	case <-cl.Done():
		t.Fatal("Done closed while the cluster runs")
	default:
	}

	if err := (Deployer{}).Kill(ctx, cl.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cl.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after Kill")
	}
	if err := cl.Err(); err != nil {
		t.Errorf("Err after a clean stop = %v", err)
	}
	killCtx, cancelKill := context.WithTimeout(ctx, 10*time.Second)
	defer cancelKill()
	if !waitFor(killCtx, func() bool { return len(processesIn(dir)) == 0 }) {
		t.Fatalf("processes left after Kill: %q", processesIn(dir))
	}
	if err := (Deployer{}).Kill(ctx, cl.ID()); err != nil {
		t.Errorf("Kill of a cluster already gone = %v, want nil", err)
	}
}

// waitFor polls cond until it holds and returns true, or returns false
// when ctx ends first.
func waitFor(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
	return true
}

func TestDeployErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		d    Deployer
		spec provider.ClusterSpec
		want string
	}{
		{"application without a program", Deployer{Binary: spateBin},
			provider.ClusterSpec{Mode: provider.Application, Dir: t.TempDir()}, "no program given"},
		{"application program missing", Deployer{Binary: spateBin},
			provider.ClusterSpec{Mode: provider.Application, Dir: t.TempDir(), Artifact: "/nonexistent/prog"}, "/nonexistent/prog"},
		{"JobManager fails at start", Deployer{Binary: spateBin},
			provider.ClusterSpec{Mode: provider.Session, Dir: t.TempDir(), Config: map[string]string{"heartbeat.interval": "soon"}}, "exited at start"},
		{"no such binary", Deployer{Binary: "/nonexistent/spate"},
			provider.ClusterSpec{Mode: provider.PerJob, Dir: t.TempDir()}, "start the JobManager"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.d.Deploy(ctx, tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Deploy error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if err := (Deployer{}).Kill(ctx, "jm-1"); err == nil || !strings.Contains(err.Error(), "not a JobManager process id") {
		t.Errorf("Kill of a malformed id = %v", err)
	}
}
