package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// The tests in this file start a real cluster: a JobManager and
// TaskManagers as child processes of the spate binary, on loopback with
// free ports, and submit the example programs to it with `spate run`.

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// binaries builds the spate CLI and the example programs once per test
// run.
func binaries(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	binOnce.Do(func() {
		// Removed by TestMain.
		binDir, binErr = os.MkdirTemp("", "spate-itest-")
		if binErr != nil {
			return
		}
		for name, pkg := range map[string]string{"spate": ".", "wordcount": "../../examples/wordcount", "topn": "../../examples/topn", "exactlyonce": "../../examples/exactlyonce", "kafka": "../../examples/kafka", "nondet": "./testdata/nondet", "misbehave": "./testdata/misbehave", "multijob": "./testdata/multijob", "envprobe": "./testdata/envprobe", "twice": "./testdata/twice", "procs": "./testdata/procs", "spy": "./testdata/spy", "slowsink": "./testdata/slowsink", "upgrade": "./testdata/upgrade"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg).CombinedOutput()
			if err != nil {
				binErr = fmt.Errorf("build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// proc is a child process whose output is kept.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer
	err  bytes.Buffer
}

func (p *proc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(b)
}

// start runs the spate binary with args until the test ends, with a
// temporary directory of its own (removed with the test's).
func start(t testing.TB, args ...string) *proc {
	t.Helper()
	return startEnv(t, []string{"TMPDIR=" + t.TempDir()}, args...)
}

// startEnv is start with env added to the process's environment.
func startEnv(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	args = withTestTLS(t, args)
	p := &proc{cmd: exec.Command(filepath.Join(binaries(t), "spate"), args...)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = lockedWriter{&p.mu, &p.out}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.err}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	p.done = done
	go func() { p.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("spate %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout(), p.stderr())
		}
	})
	return p
}

// cluster is a running JobManager and its TaskManagers.
type cluster struct {
	rpc, rest string
	jm        *proc
	tms       []*proc
	token     string // the REST token get sends: the JobManager's rest.authentication.token-file
}

var regexpJobID = regexp.MustCompile(`submitted with JobID ([0-9a-f]{32})`)

var addrLine = regexp.MustCompile(`JobManager RPC at (\S+), REST at https?://(\S+)`)

// startCluster starts a JobManager and one TaskManager per entry of slots.
func startCluster(t testing.TB, slots ...int) *cluster {
	return startClusterWith(t, nil, slots...)
}

// startClusterWith is startCluster with more JobManager arguments.
func startClusterWith(t testing.TB, jmArgs []string, slots ...int) *cluster {
	return startClusterTM(t, jmArgs, nil, slots...)
}

// startClusterTM is startClusterWith with more TaskManager arguments.
func startClusterTM(t testing.TB, jmArgs, tmArgs []string, slots ...int) *cluster {
	t.Helper()
	args := []string{"jobmanager", "--rpc-port", "0", "--rest-port", "0", "--host", "127.0.0.1",
		"-D", "heartbeat.interval=200", "-D", "heartbeat.timeout=2000", "-D", "slot.request.timeout=20 s"}
	c := &cluster{jm: start(t, append(args, jmArgs...)...)}
	for _, a := range jmArgs {
		if path, ok := strings.CutPrefix(a, "rest.authentication.token-file="); ok {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			c.token = strings.TrimSpace(string(b))
		}
	}
	waitFor(t, 20*time.Second, "the JobManager to listen", func() bool {
		m := addrLine.FindStringSubmatch(c.jm.stdout())
		if m != nil {
			c.rpc, c.rest = m[1], m[2]
		}
		return m != nil
	})
	for i, n := range slots {
		args := append([]string{"taskmanager", "--jobmanager", c.rpc, "--slots", fmt.Sprint(n),
			"-D", fmt.Sprintf("taskmanager.resource-id=tm%c", 'A'+i)}, tmArgs...)
		c.tms = append(c.tms, start(t, args...))
	}
	waitFor(t, 20*time.Second, "the TaskManagers to register", func() bool {
		var tms v1.TaskManagers
		return c.get(t, "/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == len(slots)
	})
	return c
}

func (c *cluster) get(t testing.TB, path string, into any) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+c.rest+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

// run runs `spate run --target remote` against the cluster and returns
// its output and the id of the (last) job it submitted.
func (c *cluster) run(t *testing.T, extra []string, prog string, args ...string) (string, string, error) {
	t.Helper()
	full := append([]string{"run", "--target", "remote", "--jobmanager", c.rest}, extra...)
	full = append(full, filepath.Join(binaries(t), prog))
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binaries(t), "spate"), full...).CombinedOutput()
	m := regexpJobID.FindAllStringSubmatch(string(out), -1)
	id := ""
	if len(m) > 0 {
		id = m[len(m)-1][1]
	}
	return string(out), id, err
}

// output returns the lines job printed on every TaskManager, untagged and
// sorted.
func (c *cluster) output(job string) []string {
	prefix := "[job " + job[:8] + " "
	var lines []string
	for _, tm := range c.tms {
		sc := bufio.NewScanner(strings.NewReader(tm.stdout()))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				_, line, _ := strings.Cut(rest, "] ")
				lines = append(lines, line)
			}
		}
	}
	slices.Sort(lines)
	return lines
}

