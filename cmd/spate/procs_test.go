package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// The tests in this file cover what a TaskManager must get right about its
// workers' processes: their output whatever its shape, the processes they
// start, their liveness when the cluster gave their job up, and their
// memory.

// jobLines returns the lines job printed on the cluster's TaskManagers,
// untagged, in the order each TaskManager printed them.
func (c *cluster) jobLines(job string) []string {
	return tagged(job, func(yield func(string)) {
		for _, tm := range c.tms {
			yield(tm.stdout())
		}
	})
}

// tagged returns the untagged lines of job in the texts.
func tagged(job string, texts func(yield func(string))) []string {
	prefix := "[job " + job[:8] + " "
	var lines []string
	texts(func(text string) {
		r := bufio.NewReader(strings.NewReader(text))
		for {
			line, err := r.ReadString('\n')
			if rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), prefix); ok {
				_, l, _ := strings.Cut(rest, "] ")
				lines = append(lines, l)
			}
			if err != nil {
				return
			}
		}
	})
	return lines
}

// longLine is testdata/procs' long line of n bytes.
func longLine(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%09d.", i)
	}
	return b.String()[:n]
}

// checkLongLine checks that lines hold testdata/procs' long line of n
// bytes (split into pieces) followed by its three short lines.
func checkLongLine(t *testing.T, lines []string, n int) {
	t.Helper()
	var joined strings.Builder
	var after []string
	for _, l := range lines {
		if strings.HasPrefix(l, "after the long line ") {
			after = append(after, l)
		} else if len(after) == 0 {
			joined.WriteString(l)
		}
	}
	if got, want := joined.String(), longLine(n); got != want {
		t.Errorf("the long line arrived as %d bytes in %d lines, want %d bytes", len(got), len(lines)-len(after), len(want))
	}
	if want := []string{"after the long line 1", "after the long line 2", "after the long line 3"}; strings.Join(after, "|") != strings.Join(want, "|") {
		t.Errorf("the lines after the long line are %q, want %q", after, want)
	}
}

// TestClusterLongLine runs a job that prints a line of 1.5 MiB and then
// more lines: all of it reaches the TaskManager's output (the long line in
// pieces), none is dropped.
func TestClusterLongLine(t *testing.T) {
	c := startCluster(t, 1)
	const n = 3 << 19
	out, id, err := c.run(t, nil, "procs", "-mode", "longline", "-bytes", strconv.Itoa(n))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("spate run: %v\n%s", err, out)
	}
	var lines []string
	waitFor(t, 10*time.Second, "the job's last line in the TaskManager's output", func() bool {
		lines = c.jobLines(id)
		return len(lines) > 0 && lines[len(lines)-1] == "after the long line 3"
	})
	checkLongLine(t, lines, n)
}

// processGone reports whether pid has exited (a zombie counts: it runs no
// code).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(after, "Z") || strings.HasPrefix(after, "X")
}

