package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/savepoint"
	"github.com/spate-dev/spate/internal/snapshot"
)

// The savepoint tests run examples/exactlyonce (checkpoints every 200 ms,
// parallelism 2, about 10 s of records) on a process session, stop it
// with a savepoint mid-run, move the savepoint elsewhere (it is
// relocatable), and start the program again from it: the committed
// output of the two pieces together must be the failure-free run's, each
// pair once.

var regexpSavepointPath = regexp.MustCompile(`Savepoint completed\. Path: (\S+)`)

// savepointSession starts a process session of two TaskManagers of one
// slot, stopped when the test ends.
func savepointSession(t *testing.T, home string) sessionInfo {
	t.Helper()
	return processSession(t, home, 2, 1)
}

// processSession starts a process session of tms TaskManagers of slots
// slots each, stopped when the test ends.
func processSession(t *testing.T, home string, tms, slots int) sessionInfo {
	t.Helper()
	o, err := spateEnv(t, home, "session", "start", "--target", "process-session", "--taskmanagers", strconv.Itoa(tms), "--slots", strconv.Itoa(slots))
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
	return s
}

// submit runs exactlyonce on the session, detached, with extra spate run
// flags and program arguments, and returns the job id.
func submitExactlyOnce(t *testing.T, home string, s sessionInfo, out string, runFlags, progArgs []string) string {
	t.Helper()
	args := append([]string{"run", "--session", s.ID, "--detached"}, runFlags...)
	args = append(append(args, chaosArgs(binaries(t), out)...), progArgs...)
	o, err := spateEnv(t, home, args...)
	m := regexpJobID.FindStringSubmatch(o)
	if err != nil || m == nil {
		t.Fatalf("spate %v: %v\n%s", args, err, o)
	}
	return m[1]
}

// waitMidRun waits until job id completed a checkpoint and committed
// some output, while still RUNNING.
func waitMidRun(t *testing.T, c *cluster, id, out string) {
	t.Helper()
	waitFor(t, 60*time.Second, "a completed checkpoint and committed output of job "+id, func() bool {
		var s v1.CheckpointingStatistics
		if err := c.get(t, "/v1/jobs/"+id+"/checkpoints", &s); err != nil {
			return false
		}
		entries, _ := os.ReadDir(out)
		committed := slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name()[0] != '.' })
		return s.Counts.Completed > 0 && committed
	})
	if d := c.job(t, id); d.State != v1.JobRunning {
		t.Fatalf("job %s is %s before the stop: the test needs it mid-run (a slower rate?)", id, d.State)
	}
}

// checkPiece checks the committed output of a stopped first piece: some
// pairs, none twice, fewer than all.
func checkPiece(t *testing.T, out string, want []string) {
	t.Helper()
	got := committedLines(t, out)
	if len(got) == 0 || len(got) >= len(want) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatalf("the stopped job committed %d lines (%d distinct) of %d: want some, each once, not all", len(got), len(slices.Compact(slices.Clone(got))), len(want))
	}
}

