package main

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
)

// The rescale tests run examples/exactlyonce on a process session of two
// TaskManagers of two slots and move it between parallelisms through
// savepoints: stopped with a savepoint mid-run at one parallelism, started
// from it at another (its keyed state redistributed by key group, its
// source splits, the keys, dealt out, its sink's pre-committed files
// committed once), and so on to the end. The committed output of the
// pieces must be one uninterrupted run's, each pair once.

// rescaleSubmit runs exactlyonce on session s at parallelism p, detached,
// with extra spate run flags and program arguments, and returns the job
// id.
func rescaleSubmit(t *testing.T, home string, s sessionInfo, out string, p int, runFlags, progArgs []string) string {
	t.Helper()
	args := append([]string{"run", "--session", s.ID, "--detached"}, runFlags...)
	args = append(append(args, exactlyOnceArgs(t, out, p)...), progArgs...)
	o, err := spateEnv(t, home, args...)
	m := regexpJobID.FindStringSubmatch(o)
	if err != nil || m == nil {
		t.Fatalf("spate %v: %v\n%s", args, err, o)
	}
	return m[1]
}

// exactlyOnceArgs are spate run's arguments after the target: the chaos
// tests' (chaosArgs) at parallelism p.
func exactlyOnceArgs(t *testing.T, out string, p int) []string {
	t.Helper()
	args := chaosArgs(binaries(t), out)
	i := slices.Index(args, "-p")
	if i < 0 {
		t.Fatalf("chaosArgs %q set no parallelism", args)
	}
	args[i+1] = strconv.Itoa(p)
	return args
}

// checkParallelism fails the test unless every vertex of job id runs at
// parallelism p.
func checkParallelism(t *testing.T, c *cluster, id string, p int) {
	t.Helper()
	d := c.job(t, id)
	for _, v := range d.Vertices {
		if v.Parallelism != p {
			t.Fatalf("job %s: vertex %s has parallelism %d, want %d", id, v.Name, v.Parallelism, p)
		}
	}
}

// checkRestored fails the test unless job id restored the savepoint at
// path.
func checkRestored(t *testing.T, c *cluster, id, path string) {
	t.Helper()
	var st v1.CheckpointingStatistics
	if err := c.get(t, "/v1/jobs/"+id+"/checkpoints", &st); err != nil {
		t.Fatal(err)
	}
	if st.Latest.Restored == nil || st.Latest.Restored.ExternalPath != path {
		t.Errorf("job %s restored %+v, want the savepoint %s", id, st.Latest.Restored, path)
	}
}

// TestSavepointRescale: spate stop --savepoint at parallelism 2, spate
// run -s at 4; stopped again mid-run, started at 2 with a changed build
// (an operator added, allowed by the uids). Each stop and restart is
// timed and logged.
func TestSavepointRescale(t *testing.T) {
	want := wantPairs()
	home := t.TempDir()
	s := processSession(t, home, 2, 2)
	c := &cluster{rest: s.REST}
	out, spDir := workerDir(t), t.TempDir()

	// stop stops job id with a savepoint and returns the savepoint,
	// relocated, and how long the stop took.
	stop := func(id string) (string, time.Duration) {
		t.Helper()
		began := time.Now()
		o, err := spateEnv(t, home, "stop", "-m", s.REST, "--savepoint", spDir, id)
		m := regexpSavepointPath.FindStringSubmatch(o)
		if err != nil || m == nil {
			t.Fatalf("spate stop: %v\n%s", err, o)
		}
		took := time.Since(began)
		if d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled); d.State != v1.JobFinished {
			t.Fatalf("job %s is %s after spate stop, want FINISHED: %s", id, d.State, c.exceptions(t, id).RootException)
		}
		checkPiece(t, out, want)
		return relocate(t, m[1]), took
	}
	// restart starts the program from path at parallelism p and returns
	// the job id and the time to every subtask RUNNING.
	restart := func(path string, p int, progArgs ...string) (string, time.Duration) {
		t.Helper()
		began := time.Now()
		id := rescaleSubmit(t, home, s, out, p, []string{"-s", path}, progArgs)
		waitFor(t, 60*time.Second, "job "+id+" RUNNING", func() bool { return allRunning(c.job(t, id)) })
		took := time.Since(began)
		checkParallelism(t, c, id, p)
		checkRestored(t, c, id, path)
		return id, took
	}

	id := rescaleSubmit(t, home, s, out, 2, nil, nil)
	waitMidRun(t, c, id, out)
	path, stop1 := stop(id)
	id, run4 := restart(path, 4)
	waitMidRun(t, c, id, out)
	path, stop2 := stop(id)
	id, run2 := restart(path, 2, "-extra")
	if d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled); d.State != v1.JobFinished {
		t.Fatalf("job %s restored from %s is %s: %s", id, path, d.State, c.exceptions(t, id).RootException)
	}
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("the three pieces committed %d lines, one uninterrupted run %d: %s", len(got), len(want), pairDiff(got, want))
	}
	t.Logf("parallelism 2 -> 4: spate stop --savepoint %v, spate run -s to every subtask RUNNING %v; 4 -> 2 (an operator added): stop %v, run -s %v",
		stop1.Round(time.Millisecond), run4.Round(time.Millisecond), stop2.Round(time.Millisecond), run2.Round(time.Millisecond))
}