// TestPerJobChildHoldingOutput runs, on a per-job cluster, a job whose
// operator starts `sleep 30` with the worker's standard output: the
// cluster does not wait for the child, and the child is stopped with the
// worker's process group.
func TestPerJobChildHoldingOutput(t *testing.T) {
	bin := binaries(t)
	pidFile := filepath.Join(workerDir(t), "sleep.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "spate"), "run", "--target", "process-per-job",
		filepath.Join(bin, "procs"), "-mode", "inherit", "-pidfile", pidFile).CombinedOutput()
	took := time.Since(began)
	b, rerr := os.ReadFile(pidFile)
	pid, perr := strconv.Atoi(string(b))
	if rerr != nil || perr != nil {
		t.Fatalf("the job did not start its child (%v, %v): %v\n%s", rerr, perr, err, out)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if err != nil || !strings.Contains(string(out), "is FINISHED") {
		t.Fatalf("spate run: %v\n%s", err, out)
	}
	// The child sleeps 30 s: a cluster that waits for it takes that long.
	if took > 15*time.Second {
		t.Errorf("the per-job run took %v: the cluster waited for the child holding its worker's output", took.Round(time.Millisecond))
	}
	waitFor(t, 5*time.Second, "the child to be stopped with its worker's group", func() bool { return processGone(pid) })
	if m := clusterDirLine.FindSubmatch(out); m != nil {
		clusterGone(t, string(m[1]), "")
	}
}

// TestApplicationMainChild runs an application whose main starts `sleep
// 30` with its own standard output and error: the cluster ends with main
// and its job, without waiting for the child, and the child is stopped
// with main's process group.
func TestApplicationMainChild(t *testing.T) {
	bin := binaries(t)
	pidFile := filepath.Join(workerDir(t), "sleep.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "spate"), "run-application", "--target", "process-application",
		filepath.Join(bin, "procs"), "-mode", "longline", "-bytes", "10", "-main-child", pidFile).CombinedOutput()
	took := time.Since(began)
	b, rerr := os.ReadFile(pidFile)
	pid, perr := strconv.Atoi(string(b))
	if rerr != nil || perr != nil {
		t.Fatalf("main did not start its child (%v, %v): %v\n%s", rerr, perr, err, out)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if err != nil || !strings.Contains(string(out), "after the long line 3") {
		t.Fatalf("run-application: %v\n%s", err, out)
	}
	t.Logf("run-application took %v", took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("the application took %v: the JobManager waited for the child holding main's output", took.Round(time.Millisecond))
	}
	waitFor(t, 5*time.Second, "the child to be stopped with main's group", func() bool { return processGone(pid) })
	if m := appDirLine.FindSubmatch(out); m != nil {
		clusterGone(t, string(m[1]), "")
	}
}

// TestClusterFrozenTaskManager freezes (SIGSTOP) the TaskManager of a job
// whose user code appends to a file and ignores cancellation: once the
// JobManager fails the job for the lost TaskManager, the worker stops
// itself within heartbeat.timeout, though its TaskManager cannot stop it.
func TestClusterFrozenTaskManager(t *testing.T) {
	c := startCluster(t, 1) // heartbeat.interval 200 ms, heartbeat.timeout 2 s
	effects := filepath.Join(workerDir(t), "effects")
	out, id, err := c.run(t, []string{"--detached"}, "procs", "-mode", "effects", "-file", effects)
	if err != nil || id == "" {
		t.Fatalf("submit: %v\n%s", err, out)
	}
	var pid int
	waitFor(t, 30*time.Second, "the job's side effects", func() bool {
		b, _ := os.ReadFile(effects)
		first, _, ok := strings.Cut(string(b), " ")
		pid, _ = strconv.Atoi(first)
		return ok && pid > 0
	})
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	tm := c.tms[0]
	if err := tm.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the TaskManager resumes before it is stopped.
	t.Cleanup(func() { tm.cmd.Process.Signal(syscall.SIGCONT) })
	c.waitStatus(t, id, v1.JobFailed)
	failed := time.Now()
	waitFor(t, 2*time.Second+time.Second, "the worker to stop itself", func() bool { return processGone(pid) })
	t.Logf("the worker stopped %v after the job was seen FAILED", time.Since(failed).Round(time.Millisecond))
	// Gone means no more side effects.
	before, err := os.Stat(effects)
	if err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Fatal("the worker runs again")
	}
	if after, _ := os.Stat(effects); after.Size() != before.Size() {
		t.Errorf("side effects continued after the worker stopped: %d then %d bytes", before.Size(), after.Size())
	}
}

// TestClusterDefaultWorkerMemory runs jobs on a TaskManager with 2 slots
// and taskmanager.memory.process.size=512m, without a worker memory limit:
// each worker gets its share of the TaskManager's memory, 256 MiB per slot,
// of which GOMEMLIMIT is 90%.
func TestClusterDefaultWorkerMemory(t *testing.T) {
	c := startClusterTM(t, nil, []string{"-D", "taskmanager.memory.process.size=512m"}, 2)
	for _, tc := range []struct {
		parallelism string
		wantLimit   string
	}{
		{"1", strconv.Itoa(256 << 20 * 9 / 10)},
		{"2", strconv.Itoa(512 << 20 * 9 / 10)},
	} {
		out, id, err := c.run(t, []string{"-p", tc.parallelism}, "envprobe")
		if err != nil || !strings.Contains(out, "is FINISHED") {
			t.Fatalf("spate run -p %s: %v\n%s", tc.parallelism, err, out)
		}
		var n int
		var mem map[string]bool
		waitFor(t, 10*time.Second, "the job's four probe lines", func() bool {
			var text strings.Builder
			for _, tm := range c.tms {
				text.WriteString(tm.stdout())
			}
			var all []string
			for _, l := range strings.Split(text.String(), "\n") {
				if strings.HasPrefix(l, "[job "+id[:8]) {
					all = append(all, l)
				}
			}
			n, _, mem = probes(t, strings.Join(all, "\n"))
			return n == 4
		})
		if len(mem) != 1 || !mem[strconv.Quote(tc.wantLimit)] {
			t.Errorf("a job at parallelism %s ran with GOMEMLIMIT %v, want %s (its slots' share of taskmanager.memory.process.size)", tc.parallelism, mem, tc.wantLimit)
		}
	}
}

// checkNumbered checks that lines are testdata/procs' n numbered lines.
func checkNumbered(t *testing.T, lines []string, n int) {
	t.Helper()
	if len(lines) != n {
		t.Errorf("got %d of the job's %d lines", len(lines), n)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("line %06d %s", i, strings.Repeat("x", 88)); l != want {
			t.Errorf("line %d is %.40q, want %.40q", i, l, want)
			return
		}
	}
}

// TestSessionLogsKeptFiles runs a job that prints 4 MiB (more than a
// TaskManager keeps in memory) on a session whose TaskManagers are
// released when idle: spate logs prints all of it, from the session's
// files, before and after the TaskManager is gone.
func TestSessionLogsKeptFiles(t *testing.T) {
	bin := binaries(t)
	home := t.TempDir()
	out, err := spateEnv(t, home, "session", "start", "--taskmanagers", "0", "-D", "resourcemanager.taskmanager-timeout=300ms")
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	ss := listSessions(t, home)
	if len(ss) != 1 {
		t.Fatalf("sessions = %+v", ss)
	}
	s := ss[0]
	t.Cleanup(func() {
		syscall.Kill(s.PID, syscall.SIGKILL)
		spateEnv(t, home, "session", "stop", s.ID)
	})
	const n = 40000
	out, err = spateEnv(t, home, "run", "--session", s.ID, filepath.Join(bin, "procs"), "-mode", "lines", "-lines", strconv.Itoa(n))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("spate run: %v\n%s", err, out)
	}
	id := regexpJobID.FindStringSubmatch(out)[1]
	logsOf := func(args ...string) []string {
		t.Helper()
		out, err := spateEnv(t, home, append([]string{"logs"}, append(args, id)...)...)
		if err != nil {
			t.Fatalf("spate logs: %v\n%.2000s", err, out)
		}
		return tagged(id, func(yield func(string)) { yield(out) })
	}
	checkNumbered(t, logsOf("--session", s.ID), n)
	waitFor(t, 20*time.Second, "the idle TaskManager to be released", func() bool {
		var tms v1.TaskManagers
		return getJSON("http://"+s.REST+"/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == 0
	})
	checkNumbered(t, logsOf("--session", s.ID), n)
	// The session is found by its REST address too.
	checkNumbered(t, logsOf("--jobmanager", s.REST), n)
}

// TestClusterLogsRotated prints more than a TaskManager keeps in memory on
// a cluster whose TaskManager writes to a pipe, not a file: spate logs
// says that the output is incomplete and fails, instead of printing part
// of it as if it were all.
func TestClusterLogsRotated(t *testing.T) {
	c := startCluster(t, 1)
	const n = 40000
	out, id, err := c.run(t, nil, "procs", "-mode", "lines", "-lines", strconv.Itoa(n))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("spate run: %v\n%s", err, out)
	}
	last := fmt.Sprintf("line %06d %s", n-1, strings.Repeat("x", 88))
	waitFor(t, 10*time.Second, "the job's last line in the TaskManager's output", func() bool {
		lines := c.jobLines(id)
		return len(lines) > 0 && lines[len(lines)-1] == last
	})
	out, err = spateCLI(t, "logs", "--jobmanager", c.rest, id)
	if err == nil {
		t.Fatalf("spate logs succeeded with part of the output")
	}
	if !strings.Contains(out, "incomplete") || !strings.Contains(out, "last 1 MiB") {
		t.Errorf("spate logs does not say the output is incomplete:\n%.2000s", out[max(0, len(out)-2000):])
	}
	if lines := tagged(id, func(yield func(string)) { yield(out) }); len(lines) == 0 || lines[len(lines)-1] != last {
		t.Errorf("spate logs does not print the output kept")
	}
}