// checkSavepointCommitted checks that once spate stop returned, the
// sink's transactions the stop's savepoint at path holds are committed
// in out: each committable's final file exists, its in-progress file is
// gone (the job stops FINISHED only after every sink confirmed its
// commit), and the committed lines of each key are 1..n, each once.
func checkSavepointCommitted(t *testing.T, path, out string) {
	t.Helper()
	snap, err := savepoint.Load(context.Background(), path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, op := range snap.Operators {
		if op.UID != "files" {
			continue
		}
		for _, p := range op.Parts {
			if !p.HasState {
				continue
			}
			b, err := os.ReadFile(localFile(t, p.Handle.URL))
			if err != nil {
				t.Fatal(err)
			}
			es, err := snapshot.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				var c struct {
					Files []struct{ InProgress, Final string }
				}
				if err := json.Unmarshal(e.Data, &c); err != nil {
					t.Fatalf("committable %q of the savepoint: %v", e.Data, err)
				}
				for _, f := range c.Files {
					files++
					if _, err := os.Stat(filepath.Join(out, f.Final)); err != nil {
						t.Errorf("after spate stop, %s of the savepoint's transactions is not committed: %v", f.Final, err)
					}
					if _, err := os.Stat(filepath.Join(out, f.InProgress)); err == nil {
						t.Errorf("after spate stop, %s is still in progress", f.InProgress)
					}
				}
			}
		}
	}
	if files == 0 {
		t.Fatalf("the savepoint %s holds no transaction of the sink \"files\": nothing to check", path)
	}
	last, lines := map[string]int{}, map[string]bool{}
	for _, l := range committedLines(t, out) {
		k, n, _ := strings.Cut(l, " ")
		last[k] = max(last[k], atoi(t, n))
		lines[l] = true
	}
	for k, n := range last {
		for i := 1; i <= n; i++ {
			if !lines[k+" "+strconv.Itoa(i)] {
				t.Fatalf("after spate stop, key %s has %d committed but not %d", k, n, i)
			}
		}
	}
	t.Logf("after spate stop: the savepoint's %d pre-committed files are committed", files)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// localFile is the path of a file:// URL.
func localFile(t *testing.T, u string) string {
	t.Helper()
	p, ok := strings.CutPrefix(u, "file://")
	if !ok {
		t.Fatalf("%s is not a file:// URL", u)
	}
	return p
}

// relocate moves a savepoint directory elsewhere and returns its new path.
func relocate(t *testing.T, path string) string {
	t.Helper()
	moved := filepath.Join(t.TempDir(), "moved-"+filepath.Base(path))
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	return moved
}

// TestStopWithSavepointAndRestart: spate stop --savepoint mid-run, then
// spate run -s with a changed build (an operator added between the
// checker and the sink).
func TestStopWithSavepointAndRestart(t *testing.T) {
	want := wantPairs()
	home := t.TempDir()
	s := savepointSession(t, home)
	c := &cluster{rest: s.REST}
	out, spDir := workerDir(t), t.TempDir()
	id := submitExactlyOnce(t, home, s, out, nil, nil)
	waitMidRun(t, c, id, out)

	began := time.Now()
	o, err := spateEnv(t, home, "stop", "-m", s.REST, "--savepoint", spDir, id)
	m := regexpSavepointPath.FindStringSubmatch(o)
	if err != nil || m == nil {
		t.Fatalf("spate stop: %v\n%s", err, o)
	}
	stopped := time.Since(began)
	if d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled); d.State != v1.JobFinished {
		t.Fatalf("job %s is %s after spate stop, want FINISHED: %s", id, d.State, c.exceptions(t, id).RootException)
	}
	checkPiece(t, out, want)
	checkSavepointCommitted(t, m[1], out)
	path := relocate(t, m[1])

	restart := time.Now()
	id2 := submitExactlyOnce(t, home, s, out, []string{"-s", path}, []string{"-extra"})
	waitFor(t, 60*time.Second, "job "+id2+" RUNNING", func() bool { return allRunning(c.job(t, id2)) })
	running, total := time.Since(restart), time.Since(began)
	if d := c.waitStatus(t, id2, v1.JobFinished, v1.JobFailed, v1.JobCanceled); d.State != v1.JobFinished {
		t.Fatalf("job %s restored from %s is %s: %s", id2, path, d.State, c.exceptions(t, id2).RootException)
	}
	var st v1.CheckpointingStatistics
	if err := c.get(t, "/v1/jobs/"+id2+"/checkpoints", &st); err != nil {
		t.Fatal(err)
	}
	if st.Latest.Restored == nil || st.Latest.Restored.ExternalPath != path {
		t.Errorf("job %s restored %+v, want the savepoint %s", id2, st.Latest.Restored, path)
	}
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("the two pieces committed %d lines, one uninterrupted run %d: %s", len(got), len(want), pairDiff(got, want))
	}
	t.Logf("spate stop (savepoint, sinks committed, FINISHED) took %v; spate run -s to every subtask RUNNING %v; stop to RUNNING again %v",
		stopped.Round(time.Millisecond), running.Round(time.Millisecond), total.Round(time.Millisecond))
}

// regexpPerJobREST finds the REST address a detached per-job run prints.
var regexpPerJobREST = regexp.MustCompile(`REST API at http://(\S+) for job`)

