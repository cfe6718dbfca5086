package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	v1 "github.com/spate-dev/spate/api/v1"
)

// s3Bucket is the in-test S3 server's bucket.
const s3Bucket = "spate"

// s3Server is a real S3 protocol server started by the test: gofakes3 (in
// memory) behind net/http/httptest on 127.0.0.1, which the cluster's
// processes reach over TCP as they would any S3-compatible store. It
// logs "METHOD path" of every request.
type s3Server struct {
	backend *s3mem.Backend
	srv     *httptest.Server
	mu      sync.Mutex
	log     []string
}

func newS3Server(t *testing.T) *s3Server {
	t.Helper()
	s := &s3Server{backend: s3mem.New()}
	if err := s.backend.CreateBucket(s3Bucket); err != nil {
		t.Fatal(err)
	}
	inner := gofakes3.New(s.backend, gofakes3.WithIntegrityCheck(true)).Server()
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.log = append(s.log, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// requests returns the logged requests of method whose path contains
// part.
func (s *s3Server) requests(method, part string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.log {
		if strings.HasPrefix(l, method+" ") && strings.Contains(l, part) {
			out = append(out, l)
		}
	}
	return out
}

// keys lists the bucket's objects.
func (s *s3Server) keys(t *testing.T) []string {
	t.Helper()
	l, err := s.backend.ListBucket(s3Bucket, nil, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range l.Contents {
		out = append(out, c.Key)
	}
	return out
}

// The S3 job: enough keys that each subtask's state is above the 64 KiB
// kept inline in _metadata, so its checkpoints have state files in the
// bucket that the restarted workers read back; at its rate it runs ~15 s.
const (
	s3Keys  = 6000
	s3Count = 5
	s3Rate  = 2000
)

// TestCheckpointsInS3: examples/exactlyonce on a cluster of real
// processes whose checkpoints go to s3://spate/checkpoints on the in-test
// S3 server (the s3.* options in the JobManager's configuration, so the
// workers get them from the JobManager). A worker is SIGKILLed after some
// checkpoints completed; the job restores the latest from S3 (the
// JobManager reads its _metadata, the workers their state files), and
// finishes with every (key, number) pair committed exactly once. A
// finished job's checkpoints are deleted from the bucket.
func TestCheckpointsInS3(t *testing.T) {
	s3 := newS3Server(t)
	c := startClusterWith(t, []string{
		"-D", "state.checkpoints.dir=s3://" + s3Bucket + "/checkpoints",
		"-D", "s3.endpoint=" + s3.srv.URL, "-D", "s3.region=us-east-1", "-D", "s3.path.style.access=true",
		"-D", "s3.access-key=spate-test", "-D", "s3.secret-key=spate-test-secret",
	}, 1, 1)
	bin := binaries(t)
	out := workerDir(t)
	cmd := exec.Command(filepath.Join(bin, "spate"), "run", "--target", "remote", "--jobmanager", c.rest, "-p", "2",
		"-D", "restart-strategy.type=fixed-delay", "-D", "restart-strategy.fixed-delay.delay=0 s", "-D", "restart-strategy.fixed-delay.attempts=10",
		filepath.Join(bin, "exactlyonce"), "-keys", strconv.Itoa(s3Keys), "-count", strconv.Itoa(s3Count), "-rate", strconv.Itoa(s3Rate),
		"-checkpoint-interval", "300ms", "-out", out)
	cmd.WaitDelay = 5 * time.Second
	run := startBackground(t, cmd)
	run.stopAtCleanup(t, syscall.SIGTERM, 20*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("JobManager:\n%s", tail(c.jm.stderr(), 6000))
		}
	})
	id := run.awaitJobID(t)
	var cps checkpointCounts
	waitFor(t, 60*time.Second, "two checkpoints completed with state files in S3", func() bool {
		if d := c.job(t, id); v1.TerminalJobStatus(d.State) {
			t.Fatalf("job %s is %s before the kill (make it run longer)", id, d.State)
		}
		c.get(t, "/v1/jobs/"+id+"/checkpoints", &cps)
		return cps.Counts.Completed >= 2 && len(s3.requests("PUT", "-inline-")) > 0
	})
	// Kill one of the job's workers: a child of a TaskManager running
	// the program.
	var victim int
	for _, tm := range c.tms {
		for _, p := range processTable() {
			if p.ppid == tm.cmd.Process.Pid && strings.Contains(p.cmdline, "-out "+out) && p.state != 'Z' {
				victim = p.pid
			}
		}
	}
	if victim == 0 {
		t.Fatal("no worker process of the job found")
	}
	readsBefore := len(s3.requests("GET", "-inline-"))
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, 60*time.Second, "the job to run again after the kill", func() bool {
		d := c.job(t, id)
		if d.State == v1.JobFailed || d.State == v1.JobCanceled {
			t.Fatalf("job %s is %s after the kill: %s", id, d.State, c.exceptions(t, id).RootException)
		}
		return d.NumRestarts >= 1 && allRunning(d) || d.State == v1.JobFinished
	})
	t.Logf("SIGKILL of worker %d to the job running again, restored from S3: %v", victim, time.Since(killed).Round(time.Millisecond))
	d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled)
	if d.State != v1.JobFinished {
		t.Fatalf("job %s ended %s: %s", id, d.State, c.exceptions(t, id).RootException)
	}
	select {
	case <-run.done:
	case <-time.After(30 * time.Second):
		t.Fatal("spate run still runs after its job finished")
	}
	c.get(t, "/v1/jobs/"+id+"/checkpoints", &cps)
	if cps.Counts.Restored == 0 || cps.NumRestarts == 0 {
		t.Errorf("checkpoints %v, %d restarts: the job must have restored a checkpoint", cps, cps.NumRestarts)
	}
	if reads := s3.requests("GET", "-inline-"); len(reads) <= readsBefore {
		t.Errorf("no state file was read from S3 after the kill (the restarted workers' state came from elsewhere)")
	}
	if len(s3.requests("GET", "/_metadata")) == 0 {
		t.Errorf("the JobManager read no _metadata from S3 to restore")
	}
	var want []string
	for k := range s3Keys {
		for n := 1; n <= s3Count; n++ {
			want = append(want, fmt.Sprintf("%d %d", k, n))
		}
	}
	slices.Sort(want)
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("committed %d lines, want the %d pairs once each: %s", len(got), len(want), pairDiff(got, want))
	}
	waitFor(t, 20*time.Second, "the finished job's checkpoints to be deleted from the bucket", func() bool {
		for _, k := range s3.keys(t) {
			if strings.Contains(k, id) {
				return false
			}
		}
		return true
	})
}

