package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/jobgraph"
)

// The tests in this file cover the JobManager's scheduling, limits,
// deployment timeout, job store and root exceptions on real clusters of
// processes.

var (
	hangOnce sync.Once
	hangBin  string
	hangErr  error
)

// hangProgram builds testdata/hang (a program whose worker never reports
// ready) once per test run, next to the other binaries.
func hangProgram(t *testing.T) string {
	t.Helper()
	dir := binaries(t)
	hangOnce.Do(func() {
		hangBin = filepath.Join(dir, "hang")
		if out, err := exec.Command("go", "build", "-o", hangBin, "./testdata/hang").CombinedOutput(); err != nil {
			hangErr = fmt.Errorf("build testdata/hang: %v\n%s", err, out)
		}
	})
	if hangErr != nil {
		t.Fatal(hangErr)
	}
	return hangBin
}

// post sends body as JSON and returns the status and the answer.
func (c *cluster) post(t *testing.T, path string, body any) (int, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+c.rest+path, "application/json", &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// upload stores data as an artifact and returns its id.
func (c *cluster) upload(t *testing.T, data []byte) string {
	t.Helper()
	resp, err := http.Post("http://"+c.rest+"/v1/artifacts", "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var up v1.ArtifactUploadResponse
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || up.ID == "" {
		t.Fatalf("upload: %s, %v", resp.Status, err)
	}
	return up.ID
}

// graph is a two-vertex JobGraph of the given parallelism and max
// parallelism; with over set, its source's parallelism is raised above
// the max after building (as no CLI would), with a matching fingerprint.
func graph(t *testing.T, name string, parallelism, maxPar, over int) json.RawMessage {
	t.Helper()
	g, err := jobgraph.Build(name, []jobgraph.StreamNode{
		{ID: 1, Kind: "source", Name: "src", Parallelism: parallelism, MaxParallelism: maxPar, OutType: "int"},
		{ID: 2, Kind: "sink", Name: "sink", Parallelism: parallelism, MaxParallelism: maxPar, OutType: "none"},
	}, []jobgraph.StreamEdge{{From: 1, To: 2, Partitioning: jobgraph.Hash, Type: "int"}})
	if err != nil {
		t.Fatal(err)
	}
	if over > 0 {
		g.Vertices[0].Parallelism = over
		g.Vertices[0].Operators[0].Parallelism = over
		g.Fingerprint = g.ComputeFingerprint()
	}
	b, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *cluster) exceptions(t *testing.T, id string) v1.JobExceptions {
	t.Helper()
	var ex v1.JobExceptions
	if err := c.get(t, "/v1/jobs/"+id+"/exceptions", &ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

func (c *cluster) waitFreeSlots(t *testing.T, n int) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d free slots", n), func() bool {
		var o v1.Overview
		return c.get(t, "/v1/overview", &o) == nil && o.SlotsAvailable == n
	})
}

// TestClusterSmallJobNotBlocked: on a standalone cluster of 2 slots, a job
// that waits for 3 does not block a 1-slot job submitted after it, and
// once it is cancelled the jobs waiting behind it run (on main at 629c30d
// the small jobs waited behind it, and failed with "could not get 1 slots
// ... the cluster has 2 free of 2" although nothing ran).
func TestClusterSmallJobNotBlocked(t *testing.T) {
	c := startClusterWith(t, []string{"-D", "slot.request.timeout=15 s"}, 2)
	out, blocker, err := c.run(t, []string{"-p", "3", "--detached"}, "wordcount", wordcountInput(t))
	if err != nil || blocker == "" {
		t.Fatalf("submit the blocker: %v\n%s", err, out)
	}
	if d := c.job(t, blocker); d.State != v1.JobCreated {
		t.Fatalf("a job that needs 3 of 2 slots is %s, want CREATED", d.State)
	}
	start := time.Now()
	out, id, err := c.run(t, []string{"-p", "1"}, "wordcount", wordcountInput(t))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("a 1-slot job behind a job waiting for 3 of 2 slots: %v\n%s", err, out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the 1-slot job took %v: it waited behind the blocker", took)
	}
	if got, want := c.output(id), local(t, "wordcount", "-p", "1", wordcountInput(t)); !slices.Equal(got, want) {
		t.Fatalf("output differs from local: %q vs %q", head(got), head(want))
	}
	// A job waiting behind the blocker runs once the blocker is cancelled.
	out, second, err := c.run(t, []string{"-p", "2", "--detached"}, "wordcount", wordcountInput(t))
	if err != nil || second == "" {
		t.Fatalf("submit: %v\n%s", err, out)
	}
	if out, err := spateCLI(t, "cancel", "--jobmanager", c.rest, blocker); err != nil {
		t.Fatalf("cancel the blocker: %v\n%s", err, out)
	}
	if d := c.waitStatus(t, second, v1.JobFinished, v1.JobFailed); d.State != v1.JobFinished {
		t.Fatalf("the job behind the cancelled blocker is %s: %+v", d.State, c.exceptions(t, second))
	}
	if d := c.job(t, blocker); d.State != v1.JobCanceled {
		t.Errorf("blocker is %s, want CANCELED", d.State)
	}
	c.waitFreeSlots(t, 2)
}

// TestSessionSlotCeiling: a process session has a finite ceiling on the
// slots (so TaskManagers) it allocates, slotmanager.number-of-slots.max: a
// job at -p 40 fails at once naming the key, starting no TaskManager (on
// main at 629c30d it started 20), and a job under the ceiling runs.
func TestSessionSlotCeiling(t *testing.T) {
	home := t.TempDir()
	out, err := spateEnv(t, home, "session", "start", "--target", "process-session", "--taskmanagers", "1", "--slots", "2")
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	ss := listSessions(t, home)
	if len(ss) != 1 {
		t.Fatalf("sessions = %+v", ss)
	}
	s := ss[0]
	t.Cleanup(func() {
		spateEnv(t, home, "session", "stop", s.ID)
		syscall.Kill(s.PID, syscall.SIGKILL)
	})
	start := time.Now()
	out, err = spateEnv(t, home, "run", "--session", s.ID, "-p", "40", filepath.Join(binaries(t), "wordcount"), wordcountInput(t))
	if err == nil {
		t.Fatalf("a job at -p 40 ran on a session capped at 32 slots:\n%s", out)
	}
	for _, want := range []string{"slotmanager.number-of-slots.max", "32", "parallelism 40"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, out)
		}
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the refusal took %v; it must come at submission", took)
	}
	c := &cluster{rest: s.REST}
	var tms v1.TaskManagers
	if err := c.get(t, "/v1/taskmanagers", &tms); err != nil || len(tms.TaskManagers) != 1 {
		t.Errorf("taskmanagers = %+v, %v: the refused job must start none", tms, err)
	}
	if logs, _ := filepath.Glob(filepath.Join(s.Dir, "log", "taskmanager-*.out")); len(logs) > 1 {
		t.Errorf("the session started %d TaskManagers, want its 1: %v", len(logs), logs)
	}
	out, err = spateEnv(t, home, "run", "--session", s.ID, "-p", "4", filepath.Join(binaries(t), "wordcount"), wordcountInput(t))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("a job under the ceiling: %v\n%s", err, out)
	}
}