func (c *cluster) job(t *testing.T, id string) v1.JobDetails {
	t.Helper()
	var d v1.JobDetails
	if err := c.get(t, "/v1/jobs/"+id, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (c *cluster) waitStatus(t *testing.T, id string, want ...string) v1.JobDetails {
	t.Helper()
	var d v1.JobDetails
	waitFor(t, 60*time.Second, "job "+id+" to be "+strings.Join(want, " or "), func() bool {
		d = c.job(t, id)
		return slices.Contains(want, d.State)
	})
	return d
}

// local runs a program plainly, on the embedded executor, and returns its
// output lines sorted.
func local(t *testing.T, prog string, args ...string) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(binaries(t), prog), args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", prog, args, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	return lines
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wordcountInput(t testing.TB) string {
	p, err := filepath.Abs("../../examples/wordcount/testdata/input.txt")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClusterMatchesLocal runs word count and a keyed, windowed job at
// parallelism 4 over two TaskManagers of two slots each, so that every
// keyed exchange crosses the TCP data plane, and compares the results with
// the local executor's.
func TestClusterMatchesLocal(t *testing.T) {
	c := startCluster(t, 2, 2)
	jobs := []struct {
		name string
		prog string
		args []string
	}{
		{name: "wordcount", prog: "wordcount", args: []string{wordcountInput(t)}},
		{name: "topn", prog: "topn", args: []string{"-events", "50000", "-n", "3"}},
	}
	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			out, id, err := c.run(t, []string{"-p", "4"}, j.prog, j.args...)
			if err != nil {
				t.Fatalf("spate run: %v\n%s", err, out)
			}
			if !strings.Contains(out, "is FINISHED") {
				t.Fatalf("spate run did not follow the job to FINISHED:\n%s", out)
			}
			want := local(t, j.prog, append([]string{"-p", "4"}, j.args...)...)
			if got := c.output(id); !slices.Equal(got, want) {
				t.Fatalf("cluster output differs from local:\ncluster (%d lines): %q\nlocal (%d lines): %q", len(got), head(got), len(want), head(want))
			}
			// The TaskManagers keep the output for the REST API.
			var tms v1.TaskManagers
			if err := c.get(t, "/v1/taskmanagers", &tms); err != nil {
				t.Fatal(err)
			}
			var kept []string
			for _, tm := range tms.TaskManagers {
				resp, err := http.Get("http://" + c.rest + "/v1/taskmanagers/" + tm.ID + "/stdout")
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
					t.Fatalf("GET stdout of %s: %s %s", tm.ID, resp.Status, resp.Header.Get("Content-Type"))
				}
				for _, line := range strings.Split(string(b), "\n") {
					if rest, ok := strings.CutPrefix(line, "[job "+id[:8]+" "); ok {
						_, l, _ := strings.Cut(rest, "] ")
						kept = append(kept, l)
					}
				}
			}
			slices.Sort(kept)
			if !slices.Equal(kept, want) {
				t.Errorf("GET /v1/taskmanagers/{id}/stdout has %d of the job's %d lines", len(kept), len(want))
			}
			d := c.job(t, id)
			var workers int
			for _, tm := range c.tms {
				if strings.Contains(tm.stderr(), "job released\" job="+id) {
					workers++
				}
			}
			if workers != 2 {
				t.Errorf("job ran on %d TaskManagers, want both", workers)
			}
			for _, v := range d.Vertices {
				if v.Parallelism == 4 && v.Metrics.ReadRecords+v.Metrics.WriteRecords == 0 {
					t.Errorf("vertex %q reports no records: %+v", v.Name, v.Metrics)
				}
				if v.Status != v1.TaskFinished {
					t.Errorf("vertex %q is %s, want FINISHED", v.Name, v.Status)
				}
			}
		})
	}
}