// tail is the last n bytes of s.
func tail(s string, n int) string { return s[max(0, len(s)-n):] }

// TestSavepointsInS3: savepoints of examples/exactlyonce on a cluster of
// real processes go to the in-test S3 server: spate savepoint JOBID
// s3://…, then spate stop with the cluster's
// execution.checkpointing.savepoint-dir s3://spate/savepoints; the job
// restarts with spate run -s s3://… (the JobManager reads the savepoint's
// _metadata from S3, the workers its state files), and the two pieces
// commit every pair exactly once.
func TestSavepointsInS3(t *testing.T) {
	s3 := newS3Server(t)
	c := startClusterWith(t, []string{
		"-D", "execution.checkpointing.savepoint-dir=s3://" + s3Bucket + "/savepoints",
		"-D", "s3.endpoint=" + s3.srv.URL, "-D", "s3.region=us-east-1", "-D", "s3.path.style.access=true",
		"-D", "s3.access-key=spate-test", "-D", "s3.secret-key=spate-test-secret",
	}, 1, 1)
	defer func() {
		if t.Failed() {
			t.Logf("JobManager:\n%s", tail(c.jm.stderr(), 6000))
		}
	}()
	home, bin, out := t.TempDir(), binaries(t), workerDir(t)
	want := wantPairs()
	o, err := spateEnv(t, home, append([]string{"run", "--target", "remote", "--jobmanager", c.rest, "--detached"}, chaosArgs(bin, out)...)...)
	m := regexpJobID.FindStringSubmatch(o)
	if err != nil || m == nil {
		t.Fatalf("spate run: %v\n%s", err, o)
	}
	id := m[1]
	waitMidRun(t, c, id, out)

	o, err = spateEnv(t, home, "savepoint", "-m", c.rest, id, "s3://"+s3Bucket+"/manual")
	sp := regexpSavepointPath.FindStringSubmatch(o)
	if err != nil || sp == nil || !strings.HasPrefix(sp[1], "s3://"+s3Bucket+"/manual/savepoint-") {
		t.Fatalf("spate savepoint: %v\n%s", err, o)
	}
	if d := c.job(t, id); d.State != v1.JobRunning {
		t.Fatalf("job %s is %s after a savepoint, want RUNNING", id, d.State)
	}
	began := time.Now()
	o, err = spateEnv(t, home, "stop", "-m", c.rest, id)
	stop := regexpSavepointPath.FindStringSubmatch(o)
	if err != nil || stop == nil || !strings.HasPrefix(stop[1], "s3://"+s3Bucket+"/savepoints/savepoint-") {
		t.Fatalf("spate stop: %v\n%s", err, o)
	}
	stopped := time.Since(began)
	if d := c.job(t, id); d.State != v1.JobFinished {
		t.Fatalf("job %s is %s once spate stop returned, want FINISHED", id, d.State)
	}
	checkPiece(t, out, want)
	for _, p := range []string{sp[1], stop[1]} {
		key := strings.TrimPrefix(p, "s3://"+s3Bucket+"/") + "/_metadata"
		if !slices.Contains(s3.keys(t), key) {
			t.Fatalf("no object %s in the bucket: %v", key, s3.keys(t))
		}
	}

	restart := time.Now()
	o, err = spateEnv(t, home, append([]string{"run", "--target", "remote", "--jobmanager", c.rest, "-s", stop[1]}, chaosArgs(bin, out)...)...)
	if err != nil {
		t.Fatalf("spate run -s %s: %v\n%s", stop[1], err, o)
	}
	if len(s3.requests("GET", "/savepoints/savepoint-")) == 0 {
		t.Errorf("nothing of the savepoint was read from S3 by the restore")
	}
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("the two pieces committed %d lines, one uninterrupted run %d: %s", len(got), len(want), pairDiff(got, want))
	}
	t.Logf("spate stop to S3: %v; spate run -s s3://… to its end: %v", stopped.Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))
}