// TestRESTSubmitParallelismLimits: POST /v1/jobs refuses, with a 400 JSON
// error naming the vertex and the limit, a job whose parallelism exceeds
// the cluster's ceiling (main at 629c30d accepted up to 32,768) or a
// vertex's max parallelism.
func TestRESTSubmitParallelismLimits(t *testing.T) {
	c := startClusterWith(t, []string{"-D", "slotmanager.number-of-slots.max=8"}, 1)
	art := c.upload(t, []byte("#!/bin/false\n"))
	tests := []struct {
		name  string
		graph json.RawMessage
		want  []string
	}{
		{name: "huge parallelism", graph: graph(t, "huge", 32768, 32768, 0), want: []string{`vertex "src`, "32768", "slotmanager.number-of-slots.max = 8"}},
		{name: "above the ceiling", graph: graph(t, "nine", 9, 128, 0), want: []string{`vertex "src`, "parallelism 9", "slotmanager.number-of-slots.max = 8"}},
		{name: "above max parallelism", graph: graph(t, "over", 2, 4, 6), want: []string{`vertex "src`, "parallelism 6", "max parallelism 4", "pipeline.max-parallelism"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := c.post(t, "/v1/jobs", v1.JobSubmitRequest{JobGraph: tt.graph, Artifact: art})
			var e v1.ErrorResponse
			if status != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || len(e.Errors) != 1 {
				t.Fatalf("POST /v1/jobs = %d %s, want a 400 JSON error", status, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(e.Errors[0], w) {
					t.Errorf("error %q lacks %q", e.Errors[0], w)
				}
			}
		})
	}
	var ov v1.JobsOverview
	if err := c.get(t, "/v1/jobs/overview", &ov); err != nil || len(ov.Jobs) != 0 {
		t.Errorf("refused jobs are listed: %+v, %v", ov, err)
	}
}

// TestClusterDeploymentTimeout: a job whose worker never reports ready (a
// binary that is not a Spate program, a main that blocks) fails within
// jobmanager.worker.deployment-timeout, naming the program, the worker and
// its TaskManager, and frees its slots (on main at 629c30d it stayed
// RUNNING with its tasks DEPLOYING forever).
func TestClusterDeploymentTimeout(t *testing.T) {
	c := startClusterWith(t, []string{"-D", "jobmanager.worker.deployment-timeout=2 s"}, 1)
	check := func(t *testing.T, id, program string, submitted time.Time) {
		t.Helper()
		var d v1.JobDetails
		waitFor(t, 20*time.Second, "the job to fail", func() bool {
			d = c.job(t, id)
			return d.State == v1.JobFailed
		})
		if took := time.Since(submitted); took > 15*time.Second {
			t.Errorf("the job failed after %v, with a 2 s deployment timeout", took)
		}
		ex := c.exceptions(t, id)
		for _, want := range []string{program, "worker w0", "tm-", "tmA", "did not report ready", "jobmanager.worker.deployment-timeout", "Spate program"} {
			if !strings.Contains(ex.RootException, want) {
				t.Errorf("root exception lacks %q: %s", want, ex.RootException)
			}
		}
		c.waitFreeSlots(t, 1)
	}
	t.Run("not a Spate program", func(t *testing.T) {
		sleep, err := exec.LookPath("sleep")
		if err != nil {
			t.Skip("no sleep binary")
		}
		bin, err := os.ReadFile(sleep)
		if err != nil {
			t.Fatal(err)
		}
		art := c.upload(t, bin)
		start := time.Now()
		status, body := c.post(t, "/v1/jobs", v1.JobSubmitRequest{JobGraph: graph(t, "sleeper", 1, 128, 0), Artifact: art, Args: []string{"3600"}, Program: "sleep"})
		var resp v1.JobSubmitResponse
		if status != http.StatusAccepted || json.Unmarshal(body, &resp) != nil {
			t.Fatalf("submit: %d %s", status, body)
		}
		check(t, resp.JobID, `program "sleep"`, start)
	})
	t.Run("main blocks", func(t *testing.T) {
		prog := hangProgram(t)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, filepath.Join(binaries(t), "spate"), "run", "--target", "remote", "--jobmanager", c.rest, prog).CombinedOutput()
		if err == nil {
			t.Fatalf("the hanging program's job succeeded:\n%s", out)
		}
		m := regexpJobID.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("no job submitted:\n%s", out)
		}
		if !strings.Contains(string(out), `program "hang"`) {
			t.Errorf("spate run's output does not name the program:\n%s", out)
		}
		check(t, m[1], `program "hang"`, start)
	})
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