// getJSON decodes the JSON answer of GET url into into.
func getJSON(url string, into any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

// TestClusterLogsRotatedFile is TestClusterLogsRotated with a TaskManager
// that writes its output to a file, as a standalone TaskManager under a
// supervisor does: spate logs reads the whole output from the file that
// the TaskManager names.
func TestClusterLogsRotatedFile(t *testing.T) {
	c := startCluster(t)
	outFile := filepath.Join(t.TempDir(), "tm.out")
	f, err := os.Create(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tm := exec.Command(filepath.Join(binaries(t), "spate"), withTestTLS(t, []string{"taskmanager", "--jobmanager", c.rpc, "-D", "taskmanager.resource-id=tmFile"})...)
	tm.Stdout = f
	if err := tm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tm.Process.Signal(syscall.SIGTERM)
		tm.Wait()
	})
	waitFor(t, 20*time.Second, "the TaskManager to register", func() bool {
		var tms v1.TaskManagers
		return c.get(t, "/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == 1
	})
	const n = 40000
	out, id, err := c.run(t, nil, "procs", "-mode", "lines", "-lines", strconv.Itoa(n))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("spate run: %v\n%s", err, out)
	}
	last := fmt.Sprintf("[job %s w0] line %06d", id[:8], n-1)
	waitFor(t, 10*time.Second, "the job's last line in the TaskManager's file", func() bool {
		b, _ := os.ReadFile(outFile)
		return strings.Contains(string(b), last)
	})
	out, err = spateCLI(t, "logs", "--jobmanager", c.rest, id)
	if err != nil {
		t.Fatalf("spate logs: %v\n%.2000s", err, out)
	}
	checkNumbered(t, tagged(id, func(yield func(string)) { yield(out) }), n)
}

// TestClusterLogsGone asks for the output of a job whose TaskManager is
// gone, on a cluster whose files spate logs cannot read: it says that no
// output is kept and fails, instead of printing nothing as if the job had
// printed nothing.
func TestClusterLogsGone(t *testing.T) {
	c := startCluster(t, 1)
	out, id, err := c.run(t, []string{"-p", "1"}, "envprobe")
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("spate run: %v\n%s", err, out)
	}
	if out, err := spateCLI(t, "logs", "--jobmanager", c.rest, id); err != nil || !strings.Contains(out, "probe 1") {
		t.Fatalf("spate logs while the TaskManager runs: %v\n%s", err, out)
	}
	c.tms[0].cmd.Process.Kill()
	waitFor(t, 20*time.Second, "the TaskManager to be dropped", func() bool {
		var tms v1.TaskManagers
		return c.get(t, "/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == 0
	})
	out, err = spateCLI(t, "logs", "--jobmanager", c.rest, id)
	if err == nil || !strings.Contains(out, "no output of job "+id) {
		t.Errorf("spate logs after the TaskManager is gone: %v, want an error saying no output is kept:\n%s", err, out)
	}
}