func head(s []string) []string { return s[:min(len(s), 8)] }

// TestClusterTwoJobsAtOnce submits two jobs detached and checks both
// finish with their own, correct results.
func TestClusterTwoJobsAtOnce(t *testing.T) {
	c := startCluster(t, 2, 2)
	type result struct {
		out, id string
		err     error
	}
	var wg sync.WaitGroup
	res := make([]result, 2)
	args := [][]string{{"-events", "300000", "-n", "2"}, {"-events", "200000", "-n", "4"}}
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i].out, res[i].id, res[i].err = c.run(t, []string{"-p", "2", "--detached"}, "topn", args[i]...)
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.err != nil || r.id == "" {
			t.Fatalf("submit job %d: %v\n%s", i, r.err, r.out)
		}
	}
	// Both must be running side by side at some point.
	waitFor(t, 60*time.Second, "both jobs to have started", func() bool {
		for _, r := range res {
			if s := c.job(t, r.id).State; s == v1.JobCreated {
				return false
			}
		}
		return true
	})
	for i, r := range res {
		c.waitStatus(t, r.id, v1.JobFinished, v1.JobFailed)
		if d := c.job(t, r.id); d.State != v1.JobFinished {
			t.Fatalf("job %d is %s", i, d.State)
		}
		want := local(t, "topn", append([]string{"-p", "2"}, args[i]...)...)
		if got := c.output(r.id); !slices.Equal(got, want) {
			t.Fatalf("job %d output differs from local: %d vs %d lines\n%q\n%q", i, len(got), len(want), head(got), head(want))
		}
	}
}