// TestPerJobStopWithSavepoint stops a detached per-job cluster's job with
// a savepoint: the cluster ends with its job, but only after spate stop
// learnt the savepoint's path (before, the client polling the trigger
// found the JobManager gone: "connection refused"). A per-job run from
// the savepoint then finishes the output, each pair once.
func TestPerJobStopWithSavepoint(t *testing.T) {
	want := wantPairs()
	home := t.TempDir()
	out, spDir := workerDir(t), t.TempDir()
	args := append([]string{"run", "--target", "process-per-job", "--detached"}, chaosArgs(binaries(t), out)...)
	o, err := spateEnv(t, home, args...)
	id, rest := regexpJobID.FindStringSubmatch(o), regexpPerJobREST.FindStringSubmatch(o)
	if err != nil || id == nil || rest == nil {
		t.Fatalf("spate run --detached on a per-job cluster: %v\n%s", err, o)
	}
	c := &cluster{rest: rest[1]}
	waitMidRun(t, c, id[1], out)
	o, err = spateEnv(t, home, "stop", "-m", rest[1], "--savepoint", spDir, id[1])
	m := regexpSavepointPath.FindStringSubmatch(o)
	if err != nil || m == nil {
		t.Fatalf("spate stop on a per-job cluster: %v\n%s", err, o)
	}
	checkPiece(t, out, want)
	checkSavepointCommitted(t, m[1], out)
	o, err = spateEnv(t, home, append([]string{"run", "--target", "process-per-job", "-s", m[1]}, chaosArgs(binaries(t), out)...)...)
	if err != nil || !strings.Contains(o, "is FINISHED") {
		t.Fatalf("spate run -s on a per-job cluster: %v\n%s", err, o)
	}
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("the two pieces committed %d lines, one uninterrupted run %d: %s", len(got), len(want), pairDiff(got, want))
	}
}

// TestSavepointsThroughREST: POST /v1/jobs/{id}/savepoints (the job goes
// on), then POST /v1/jobs/{id}/stop, each followed by GET
// /v1/jobs/{id}/savepoints/{triggerid}; the job restarts from the stop's
// savepoint at the same parallelism, on the local target.
func TestSavepointsThroughREST(t *testing.T) {
	want := wantPairs()
	home := t.TempDir()
	s := savepointSession(t, home)
	c := &cluster{rest: s.REST}
	out, spDir := workerDir(t), t.TempDir()
	id := submitExactlyOnce(t, home, s, out, nil, nil)
	waitMidRun(t, c, id, out)

	await := func(trigger string) v1.SavepointStatus {
		t.Helper()
		var st v1.SavepointStatus
		waitFor(t, 60*time.Second, "savepoint "+trigger+" COMPLETED", func() bool {
			if err := c.get(t, "/v1/jobs/"+id+"/savepoints/"+trigger, &st); err != nil {
				t.Fatal(err)
			}
			return st.Status.ID == v1.OperationCompleted
		})
		if st.Operation == nil || st.Operation.FailureCause != nil || st.Operation.Location == "" {
			t.Fatalf("savepoint %s: %+v, want a location", trigger, st.Operation)
		}
		return st
	}
	trigger := func(path string, body any) string {
		t.Helper()
		code, b := c.post(t, "/v1/jobs/"+id+path, body)
		var tr v1.TriggerResponse
		if code != 202 || json.Unmarshal(b, &tr) != nil || tr.RequestID == "" {
			t.Fatalf("POST %s: %d %s, want 202 with a request-id", path, code, b)
		}
		return tr.RequestID
	}
	sp := await(trigger("/savepoints", v1.SavepointTriggerRequest{TargetDirectory: spDir}))
	if d := c.job(t, id); d.State != v1.JobRunning {
		t.Fatalf("job %s is %s after a savepoint, want RUNNING", id, d.State)
	}
	if _, err := os.Stat(filepath.Join(sp.Operation.Location, "_metadata")); err != nil {
		t.Fatalf("savepoint %s: %v", sp.Operation.Location, err)
	}
	if code, b := c.post(t, "/v1/jobs/"+id+"/stop", v1.StopWithSavepointRequest{Drain: true}); code != 400 {
		t.Errorf("POST /stop with drain: %d %s, want 400", code, b)
	}
	began := time.Now()
	stop := await(trigger("/stop", v1.StopWithSavepointRequest{TargetDirectory: spDir}))
	if d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled); d.State != v1.JobFinished {
		t.Fatalf("job %s is %s after POST /stop, want FINISHED", id, d.State)
	}
	stopped := time.Since(began)
	checkPiece(t, out, want)

	// The second piece runs on the local target (the embedded executor).
	args := append([]string{"run", "--target", "local", "--from-savepoint", relocate(t, stop.Operation.Location)}, chaosArgs(binaries(t), out)...)
	if o, err := spateEnv(t, home, args...); err != nil {
		t.Fatalf("spate run --target local --from-savepoint: %v\n%s", err, o)
	}
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("the two pieces committed %d lines, one uninterrupted run %d: %s", len(got), len(want), pairDiff(got, want))
	}
	t.Logf("POST /stop to FINISHED: %v", stopped.Round(time.Millisecond))
}

