package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	v1 "github.com/spate-dev/spate/api/v1"
)

var (
	sinkjobOnce sync.Once
	sinkjobErr  error
)

// sinkjob builds testdata/sinkjob next to the other test binaries and
// returns its path.
func sinkjob(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(binaries(t), "sinkjob")
	sinkjobOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", bin, "./testdata/sinkjob").CombinedOutput()
		if err != nil {
			sinkjobErr = fmt.Errorf("build testdata/sinkjob: %v\n%s", err, out)
		}
	})
	if sinkjobErr != nil {
		t.Fatal(sinkjobErr)
	}
	return bin
}

// partFiles returns the published part files of dir and their number of
// lines, and the other files.
func partFiles(t *testing.T, dir string) (parts []string, lines int, others []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "part-") {
			others = append(others, e.Name())
			continue
		}
		parts = append(parts, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines += strings.Count(string(b), "\n")
	}
	return parts, lines, others
}

// TestClusterFailedJobPublishesNoParts runs a job of 5,000 records whose
// operator fails on record 3,999 on a real cluster of two TaskManagers with
// one slot each, so that the file sink's two subtasks run in two workers:
// the job is FAILED and neither published a part-* file (their in-progress
// files stay aside, hidden). The same job without the failure publishes
// all 5,000.
func TestClusterFailedJobPublishesNoParts(t *testing.T) {
	bin := sinkjob(t)
	c := startCluster(t, 1, 1)

	failedDir := workerDir(t)
	out, id, err := c.run(t, nil, filepath.Base(bin), "file", failedDir, "3999")
	if err == nil || id == "" {
		t.Fatalf("spate run of the failing job: err %v, job %q\n%s", err, id, out)
	}
	if d := c.waitStatus(t, id, v1.JobFailed, v1.JobFinished, v1.JobCanceled); d.State != v1.JobFailed {
		t.Fatalf("job %s is %s, want FAILED", id, d.State)
	}
	if !strings.Contains(out, "poisoned") {
		t.Errorf("the failure does not name its cause:\n%s", out)
	}
	parts, lines, others := partFiles(t, failedDir)
	if len(parts) != 0 {
		t.Errorf("the failed job published %v (%d records)", parts, lines)
	}
	for _, n := range others {
		if !strings.HasPrefix(n, ".part-") || !strings.HasSuffix(n, ".inprogress") {
			t.Errorf("unexpected file %s next to the failed job's in-progress files", n)
		}
	}

	okDir := workerDir(t)
	out, id, err = c.run(t, nil, filepath.Base(bin), "file", okDir, "-1")
	if err != nil {
		t.Fatalf("spate run of the good job: %v\n%s", err, out)
	}
	if d := c.job(t, id); d.State != v1.JobFinished {
		t.Fatalf("job %s is %s, want FINISHED", id, d.State)
	}
	parts, lines, others = partFiles(t, okDir)
	if lines != 5000 || len(others) != 0 {
		t.Errorf("the finished job published %d records in %v, left %v; want 5000 and nothing else", lines, parts, others)
	}
}