// TestClusterTaskManagerLost kills a TaskManager while a job runs on it:
// the job fails with a cause naming that TaskManager, and the cluster
// still runs new jobs on the TaskManager left.
func TestClusterTaskManagerLost(t *testing.T) {
	c := startCluster(t, 2, 2)
	out, id, err := c.run(t, []string{"-p", "4", "--detached"}, "topn", "-events", "1000000000000")
	if err != nil || id == "" {
		t.Fatalf("submit: %v\n%s", err, out)
	}
	waitFor(t, 60*time.Second, "the job's subtasks to run", func() bool {
		d := c.job(t, id)
		total := 0
		for _, v := range d.Vertices {
			total += v.Parallelism
		}
		return d.StatusCounts[v1.TaskRunning] == total || v1.TerminalJobStatus(d.State)
	})
	victim := c.tms[1]
	victim.cmd.Process.Kill()
	d := c.waitStatus(t, id, v1.JobFailed)
	var ex v1.JobExceptions
	if err := c.get(t, "/v1/jobs/"+id+"/exceptions", &ex); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ex.RootException, "tmB") || !strings.Contains(ex.RootException, "lost") {
		t.Errorf("root exception %q does not name the lost TaskManager tmB", ex.RootException)
	}
	if d.StatusCounts[v1.TaskRunning] != 0 {
		t.Errorf("failed job still has running subtasks: %v", d.StatusCounts)
	}
	// The JobManager and the TaskManager left still take jobs.
	waitFor(t, 20*time.Second, "the lost TaskManager to be removed and slots freed", func() bool {
		var tms v1.TaskManagers
		return c.get(t, "/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == 1 && tms.TaskManagers[0].FreeSlots == 2
	})
	out, id, err = c.run(t, []string{"-p", "2"}, "wordcount", wordcountInput(t))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("job after the loss: %v\n%s", err, out)
	}
	want := local(t, "wordcount", "-p", "2", wordcountInput(t))
	if got := c.output(id); !slices.Equal(got, want) {
		t.Fatalf("output after the loss differs from local: %q vs %q", head(got), head(want))
	}
}

// spate runs the spate CLI and returns its combined output.
func spateCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binaries(t), "spate"), args...).CombinedOutput()
	return string(out), err
}

// TestClusterCancelAndList cancels a running job with the CLI and follows
// it in `spate list`.
func TestClusterCancelAndList(t *testing.T) {
	c := startCluster(t, 2)
	out, id, err := c.run(t, []string{"-p", "2", "--detached"}, "topn", "-events", "1000000000000")
	if err != nil || id == "" {
		t.Fatalf("submit: %v\n%s", err, out)
	}
	c.waitStatus(t, id, v1.JobRunning)
	listed := func(all bool) v1.JobsOverview {
		args := []string{"list", "--jobmanager", c.rest, "--output", "json"}
		if all {
			args = append(args, "--all")
		}
		out, err := spateCLI(t, args...)
		if err != nil {
			t.Fatalf("spate list: %v\n%s", err, out)
		}
		var ov v1.JobsOverview
		if err := json.Unmarshal([]byte(out), &ov); err != nil {
			t.Fatalf("spate list --output json: %v\n%s", err, out)
		}
		return ov
	}
	if ov := listed(false); len(ov.Jobs) != 1 || ov.Jobs[0].JID != id || ov.Jobs[0].State != v1.JobRunning {
		t.Fatalf("spate list = %+v, want the running job", ov)
	}
	if text, err := spateCLI(t, "list", "-m", c.rest); err != nil || !strings.Contains(text, id) || !strings.Contains(text, "RUNNING") {
		t.Fatalf("spate list (text): %v\n%s", err, text)
	}
	if out, err := spateCLI(t, "cancel", "--jobmanager", c.rest, id); err != nil || !strings.Contains(out, "Cancelled job "+id) {
		t.Fatalf("spate cancel: %v\n%s", err, out)
	}
	c.waitStatus(t, id, v1.JobCanceled)
	if ov := listed(false); len(ov.Jobs) != 0 {
		t.Errorf("spate list shows ended jobs without --all: %+v", ov)
	}
	if ov := listed(true); len(ov.Jobs) != 1 || ov.Jobs[0].State != v1.JobCanceled {
		t.Errorf("spate list --all = %+v, want the cancelled job", ov)
	}
	// Cancelling again, or an unknown job, is a clear error.
	if out, err := spateCLI(t, "cancel", "--jobmanager", c.rest, id); err == nil || !strings.Contains(out, "already ended") {
		t.Errorf("second cancel: %v\n%s", err, out)
	}
	if out, err := spateCLI(t, "cancel", "--jobmanager", c.rest, strings.Repeat("0", 32)); err == nil || !strings.Contains(out, "404") {
		t.Errorf("cancel of an unknown job: %v\n%s", err, out)
	}
	// The slot is free again and the worker's files are gone.
	waitFor(t, 10*time.Second, "the slot to be free", func() bool {
		var o v1.Overview
		return c.get(t, "/v1/overview", &o) == nil && o.SlotsAvailable == 2
	})
}