// TestClusterRootCauseWorkerKilled SIGKILLs one worker of a job running
// in two workers, five times: the root exception is the worker's death
// ("killed by signal"), not its peer's lost connection, every time (on
// main at 629c30d it blamed the peer's "connection reset" in 4 runs of 5,
// and recorded the death nowhere).
func TestClusterRootCauseWorkerKilled(t *testing.T) {
	c := startCluster(t, 1, 1)
	for i := range 5 {
		out, id, err := c.run(t, []string{"-p", "2", "--detached"}, "topn", "-events", "1000000000000")
		if err != nil || id == "" {
			t.Fatalf("run %d: submit: %v\n%s", i, err, out)
		}
		waitFor(t, 60*time.Second, "the job's subtasks to run", func() bool {
			d := c.job(t, id)
			total := 0
			for _, v := range d.Vertices {
				total += v.Parallelism
			}
			return d.StatusCounts[v1.TaskRunning] == total || v1.TerminalJobStatus(d.State)
		})
		victim := c.tms[i%2].cmd.Process.Pid
		var workers []int
		waitFor(t, 10*time.Second, "the worker process", func() bool {
			workers = childPIDs(victim)
			return len(workers) == 1
		})
		if err := syscall.Kill(workers[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		c.waitStatus(t, id, v1.JobFailed)
		t.Logf("run %d: FAILED %v after the kill", i, time.Since(killed))
		ex := c.exceptions(t, id)
		if !strings.Contains(ex.RootException, "killed by signal") {
			t.Errorf("run %d: root exception %q is not the worker's death (history %+v)", i, ex.RootException, ex.History.Entries)
		}
		if strings.Contains(ex.RootException, "data plane") {
			t.Errorf("run %d: root exception blames the data plane: %q", i, ex.RootException)
		}
		c.waitFreeSlots(t, 2)
	}
}

// TestClusterJobStore: ended jobs are kept up to jobstore.max-capacity and
// for jobstore.expiration-time, then forgotten (on main at 629c30d a
// cluster kept every job forever).
func TestClusterJobStore(t *testing.T) {
	// Jobs that wait for 3 of 2 slots end at once when cancelled.
	endJob := func(t *testing.T, c *cluster) string {
		t.Helper()
		out, id, err := c.run(t, []string{"-p", "3", "--detached"}, "wordcount", wordcountInput(t))
		if err != nil || id == "" {
			t.Fatalf("submit: %v\n%s", err, out)
		}
		if out, err := spateCLI(t, "cancel", "--jobmanager", c.rest, id); err != nil {
			t.Fatalf("cancel: %v\n%s", err, out)
		}
		c.waitStatus(t, id, v1.JobCanceled)
		return id
	}
	known := func(c *cluster, id string) bool {
		resp, err := http.Get("http://" + c.rest + "/v1/jobs/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	t.Run("capacity", func(t *testing.T) {
		c := startClusterWith(t, []string{"-D", "jobstore.max-capacity=2"}, 2)
		var ids []string
		for range 3 {
			ids = append(ids, endJob(t, c))
		}
		if known(c, ids[0]) {
			t.Errorf("the oldest of 3 ended jobs is still kept with jobstore.max-capacity=2")
		}
		for _, id := range ids[1:] {
			if !known(c, id) {
				t.Errorf("job %s, among the 2 newest, was forgotten", id)
			}
		}
		var ov v1.JobsOverview
		if err := c.get(t, "/v1/jobs/overview", &ov); err != nil || len(ov.Jobs) != 2 {
			t.Errorf("jobs overview = %+v, %v; want the 2 kept", ov, err)
		}
	})
	t.Run("expiration", func(t *testing.T) {
		c := startClusterWith(t, []string{"-D", "jobstore.expiration-time=1 s"}, 2)
		id := endJob(t, c)
		waitFor(t, 10*time.Second, "the ended job to expire", func() bool { return !known(c, id) })
		var o v1.Overview
		if err := c.get(t, "/v1/overview", &o); err != nil || o.JobsCancelled != 0 {
			t.Errorf("overview = %+v, %v: the expired job is still counted", o, err)
		}
	})
}