// TestSavepointUpgrades: a savepoint taken by one build of a program
// (spate savepoint, the job goes on) restores into changed builds: the
// counting operator's function body changed under the same uid (its sums
// go on from the savepoint's); the operator removed (refused naming its
// uid, then accepted with --allow-non-restored-state); its state's type
// changed (the job fails naming the operator and the state).
func TestSavepointUpgrades(t *testing.T) {
	const count = 3000
	home := t.TempDir()
	s := savepointSession(t, home)
	c := &cluster{rest: s.REST}
	out, spDir := workerDir(t), t.TempDir()
	prog := filepath.Join(binaries(t), "upgrade")
	run := func(flags []string, version string) (string, error) {
		args := append([]string{"run", "--session", s.ID, "--detached"}, flags...)
		args = append(args, prog, "-version", version, "-count", strconv.Itoa(count), "-out", out)
		if version == "v1" {
			// About 10 s: the savepoint is taken mid-run.
			args = append(args, "-rate", "300")
		}
		return spateEnv(t, home, args...)
	}
	jobOf := func(o string, err error) string {
		t.Helper()
		m := regexpJobID.FindStringSubmatch(o)
		if err != nil || m == nil {
			t.Fatalf("spate run: %v\n%s", err, o)
		}
		return m[1]
	}
	o, err := run([]string{"-D", "restart-strategy.type=none"}, "v1")
	id := jobOf(o, err)
	waitMidRun(t, c, id, out)
	began := time.Now()
	o, err = spateEnv(t, home, "savepoint", "-m", s.REST, id, spDir)
	m := regexpSavepointPath.FindStringSubmatch(o)
	if err != nil || m == nil {
		t.Fatalf("spate savepoint: %v\n%s", err, o)
	}
	t.Logf("spate savepoint took %v", time.Since(began).Round(time.Millisecond))
	path := m[1]
	if d := c.job(t, id); d.State != v1.JobRunning {
		t.Fatalf("job %s is %s after spate savepoint, want RUNNING", id, d.State)
	}
	if o, err := spateEnv(t, home, "cancel", "-m", s.REST, id); err != nil {
		t.Fatalf("spate cancel: %v\n%s", err, o)
	}
	c.waitStatus(t, id, v1.JobCanceled)

	// The function body changed, same uid: the sums go on.
	id = jobOf(run([]string{"-s", path}, "body"))
	if d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed); d.State != v1.JobFinished {
		t.Fatalf("the changed body's job is %s: %s", d.State, c.exceptions(t, id).RootException)
	}
	final := map[string]int64{}
	for _, l := range committedLines(t, out) {
		var k string
		var sum int64
		var tag string
		if n, _ := fmt.Sscanf(l, "%s %d %s", &k, &sum, &tag); n == 3 && tag == "v2" {
			final[k] = max(final[k], sum)
		}
	}
	for k := range int64(4) {
		var want int64
		for n := int64(0); n < count; n++ {
			if n%4 == k {
				want += n
			}
		}
		if got := final[strconv.FormatInt(k, 10)]; got != want {
			t.Errorf("key %d: the restored build's final sum is %d, want %d (the savepoint's sum carried on)", k, got, want)
		}
	}

	// The operator removed: refused, naming its uid, unless allowed.
	o, err = run([]string{"-s", path}, "removed")
	if err == nil || !strings.Contains(o, `uid "count"`) || !strings.Contains(o, "--allow-non-restored-state") {
		t.Errorf("spate run -s of the build without the operator: %v\n%s\nwant it refused naming uid \"count\" and --allow-non-restored-state", err, o)
	}
	// Allowed, on a per-job cluster (spate run follows the job to its end).
	if o, err := spateEnv(t, home, "run", "--target", "process-per-job", "-s", path, "--allow-non-restored-state",
		prog, "-version", "removed", "-count", strconv.Itoa(count), "-out", out); err != nil {
		t.Fatalf("the build without the operator, allowed, on a per-job cluster: %v\n%s", err, o)
	}

	// The state's type changed: a clear failure naming both.
	id = jobOf(run([]string{"-s", path, "-D", "restart-strategy.type=none"}, "type"))
	if d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed); d.State != v1.JobFailed {
		t.Fatalf("the build with the state's type changed is %s, want FAILED", d.State)
	}
	root := c.exceptions(t, id).RootException
	if !strings.Contains(root, `"Count"`) || !strings.Contains(root, `state "sum"`) || !strings.Contains(root, "does not decode") {
		t.Errorf("the changed state type failed with %q, want it to name operator \"Count\", state \"sum\" and that it does not decode", root)
	}
}

