package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// TestClusterRestartAfterTaskManagerLost: a job whose configuration sets a
// restart strategy survives the SIGKILL of the TaskManager running it: it
// goes RESTARTING, runs again (attempt 2) on the TaskManager left, with
// numRestarts 1, and `spate run` following it prints the restart and its
// cause. Real processes: JobManager, TaskManagers, workers, the CLI.
func TestClusterRestartAfterTaskManagerLost(t *testing.T) {
	c := startCluster(t, 2, 2)
	bin := binaries(t)
	cmd := exec.Command(filepath.Join(bin, "spate"), "run", "--target", "remote", "--jobmanager", c.rest,
		"-D", "restart-strategy.type=fixed-delay", "-D", "restart-strategy.fixed-delay.delay=0 s", "-p", "2",
		filepath.Join(bin, "topn"), "-events", "1000000000000")
	// The program it runs may hold the output open a moment longer.
	cmd.WaitDelay = 5 * time.Second
	run := startBackground(t, cmd)
	run.stopAtCleanup(t, syscall.SIGTERM, 10*time.Second)
	id := run.awaitJobID(t)
	allRunning := func(d v1.JobDetails) bool {
		total := 0
		for _, v := range d.Vertices {
			total += v.Parallelism
		}
		return d.State == v1.JobRunning && d.StatusCounts[v1.TaskRunning] == total
	}
	waitFor(t, 60*time.Second, "the job's subtasks to run", func() bool { return allRunning(c.job(t, id)) })
	// The job's two slots are on the first TaskManager (registration
	// order): kill it.
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
	start := time.Now()
	c.tms[victim].cmd.Process.Kill()
	var d v1.JobDetails
	waitFor(t, 60*time.Second, "the job to run again after a restart", func() bool {
		d = c.job(t, id)
		if v1.TerminalJobStatus(d.State) {
			t.Fatalf("job ended %s instead of restarting", d.State)
		}
		return d.NumRestarts == 1 && allRunning(d)
	})
	t.Logf("SIGKILL of the TaskManager to every subtask RUNNING again: %v", time.Since(start).Round(time.Millisecond))
	var ex v1.JobExceptions
	if err := c.get(t, "/v1/jobs/"+id+"/exceptions", &ex); err != nil {
		t.Fatal(err)
	}
	name := string(rune('A' + victim))
	if !strings.Contains(ex.RootException, "tm"+name) {
		t.Errorf("root exception %q does not name the lost TaskManager tm%s", ex.RootException, name)
	}
	waitFor(t, 10*time.Second, "spate run to print the restart", func() bool {
		return strings.Contains(run.text(), "restarted (restart 1) after: ") && strings.Contains(run.text(), "is RUNNING")
	})
	// The job metric counts it too.
	var ms []v1.Metric
	if err := c.get(t, "/v1/jobs/"+id+"/metrics?get=numRestarts", &ms); err != nil || len(ms) != 1 || ms[0].Value != "1" {
		t.Errorf("GET /v1/jobs/%s/metrics?get=numRestarts = %+v, %v; want 1", id, ms, err)
	}
	if out, err := spateCLI(t, "cancel", "--jobmanager", c.rest, id); err != nil {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	c.waitStatus(t, id, v1.JobCanceled)
	// spate run follows the job to its end, and exits.
	select {
	case <-run.done:
	case <-time.After(30 * time.Second):
		t.Fatal("spate run still runs after its job was cancelled")
	}
	if !strings.Contains(run.text(), "is CANCELED") {
		t.Errorf("spate run did not report the cancellation:\n%s", run.text())
	}
	// Its progress line of the job's end (plain: the output is a pipe)
	// counts the restart, though the job ended before a poll saw it run.
	if !regexp.MustCompile(`(?m)^Job ` + id + ` \(topn\) CANCELED after .*, 1 restarts$`).MatchString(run.text()) {
		t.Errorf("spate run's end line does not count the restart:\n%s", run.text())
	}
}

// TestClusterZombieTaskManagerFenced (issue 11's zombie test): the
// TaskManager running examples/exactlyonce is frozen (SIGSTOP) past the
// heartbeat timeout and taken as lost; the job restarts from its latest
// checkpoint on the other one. Woken (SIGCONT), the zombie and its worker
// of attempt 1 change nothing: the worker is stopped, the TaskManager
// registers again, and the job finishes with its committed output exactly
// once: the zombie's sink never committed.
func TestClusterZombieTaskManagerFenced(t *testing.T) {
	c := startCluster(t, 2, 2) // heartbeat.timeout 2 s
	bin := binaries(t)
	dir := workerDir(t)
	cmd := exec.Command(filepath.Join(bin, "spate"), append([]string{"run", "--target", "remote", "--jobmanager", c.rest}, chaosArgs(bin, dir)...)...)
	cmd.WaitDelay = 5 * time.Second
	run := startBackground(t, cmd)
	run.stopAtCleanup(t, syscall.SIGTERM, 10*time.Second)
	id := run.awaitJobID(t)
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
	zombie := c.tms[victim]
	// The TaskManager and its workers freeze together, as a whole host
	// or container would.
	frozenPids := append([]int{zombie.cmd.Process.Pid}, childrenOf(zombie.cmd.Process.Pid)...)
	if len(frozenPids) < 2 {
		t.Fatalf("the TaskManager %d has no worker process", zombie.cmd.Process.Pid)
	}
	for _, pid := range frozenPids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	frozen := time.Now()
	woken := false
	wakeAll := func() {
		for _, pid := range frozenPids {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(func() {
		if !woken {
			wakeAll()
		}
	})
	waitFor(t, 60*time.Second, "the job to restart on the other TaskManager", func() bool {
		d := c.job(t, id)
		return d.NumRestarts >= 1 && d.State == v1.JobRunning || v1.TerminalJobStatus(d.State)
	})
	t.Logf("frozen TaskManager to the job RUNNING again: %v", time.Since(frozen).Round(time.Millisecond))
	wakeAll()
	woken = true
	wake := time.Now()
	// The woken TaskManager learns that its session is gone, stops its
	// worker of attempt 1 (which the JobManager refuses meanwhile) and
	// registers again.
	waitFor(t, 30*time.Second, "the zombie's worker to stop and its TaskManager to register again", func() bool {
		var now v1.TaskManagers
		return strings.Contains(zombie.stderr(), "stopping worker") && c.get(t, "/v1/taskmanagers", &now) == nil && len(now.TaskManagers) == 2
	})
	t.Logf("woken TaskManager to its worker stopped and registered again: %v", time.Since(wake).Round(time.Millisecond))
	d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled)
	if d.State != v1.JobFinished || d.NumRestarts != 1 {
		t.Fatalf("job ended %s after %d restarts, want FINISHED after one", d.State, d.NumRestarts)
	}
	select {
	case <-run.done:
	case <-time.After(30 * time.Second):
		t.Fatal("spate run still runs after its job finished")
	}
	if got, want := committedLines(t, dir), wantPairs(); !slices.Equal(got, want) {
		t.Fatalf("committed %d lines, want the %d pairs once each", len(got), len(want))
	}
}

// TestSessionRestartAfterTaskManagerKilled: on the process provider, the
// SIGKILL of the TaskManager running a job is noticed at once (child
// exit), a TaskManager is started in its place, and the job runs again,
// restarted once. The time from the SIGKILL to every subtask RUNNING is
// logged (the aim: under 1 s).
func TestSessionRestartAfterTaskManagerKilled(t *testing.T) {
	home := t.TempDir()
	out, err := spateEnv(t, home, "session", "start", "--target", "process-session", "--taskmanagers", "1", "--slots", "2")
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	ss := listSessions(t, home)
	if len(ss) != 1 {
		t.Fatalf("sessions: %+v", ss)
	}
	s := ss[0]
	t.Cleanup(func() {
		spateEnv(t, home, "session", "stop", s.ID)
		syscall.Kill(s.PID, syscall.SIGKILL)
	})
	c := &cluster{rest: s.REST}
	out, err = spateEnv(t, home, "run", "--session", s.ID, "--detached", "-D", "restart-strategy.type=fixed-delay", "-D", "restart-strategy.fixed-delay.delay=0 s",
		"-p", "2", filepath.Join(binaries(t), "topn"), "-events", "1000000000000")
	m := regexpJobID.FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	id := m[1]
	allRunning := func(d v1.JobDetails) bool {
		total := 0
		for _, v := range d.Vertices {
			total += v.Parallelism
		}
		return d.State == v1.JobRunning && d.StatusCounts[v1.TaskRunning] == total
	}
	waitFor(t, 60*time.Second, "the job's subtasks to run", func() bool { return allRunning(c.job(t, id)) })
	var pids []int
	for _, p := range processesNaming(s.Dir) {
		if strings.Contains(p, " taskmanager ") {
			pid, _ := strconv.Atoi(p[:strings.Index(p, ":")])
			pids = append(pids, pid)
		}
	}
	if len(pids) != 1 {
		t.Fatalf("want the session's one TaskManager process, found %v", processesNaming(s.Dir))
	}
	start := time.Now()
	syscall.Kill(pids[0], syscall.SIGKILL)
	waitFor(t, 60*time.Second, "the job to run again", func() bool {
		d := c.job(t, id)
		if v1.TerminalJobStatus(d.State) {
			t.Fatalf("job ended %s instead of restarting", d.State)
		}
		return d.NumRestarts == 1 && allRunning(d)
	})
	t.Logf("process provider: SIGKILL of the TaskManager to every subtask RUNNING again: %v", time.Since(start).Round(time.Millisecond))
	if out, err := spateEnv(t, home, "cancel", "--jobmanager", s.REST, id); err != nil {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	c.waitStatus(t, id, v1.JobCanceled)
}

// childrenOf returns the pids of pid's child processes.
func childrenOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read
		// after the last ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}