// collectLines returns the program's result lines: its output without the
// client's status lines.
func collectLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "Job ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestSessionCollect runs a program that uses Collect at parallelism 4 on
// a session of two TaskManagers with two slots each (`spate run
// --session`): the client gets exactly the records a local run gets. A
// failing one ends with its failure; a detached submission of it is
// refused with an error that says why.
func TestSessionCollect(t *testing.T) {
	bin := sinkjob(t)
	localOut, err := exec.Command(bin, "collect").Output()
	if err != nil {
		t.Fatalf("local run: %v", err)
	}
	want := collectLines(string(localOut))
	if len(want) != 5001 || want[0] != "collected 5000" {
		t.Fatalf("local run printed %d lines, starting %q", len(want), want[:min(len(want), 1)])
	}

	home := t.TempDir()
	out, err := spateEnv(t, home, "session", "start", "--target", "process-session", "--taskmanagers", "2", "--slots", "2")
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	ss := listSessions(t, home)
	if len(ss) != 1 {
		t.Fatalf("sessions = %+v", ss)
	}
	s := ss[0]
	t.Cleanup(func() {
		if out, err := spateEnv(t, home, "session", "stop", s.ID); err != nil {
			t.Logf("session stop: %v\n%s", err, out)
			syscall.Kill(s.PID, syscall.SIGKILL)
		}
	})

	out, err = spateEnv(t, home, "run", "--session", s.ID, bin, "collect")
	if err != nil {
		t.Fatalf("run --session: %v\n%s", err, out)
	}
	if !strings.Contains(out, "is FINISHED") {
		t.Errorf("the client did not follow the job to its end:\n%.2000s", out)
	}
	got := collectLines(out)
	if !slices.Equal(got, want) {
		t.Errorf("Collect on the session gave %d lines, want the local run's %d; first lines %q", len(got), len(want), got[:min(len(got), 3)])
	}
	c := &cluster{rest: s.REST}
	var tms v1.TaskManagers
	if err := c.get(t, "/v1/taskmanagers", &tms); err != nil || len(tms.TaskManagers) != 2 {
		t.Errorf("taskmanagers = %+v, %v: the job's 4 subtasks must have spanned the session's two", tms, err)
	}

	// A failing Collect job ends the client with the job's failure.
	out, err = spateEnv(t, home, "run", "--session", s.ID, bin, "collect", "3999")
	if err == nil || !strings.Contains(out, "poisoned") || strings.Contains(out, "collected") {
		t.Errorf("run --session of a failing Collect job: %v\n%.2000s", err, out)
	}

	out, err = spateEnv(t, home, "run", "--session", s.ID, "--detached", bin, "collect")
	if err == nil {
		t.Fatalf("a detached run of a Collect job succeeded:\n%s", out)
	}
	if !strings.Contains(out, "Collect") || !strings.Contains(out, "detached") {
		t.Errorf("the refusal does not say why:\n%s", out)
	}
	if strings.Contains(out, "submitted with JobID") {
		t.Errorf("the detached Collect job was submitted:\n%s", out)
	}
}

// TestPerJobCollect runs the Collect program on a per-job cluster, which
// ends with its job: the client still gets every record (it fetches them
// all before it asks for the job's final status), and the cluster is gone
// when the client returns.
func TestPerJobCollect(t *testing.T) {
	bin := sinkjob(t)
	localOut, err := exec.Command(bin, "collect").Output()
	if err != nil {
		t.Fatalf("local run: %v", err)
	}
	want := collectLines(string(localOut))
	cmd := exec.Command(filepath.Join(binaries(t), "spate"), "run", "--target", "process-per-job", bin, "collect")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spate run --target process-per-job: %v\n%s\n%s", err, out, stderr.String())
	}
	if got := collectLines(string(out)); !slices.Equal(got, want) {
		t.Errorf("Collect on a per-job cluster gave %d lines, want the local run's %d; first lines %q", len(got), len(want), got[:min(len(got), 3)])
	}
	m := clusterDirLine.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("the run does not name its cluster's directory:\n%s", stderr.String())
	}
	clusterGone(t, m[1], "")
}

// TestClusterSinkWaitsForTheWholeJob runs a job whose file sink's share
// ends well in one worker while a subtask in the other worker fails
// afterwards: the finished worker must not publish, since the job failed
// (on 629c30d it renamed its files to part-* as soon as its own subtasks
// had ended).
func TestClusterSinkWaitsForTheWholeJob(t *testing.T) {
	bin := sinkjob(t)
	c := startCluster(t, 1, 1)
	dir := workerDir(t)
	out, id, err := c.run(t, nil, filepath.Base(bin), "split", dir)
	if err == nil || id == "" {
		t.Fatalf("spate run of the failing job: err %v, job %q\n%s", err, id, out)
	}
	if d := c.waitStatus(t, id, v1.JobFailed, v1.JobFinished, v1.JobCanceled); d.State != v1.JobFailed {
		t.Fatalf("job %s is %s, want FAILED", id, d.State)
	}
	if !strings.Contains(out, "failing after the other worker's sink wrote its files") {
		t.Errorf("the job did not fail the way the test means (the sink's files written, none published):\n%s", out)
	}
	if parts, lines, _ := partFiles(t, dir); len(parts) != 0 {
		t.Errorf("the failed job published %v (%d records)", parts, lines)
	}
}