// TestClusterSlotTimeout submits a job that needs more slots than the
// cluster has: it fails after slot.request.timeout with a message that says
// what to do.
func TestClusterSlotTimeout(t *testing.T) {
	c := startClusterWith(t, []string{"-D", "slot.request.timeout=500ms"}, 2)
	out, id, err := c.run(t, []string{"-p", "3"}, "wordcount", wordcountInput(t))
	if err == nil {
		t.Fatalf("spate run succeeded without enough slots:\n%s", out)
	}
	for _, want := range []string{"could not get 3 slots", "slot.request.timeout", "has 2 free of 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if d := c.job(t, id); d.State != v1.JobFailed {
		t.Errorf("job is %s, want FAILED", d.State)
	}
}

// TestClusterHeartbeatTimeout stops a TaskManager (SIGSTOP): its session
// stays open but its heartbeats stop, so the JobManager drops it after
// heartbeat.timeout; once resumed it notices and registers again.
func TestClusterHeartbeatTimeout(t *testing.T) {
	c := startCluster(t, 1)
	tm := c.tms[0]
	if err := tm.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the JobManager to drop the stopped TaskManager", func() bool {
		var tms v1.TaskManagers
		return c.get(t, "/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == 0
	})
	if !strings.Contains(c.jm.stderr(), "no heartbeat for") {
		t.Errorf("JobManager log does not give the heartbeat timeout as the cause:\n%s", c.jm.stderr())
	}
	if err := tm.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the TaskManager to register again", func() bool {
		var tms v1.TaskManagers
		return c.get(t, "/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == 1
	})
	out, id, err := c.run(t, []string{"-p", "1"}, "wordcount", wordcountInput(t))
	if err != nil {
		t.Fatalf("job after re-registration: %v\n%s", err, out)
	}
	if got, want := c.output(id), local(t, "wordcount", "-p", "1", wordcountInput(t)); !slices.Equal(got, want) {
		t.Fatalf("output differs from local: %q vs %q", head(got), head(want))
	}
}

// TestClusterFingerprintMismatch runs a program whose main builds another
// graph in the worker than in the client: the job fails with both
// fingerprints named, never runs a wrong job.
func TestClusterFingerprintMismatch(t *testing.T) {
	c := startCluster(t, 1)
	out, id, err := c.run(t, nil, "nondet")
	if err == nil {
		t.Fatalf("a non-deterministic program ran:\n%s", out)
	}
	var ex v1.JobExceptions
	if err := c.get(t, "/v1/jobs/"+id+"/exceptions", &ex); err != nil {
		t.Fatal(err)
	}
	var submitted struct {
		Fingerprint string `json:"fingerprint"`
	}
	var d v1.JobDetails
	if err := c.get(t, "/v1/jobs/"+id, &d); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(d.Plan, &submitted); err != nil || submitted.Fingerprint == "" {
		t.Fatalf("plan of the job: %v", err)
	}
	if !strings.Contains(ex.RootException, "fingerprint") || !strings.Contains(ex.RootException, submitted.Fingerprint) || !strings.Contains(ex.RootException, "non-deterministic") {
		t.Errorf("root exception %q does not name the mismatch and the submitted fingerprint %s", ex.RootException, submitted.Fingerprint)
	}
	if !strings.Contains(out, "fingerprint") {
		t.Errorf("spate run output does not explain the failure:\n%s", out)
	}
	for _, line := range c.output(id) {
		if !strings.HasPrefix(line, "spate worker:") {
			t.Errorf("the mismatched job ran and printed %q", line)
		}
	}
}
