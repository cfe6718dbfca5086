package main

import (
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
)

// The chaos tests run examples/exactlyonce with checkpoints every 200 ms
// on a cluster of real processes (the process provider: the JobManager
// starts its TaskManagers as children, and they their workers), SIGKILL
// TaskManagers and workers at random moments while it runs, and require
// the job to end FINISHED with the committed output of the failure-free
// run: K×N lines, each pair once. The seed is logged; SPATE_CHAOS_SEED
// replays it.

// The job's size: at its rate it streams for about 10 s without failures,
// long enough for the kills and their recoveries.
const (
	chaosKeys  = 4
	chaosCount = 2500
	chaosRate  = 1000 // records per second in all
	chaosKills = 5
)

// chaosConf is the job's configuration on the command line of spate run:
// parallelism 2, checkpoints every 200 ms, and restarts without a delay
// (the default exponential delay starts at 1 s and grows, which only
// makes the test longer).
var chaosConf = []string{
	"-p", "2",
	"-D", "execution.checkpointing.interval=200 ms",
	"-D", "restart-strategy.type=fixed-delay",
	"-D", "restart-strategy.fixed-delay.delay=0 s",
	"-D", "restart-strategy.fixed-delay.attempts=50",
}

// chaosProgArgs are the arguments of exactlyonce writing to out.
func chaosProgArgs(out string) []string {
	return []string{"-keys", strconv.Itoa(chaosKeys), "-count", strconv.Itoa(chaosCount), "-rate", strconv.Itoa(chaosRate),
		"-checkpoint-interval", "200ms", "-out", out}
}

// chaosArgs are spate run's arguments after the target: the job's
// configuration, the program (in bin) and its arguments.
func chaosArgs(bin, out string) []string {
	args := append(slices.Clone(chaosConf), filepath.Join(bin, "exactlyonce"))
	return append(args, chaosProgArgs(out)...)
}

// wantPairs is the failure-free output of the chaos job: every (key,
// number) pair once, sorted.
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

// checkChaosOutcome checks what a chaos run committed and that it got
// there through checkpoints: some completed, and the job restored one.
func checkChaosOutcome(t *testing.T, k *killer, out string, want []string) {
	t.Helper()
	got := committedLines(t, out)
	if !slices.Equal(got, want) {
		t.Errorf("after %d kills the job committed %d lines, the failure-free run %d: %s", len(k.killed), len(got), len(want), pairDiff(got, want))
	}
	if k.last.Counts.Completed == 0 || k.last.Counts.Restored == 0 {
		t.Errorf("checkpoints %+v: the job must have completed checkpoints and restored one (else the output proves nothing about recovery)", k.last)
	}
}

// TestChaosPerJob: a per-job cluster.
func TestChaosPerJob(t *testing.T) {
	seed := chaosSeed(t)
	bin := binaries(t)
	want := failureFree(t)
	began := time.Now()
	out := workerDir(t)
	tmp := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "spate"), append([]string{"run", "--target", "process-per-job"}, chaosArgs(bin, out)...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.WaitDelay = 5 * time.Second
	run := startBackground(t, cmd)
	run.stopAtCleanup(t, syscall.SIGINT, 20*time.Second)
	var id, dir, rest string
	waitFor(t, 60*time.Second, "the per-job cluster and its job", func() bool {
		text := run.text()
		if m := regexpJobID.FindStringSubmatch(text); m != nil {
			id = m[1]
		}
		if m := clusterDirLine.FindStringSubmatch(text); m != nil {
			dir = m[1]
		}
		if m := restAPILine.FindStringSubmatch(text); m != nil {
			rest = m[1]
		}
		return id != "" && dir != "" && rest != ""
	})
	c := &cluster{rest: rest}
	var jm int
	waitFor(t, 20*time.Second, "the per-job JobManager's process", func() bool {
		jm = jobManagerOf(dir)
		return jm != 0
	})
	t.Logf("%v: the job runs on the per-job cluster in %s", time.Since(began).Round(time.Millisecond), dir)
	k := &killer{t: t, rng: rand.New(rand.NewPCG(seed, 1)), c: c, job: id, jm: jm, mark: "-out " + out, kills: chaosKills}
	k.run()
	t.Logf("%v: the job runs again after the last kill", time.Since(began).Round(time.Millisecond))
	select {
	case err := <-run.done:
		if err != nil || !strings.Contains(run.text(), "is FINISHED") {
			t.Fatalf("spate run: %v; the job did not finish", err)
		}
	case <-time.After(120 * time.Second):
		t.Fatal("the job did not end within 120 s of the last kill")
	}
	t.Logf("%v: spate run ended", time.Since(began).Round(time.Millisecond))
	checkChaosOutcome(t, k, out, want)
	clusterGone(t, dir, rest)
	t.Logf("%v: the cluster is gone", time.Since(began).Round(time.Millisecond))
}

// TestChaosSession: a session cluster (process-session), whose
// TaskManagers outlive the job and are replaced when killed.
func TestChaosSession(t *testing.T) {
	seed := chaosSeed(t)
	want := failureFree(t)
	home := t.TempDir()
	o, err := spateEnv(t, home, "session", "start", "--target", "process-session", "--taskmanagers", "2", "--slots", "1")
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, o)
	}
	ss := listSessions(t, home)
	if len(ss) != 1 {
		t.Fatalf("sessions %+v after start:\n%s", ss, o)
	}
	s := ss[0]
	t.Cleanup(func() {
		if o, err := spateEnv(t, home, "session", "stop", s.ID); err != nil {
			t.Logf("session stop: %v\n%s", err, o)
			syscall.Kill(s.PID, syscall.SIGKILL)
		}
	})
	c := &cluster{rest: s.REST}
	out := workerDir(t)
	o, err = spateEnv(t, home, append([]string{"run", "--session", s.ID, "--detached"}, chaosArgs(binaries(t), out)...)...)
	m := regexpJobID.FindStringSubmatch(o)
	if err != nil || m == nil {
		t.Fatalf("run --session: %v\n%s", err, o)
	}
	id := m[1]
	k := &killer{t: t, rng: rand.New(rand.NewPCG(seed, 2)), c: c, job: id, jm: s.PID, mark: "-out " + out, kills: chaosKills}
	k.run()
	d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled)
	if d.State != v1.JobFinished {
		t.Fatalf("job %s is %s: %s", id, d.State, c.exceptions(t, id).RootException)
	}
	c.get(t, "/v1/jobs/"+id+"/checkpoints", &k.last)
	checkChaosOutcome(t, k, out, want)
	if t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(s.Dir, "log", "*"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, b[max(0, len(b)-4000):])
		}
	}
}
