package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
)

// The chaos tests of issue 11: examples/exactlyonce with checkpoints every
// 200 ms on a cluster of real processes, whose workers and TaskManagers are
// SIGKILLed at random moments (after a random number of completed
// checkpoints, so each run of the job makes progress between two kills).
// The job must end FINISHED with its committed output equal to the
// failure-free run's: every (key, number) pair once. The seed is logged;
// SPATE_CHAOS_SEED replays one.

const (
	chaosKeys  = 4
	chaosCount = 2500
	chaosKills = 5
)

// chaosArgs are the program and arguments of the job.
func chaosArgs(bin, out string) []string {
	return []string{"-D", "restart-strategy.type=fixed-delay", "-D", "restart-strategy.fixed-delay.attempts=50",
		"-D", "restart-strategy.fixed-delay.delay=0 s", "-p", "2",
		filepath.Join(bin, "exactlyonce"), "-keys", fmt.Sprint(chaosKeys), "-count", fmt.Sprint(chaosCount), "-rate", "1000",
		"-checkpoint-interval", "200ms", "-out", out}
}

func chaosRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SPATE_CHAOS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("chaos seed %d (replay with SPATE_CHAOS_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x5eed))
}

// clusterProcs returns the pids of the TaskManagers and of the job
// workers of the cluster whose processes name dir.
func clusterProcs(dir string) (tms, workers []int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		environ, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		switch {
		case len(args) > 1 && args[1] == "taskmanager":
			tms = append(tms, pid)
		case bytes.Contains(environ, []byte("SPATE_WORKER_DEPLOYMENT=")):
			workers = append(workers, pid)
		}
	}
	return tms, workers
}

// chaos kills kills processes of the job id's cluster (dir, REST at rest)
// while it runs: each after 1 to 3 more completed checkpoints once the job
// runs again, a worker or a whole TaskManager at random, waiting for the
// job's restart before the next.
func chaos(t *testing.T, rnd *rand.Rand, rest, dir, id string, kills int) {
	t.Helper()
	c, err := client.New(rest)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	completed := func() int {
		s, err := c.JobCheckpoints(ctx, id)
		if err != nil {
			return -1
		}
		return s.Counts.Completed
	}
	running := func(d v1.JobDetails) bool {
		total := 0
		for _, v := range d.Vertices {
			total += v.Parallelism
		}
		return d.State == v1.JobRunning && d.StatusCounts[v1.TaskRunning] == total
	}
	restarts := 0
	for i := range kills {
		base, more := completed(), 1+rnd.IntN(3)
		waitFor(t, 60*time.Second, fmt.Sprintf("kill %d: the job to run and complete %d more checkpoints", i+1, more), func() bool {
			d, err := c.Job(ctx, id)
			if err != nil {
				return false
			}
			if v1.TerminalJobStatus(d.State) {
				t.Fatalf("the job ended %s after %d of %d kills: make it longer (-count)", d.State, i, kills)
			}
			return running(d) && completed() >= base+more
		})
		tms, workers := clusterProcs(dir)
		victims, what := workers, "worker"
		if rnd.IntN(2) == 1 || len(workers) == 0 {
			// A TaskManager running a worker of the job: killing an idle
			// one fails nothing, and the job would not restart (found by
			// runtime, seed 1796424043996871818).
			victims, what = nil, "TaskManager"
			for _, tm := range tms {
				if len(childrenOf(tm)) > 0 {
					victims = append(victims, tm)
				}
			}
		}
		if len(victims) == 0 {
			t.Fatalf("kill %d: no process of the cluster in %s found", i+1, dir)
		}
		pid := victims[rnd.IntN(len(victims))]
		syscall.Kill(pid, syscall.SIGKILL)
		t.Logf("kill %d: SIGKILL %s %d after %d completed checkpoints", i+1, what, pid, completed())
		waitFor(t, 60*time.Second, fmt.Sprintf("kill %d: the job to restart", i+1), func() bool {
			d, err := c.Job(ctx, id)
			return err == nil && d.NumRestarts > restarts
		})
		d, _ := c.Job(ctx, id)
		restarts = d.NumRestarts
	}
}

func wantPairs() []string {
	var want []string
	for k := range chaosKeys {
		for n := 1; n <= chaosCount; n++ {
			want = append(want, fmt.Sprintf("%d %d", k, n))
		}
	}
	slices.Sort(want)
	return want
}

// TestChaosSession: on a session cluster of the process provider.
func TestChaosSession(t *testing.T) {
	rnd := chaosRand(t)
	home := t.TempDir()
	out, err := spateEnv(t, home, "session", "start", "--target", "process-session", "--taskmanagers", "2", "--slots", "2")
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
	bin := binaries(t)
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "spate"), append([]string{"run", "--session", s.ID}, chaosArgs(bin, dir)...)...)
	cmd.Env = append(os.Environ(), "SPATE_HOME="+home)
	cmd.WaitDelay = 5 * time.Second
	run := startBackground(t, cmd)
	t.Cleanup(func() {
		run.cmd.Process.Signal(syscall.SIGTERM)
		<-run.done
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
	chaos(t, rnd, s.REST, s.Dir, id, chaosKills)
	c := &cluster{rest: s.REST}
	d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled)
	if d.State != v1.JobFinished {
		var ex v1.JobExceptions
		c.get(t, "/v1/jobs/"+id+"/exceptions", &ex)
		t.Fatalf("job ended %s after %d restarts: %s", d.State, d.NumRestarts, ex.RootException)
	}
	if got, want := committedLines(t, dir), wantPairs(); !slices.Equal(got, want) {
		t.Fatalf("after %d restarts: committed %d lines, want the %d pairs once each", d.NumRestarts, len(got), len(want))
	}
	t.Logf("FINISHED after %d restarts with every pair once", d.NumRestarts)
}

// TestChaosPerJob: on a per-job cluster of the process provider; the
// cluster is removed after the job.
func TestChaosPerJob(t *testing.T) {
	rnd := chaosRand(t)
	bin := binaries(t)
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "spate"), append([]string{"run", "--target", "process-per-job"}, chaosArgs(bin, dir)...)...)
	cmd.WaitDelay = 5 * time.Second
	run := startBackground(t, cmd)
	ended := false
	t.Cleanup(func() {
		if !ended {
			run.cmd.Process.Signal(syscall.SIGTERM)
			<-run.done
		}
		if t.Failed() {
			t.Logf("spate run:\n%s", run.text())
		}
	})
	var id, cdir string
	waitFor(t, 60*time.Second, "the job's submission to its cluster", func() bool {
		text := run.text()
		if m := regexpJobID.FindStringSubmatch(text); m != nil {
			id = m[1]
		}
		if m := clusterDirLine.FindStringSubmatch(text); m != nil {
			cdir = m[1]
		}
		return id != "" && cdir != "" && restAPILine.MatchString(text)
	})
	chaos(t, rnd, restOf(t, run.text()), cdir, id, chaosKills)
	select {
	case err := <-run.done:
		ended = true
		if err != nil || !strings.Contains(run.text(), "is FINISHED") {
			t.Fatalf("spate run: %v: the job did not finish", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the per-job run did not end")
	}
	if got, want := committedLines(t, dir), wantPairs(); !slices.Equal(got, want) {
		t.Fatalf("committed %d lines, want the %d pairs once each", len(got), len(want))
	}
	if _, err := os.Stat(cdir); err == nil {
		t.Errorf("per-job cluster directory %s left behind", cdir)
	}
	if ps := processesNaming(cdir); len(ps) > 0 {
		t.Errorf("processes left behind: %q", ps)
	}
}
