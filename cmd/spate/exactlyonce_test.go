package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// committedLines returns the lines of dir's committed (visible) files,
// sorted.
func committedLines(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	slices.Sort(lines)
	return lines
}

// TestClusterExactlyOnce runs examples/exactlyonce on a session cluster of
// real processes with checkpoints every 200 ms, and SIGKILLs the
// TaskManager running it midway: the job restarts from its latest
// checkpoint on the TaskManager left (its workers restore their state from
// the JobManager's restore point), ends FINISHED, and its committed output
// holds every (key, number) pair once.
func TestClusterExactlyOnce(t *testing.T) {
	const keys, count = 4, 2500
	c := startCluster(t, 2, 2)
	bin := binaries(t)
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "spate"), "run", "--target", "remote", "--jobmanager", c.rest,
		"-D", "restart-strategy.type=fixed-delay", "-D", "restart-strategy.fixed-delay.delay=0 s", "-p", "2",
		filepath.Join(bin, "exactlyonce"), "-keys", fmt.Sprint(keys), "-count", fmt.Sprint(count), "-rate", "2500",
		"-checkpoint-interval", "200ms", "-out", out)
	cmd.WaitDelay = 5 * time.Second
	run := startBackground(t, cmd)
	ended := false
	t.Cleanup(func() {
		if !ended {
			run.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-run.done:
			case <-time.After(10 * time.Second):
				run.cmd.Process.Kill()
				<-run.done
			}
		}
		if t.Failed() {
			t.Logf("spate run:\n%s", run.text())
		}
	})
	var id string
	waitFor(t, 30*time.Second, "the job's submission", func() bool {
		if m := regexpJobID.FindStringSubmatch(run.text()); m != nil {
			id = m[1]
		}
		return id != ""
	})
	completed := func() int {
		var cps v1.CheckpointingStatistics
		if err := c.get(t, "/v1/jobs/"+id+"/checkpoints", &cps); err != nil {
			return 0
		}
		return cps.Counts.Completed
	}
	waitFor(t, 60*time.Second, "two completed checkpoints", func() bool { return completed() >= 2 })
	var tms v1.TaskManagers
	if err := c.get(t, "/v1/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	victim := -1
	for _, tm := range tms.TaskManagers {
		if tm.FreeSlots == 0 {
			victim = int(tm.Path[len(tm.Path)-1] - 'A')
		}
	}
	if victim < 0 {
		t.Fatalf("no TaskManager holds the job: %+v", tms)
	}
	c.tms[victim].cmd.Process.Kill()
	d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled)
	if d.State != v1.JobFinished || d.NumRestarts < 1 {
		t.Fatalf("job ended %s after %d restarts, want FINISHED after a restart", d.State, d.NumRestarts)
	}
	select {
	case <-run.done:
		ended = true
	case <-time.After(30 * time.Second):
		t.Fatal("spate run still runs after its job finished")
	}
	got := committedLines(t, out)
	var want []string
	for k := range keys {
		for n := 1; n <= count; n++ {
			want = append(want, fmt.Sprintf("%d %d", k, n))
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("committed %d lines, want the %d pairs once each", len(got), len(want))
	}
}