// BenchmarkSavepoint measures spate savepoint (trigger to path printed)
// of a job holding keys sums in keyed state on a process session, and
// reports the state's size.
func BenchmarkSavepoint(b *testing.B) {
	for _, keys := range []int{100_000, 500_000, 2_000_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			home := b.TempDir()
			o, err := spateEnv(b, home, "session", "start", "--target", "process-session", "--taskmanagers", "1", "--slots", "1")
			if err != nil {
				b.Fatalf("session start: %v\n%s", err, o)
			}
			ss := listSessions(b, home)
			s := ss[0]
			defer func() {
				if o, err := spateEnv(b, home, "session", "stop", s.ID); err != nil {
					b.Logf("session stop: %v\n%s", err, o)
					syscall.Kill(s.PID, syscall.SIGKILL)
				}
			}()
			c := &cluster{rest: s.REST}
			out, spDir := workerDir(b), b.TempDir()
			o, err = spateEnv(b, home, "run", "--session", s.ID, "--detached", filepath.Join(binaries(b), "upgrade"),
				"-keys", strconv.Itoa(keys), "-count", "1000000000", "-rate", strconv.Itoa(4*keys), "-checkpoint-interval", "1h", "-out", out)
			m := regexpJobID.FindStringSubmatch(o)
			if err != nil || m == nil {
				b.Fatalf("spate run: %v\n%s", err, o)
			}
			id := m[1]
			// Every key has its state once the counting vertex read keys records.
			waitFor(b, 120*time.Second, "every key in state", func() bool {
				var d v1.JobDetails
				if c.get(b, "/v1/jobs/"+id, &d) != nil || len(d.Vertices) < 2 {
					return false
				}
				return d.Vertices[1].Metrics.ReadRecords >= int64(keys)
			})
			b.ResetTimer()
			for range b.N {
				o, err := spateEnv(b, home, "savepoint", "-m", s.REST, id, spDir)
				if err != nil || !regexpSavepointPath.MatchString(o) {
					b.Fatalf("spate savepoint: %v\n%s", err, o)
				}
			}
			b.StopTimer()
			var st v1.CheckpointingStatistics
			if err := c.get(b, "/v1/jobs/"+id+"/checkpoints", &st); err != nil || st.Latest.Savepoint == nil {
				b.Fatalf("checkpoints of job %s: %v %+v", id, err, st.Latest)
			}
			b.ReportMetric(float64(st.Latest.Savepoint.StateSize)/(1<<20), "MiB")
			spateEnv(b, home, "cancel", "-m", s.REST, id)
		})
	}
}

// TestRetainedCheckpointRestart: with RETAIN_ON_CANCELLATION a cancelled
// job's latest checkpoint stays, and spate run -s starts the program from
// it as from a savepoint: the pieces commit the uninterrupted run's pairs
// exactly once.
func TestRetainedCheckpointRestart(t *testing.T) {
	want := wantPairs()
	home := t.TempDir()
	s := savepointSession(t, home)
	c := &cluster{rest: s.REST}
	out, chkDir := workerDir(t), t.TempDir()
	id := submitExactlyOnce(t, home, s, out, []string{
		"-D", "state.checkpoints.dir=" + chkDir,
		"-D", "execution.checkpointing.externalized-checkpoint-retention=RETAIN_ON_CANCELLATION",
	}, nil)
	waitMidRun(t, c, id, out)
	if o, err := spateEnv(t, home, "cancel", "-m", s.REST, id); err != nil {
		t.Fatalf("spate cancel: %v\n%s", err, o)
	}
	c.waitStatus(t, id, v1.JobCanceled)
	var retained []string
	waitFor(t, 30*time.Second, "the cancelled job's retained checkpoint", func() bool {
		retained, _ = filepath.Glob(filepath.Join(chkDir, id, "chk-*", "_metadata"))
		return len(retained) == 1
	})
	id2 := submitExactlyOnce(t, home, s, out, []string{"-s", filepath.Dir(retained[0])}, nil)
	if d := c.waitStatus(t, id2, v1.JobFinished, v1.JobFailed, v1.JobCanceled); d.State != v1.JobFinished {
		t.Fatalf("job %s started from %s is %s: %s", id2, retained[0], d.State, c.exceptions(t, id2).RootException)
	}
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("the two pieces committed %d lines, one uninterrupted run %d: %s", len(got), len(want), pairDiff(got, want))
	}
	// A finished job's checkpoints are deleted.
	if left, _ := filepath.Glob(filepath.Join(chkDir, id2, "chk-*")); len(left) != 0 {
		t.Errorf("the finished job left checkpoints %v", left)
	}
}