// TestSavepointRescaleThroughREST: the same moves through the REST
// endpoints, with the client package: POST /v1/jobs/{id}/savepoints while
// the job runs at 4 (it goes on), POST /v1/jobs/{id}/stop, each followed
// through GET /v1/jobs/{id}/savepoints/{triggerid}; the program runs on
// from the stop's savepoint at 3 on the local target.
func TestSavepointRescaleThroughREST(t *testing.T) {
	want := wantPairs()
	home := t.TempDir()
	s := processSession(t, home, 2, 2)
	c := &cluster{rest: s.REST}
	rc, err := client.New(s.REST)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, spDir := workerDir(t), t.TempDir()
	id := rescaleSubmit(t, home, s, out, 4, nil, nil)
	waitMidRun(t, c, id, out)

	trigger, err := rc.TriggerSavepoint(ctx, id, spDir)
	if err != nil {
		t.Fatalf("POST /v1/jobs/%s/savepoints: %v", id, err)
	}
	if _, err := rc.WaitSavepoint(ctx, id, trigger, 50*time.Millisecond); err != nil {
		t.Fatalf("savepoint %s: %v", trigger, err)
	}
	if d := c.job(t, id); d.State != v1.JobRunning {
		t.Fatalf("job %s is %s after a savepoint, want RUNNING", id, d.State)
	}
	began := time.Now()
	trigger, err = rc.StopWithSavepoint(ctx, id, spDir)
	if err != nil {
		t.Fatalf("POST /v1/jobs/%s/stop: %v", id, err)
	}
	path, err := rc.WaitSavepoint(ctx, id, trigger, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("stop-with-savepoint %s: %v", trigger, err)
	}
	if d, err := rc.WaitJob(ctx, id, 100*time.Millisecond, nil); err != nil || d.State != v1.JobFinished {
		t.Fatalf("job %s after POST /stop: %s, %v; want FINISHED", id, d.State, err)
	}
	stopped := time.Since(began)
	checkPiece(t, out, want)

	// The second piece runs at 3 on the local target (the embedded
	// executor: the other restore path).
	began = time.Now()
	args := append([]string{"run", "--target", "local", "-s", relocate(t, path)}, exactlyOnceArgs(t, out, 3)...)
	if o, err := spateEnv(t, home, args...); err != nil {
		t.Fatalf("spate run --target local -s at parallelism 3: %v\n%s", err, o)
	}
	local := time.Since(began)
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("the two pieces committed %d lines, one uninterrupted run %d: %s", len(got), len(want), pairDiff(got, want))
	}
	t.Logf("parallelism 4 -> 3 through REST: POST /stop to FINISHED %v; the rest of the run on the local target from the savepoint %v",
		stopped.Round(time.Millisecond), local.Round(time.Millisecond))
}
