package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
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
	"github.com/spate-dev/spate/internal/config"
)

// The tests in this file check that a cluster's files stay bounded and in
// their place: artifacts no job uses are deleted, released TaskManagers'
// files are removed, and what killed daemons leave is removed when the
// next one starts.

// artifactID is the blob store's id of a program: its SHA-256.
func artifactID(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestClusterRetiresUnusedArtifacts runs a job, then a long one from
// another program: the first program's binary, which no job runs any more,
// is deleted from the JobManager's blob store and from the TaskManager's
// cache after blob.service.cleanup.interval, while the running job's stays;
// once that job is cancelled its binary goes too, and the first program
// submitted again is uploaded again and runs.
func TestClusterRetiresUnusedArtifacts(t *testing.T) {
	blobs, tmDir := t.TempDir(), t.TempDir()
	grace := []string{"-D", "blob.service.cleanup.interval=300 ms"}
	c := startClusterTM(t, append([]string{"-D", "blob.storage.directory=" + blobs}, grace...),
		append([]string{"-D", "taskmanager.tmp.dirs=" + tmDir}, grace...), 2)
	cached := filepath.Join(tmDir, "artifacts")
	wc, topn := artifactID(t, filepath.Join(binaries(t), "wordcount")), artifactID(t, filepath.Join(binaries(t), "topn"))

	out, _, err := c.run(t, []string{"-p", "1"}, "wordcount", wordcountInput(t))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	if !exists(filepath.Join(cached, wc)) {
		t.Fatalf("the TaskManager did not cache the program in %s", cached)
	}
	out, id, err := c.run(t, []string{"-p", "1", "--detached"}, "topn", "-events", "1000000000000")
	if err != nil || id == "" {
		t.Fatalf("submit the long job: %v\n%s", err, out)
	}
	waitFor(t, 60*time.Second, "the long job's subtasks to run", func() bool {
		d := c.job(t, id)
		total := 0
		for _, v := range d.Vertices {
			total += v.Parallelism
		}
		return d.StatusCounts[v1.TaskRunning] == total || v1.TerminalJobStatus(d.State)
	})
	waitFor(t, 15*time.Second, "the unused program to be deleted from the blob store and the TaskManager's cache", func() bool {
		return !exists(filepath.Join(blobs, wc)) && !exists(filepath.Join(cached, wc))
	})
	if !exists(filepath.Join(blobs, topn)) || !exists(filepath.Join(cached, topn)) {
		t.Fatalf("the running job's program was deleted: blob store %v, cache %v", exists(filepath.Join(blobs, topn)), exists(filepath.Join(cached, topn)))
	}
	if d := c.job(t, id); d.State != v1.JobRunning {
		t.Fatalf("the long job is %s, want RUNNING", d.State)
	}
	if out, err := spateCLI(t, "cancel", "--jobmanager", c.rest, id); err != nil {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	waitFor(t, 15*time.Second, "the cancelled job's program to be deleted", func() bool {
		return !exists(filepath.Join(blobs, topn)) && !exists(filepath.Join(cached, topn))
	})

	out, id, err = c.run(t, []string{"-p", "1"}, "wordcount", wordcountInput(t))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("the program submitted again after its deletion: %v\n%s", err, out)
	}
	if got, want := c.output(id), local(t, "wordcount", "-p", "1", wordcountInput(t)); !slices.Equal(got, want) {
		t.Fatalf("output after re-upload differs from local: %q vs %q", head(got), head(want))
	}
}

// TestTaskManagerArgsPassCleanupInterval: the TaskManagers a JobManager
// starts get the artifact grace for their caches, not its blob store's
// directory.
func TestTaskManagerArgsPassCleanupInterval(t *testing.T) {
	var c config.Config
	c.Set("blob.service.cleanup.interval", "5 min")
	c.Set("blob.storage.directory", "/somewhere")
	c.Set("taskmanager.numberOfTaskSlots", "2")
	got := strings.Join(taskManagerArgs(c), " ")
	if !strings.Contains(got, "-D blob.service.cleanup.interval=5 min") || !strings.Contains(got, "taskmanager.numberOfTaskSlots=2") {
		t.Errorf("taskManagerArgs = %q: want the cleanup interval and the slots", got)
	}
	if strings.Contains(got, "blob.storage.directory") {
		t.Errorf("taskManagerArgs = %q passes the JobManager's blob directory", got)
	}
}

// entries lists the paths under dir, two levels deep.
func entries(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, rel)
		if d.IsDir() && strings.Count(rel, string(filepath.Separator)) >= 1 {
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

// TestStandaloneDaemonsClean starts a standalone JobManager and
// TaskManager that share a TMPDIR, runs a job, and SIGKILLs both: the next
// JobManager and TaskManager to start remove what they left. Stopped
// normally, they leave nothing but the empty per-user directory.
func TestStandaloneDaemonsClean(t *testing.T) {
	tmp := t.TempDir()
	env := []string{"TMPDIR=" + tmp}
	startPair := func() *cluster {
		c := &cluster{jm: startEnv(t, env, "jobmanager", "--rpc-port", "0", "--rest-port", "0", "--host", "127.0.0.1",
			"-D", "heartbeat.interval=200", "-D", "heartbeat.timeout=2000")}
		waitFor(t, 20*time.Second, "the JobManager to listen", func() bool {
			m := addrLine.FindStringSubmatch(c.jm.stdout())
			if m != nil {
				c.rpc, c.rest = m[1], m[2]
			}
			return m != nil
		})
		c.tms = append(c.tms, startEnv(t, env, "taskmanager", "--jobmanager", c.rpc, "--slots", "1"))
		waitFor(t, 20*time.Second, "the TaskManager to register", func() bool {
			var tms v1.TaskManagers
			return c.get(t, "/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == 1
		})
		return c
	}
	c := startPair()
	out, _, err := c.run(t, []string{"-p", "1"}, "wordcount", wordcountInput(t))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, p := range []*proc{c.jm, c.tms[0]} {
		p.cmd.Process.Kill()
		<-p.done
	}
	left := entries(tmp)
	if len(left) == 0 {
		t.Fatalf("the daemons kept nothing in their TMPDIR %s: where are their files?", tmp)
	}
	root := "spate-" + strconv.Itoa(os.Getuid())
	c2 := startPair()
	waitFor(t, 20*time.Second, "what the killed daemons left to be removed", func() bool {
		now := entries(tmp)
		for _, e := range left {
			if e != root && slices.Contains(now, e) {
				return false
			}
		}
		return true
	})
	for _, p := range []*proc{c2.tms[0], c2.jm} {
		p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
	}
	if got := entries(tmp); len(got) > 1 || len(got) == 1 && got[0] != root {
		t.Errorf("stopped daemons left %q in their TMPDIR", got)
	}
}

// TestSessionTaskManagerFilesRemoved runs a job on a session that starts
// TaskManagers on demand: the blob store lives in the session's directory,
// and once the idle TaskManager is released its files (the artifact cache)
// are gone, its logs kept.
func TestSessionTaskManagerFilesRemoved(t *testing.T) {
	home := t.TempDir()
	out, err := spateEnv(t, home, "session", "start", "--taskmanagers", "0", "-D", "resourcemanager.taskmanager-timeout=200 ms")
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	ss := listSessions(t, home)
	if len(ss) != 1 {
		t.Fatalf("sessions = %+v", ss)
	}
	s := ss[0]
	t.Cleanup(func() { spateEnv(t, home, "session", "stop", s.ID) })
	c := &cluster{rest: s.REST}
	out, err = spateEnv(t, home, "run", "--session", s.ID, "-p", "1", filepath.Join(binaries(t), "wordcount"), wordcountInput(t))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("run --session: %v\n%s", err, out)
	}
	wc := artifactID(t, filepath.Join(binaries(t), "wordcount"))
	var stored []string
	filepath.WalkDir(s.Dir, func(path string, d fs.DirEntry, err error) error {
		if rel, _ := filepath.Rel(s.Dir, path); err == nil && d.Name() == wc && !strings.Contains(rel, "taskmanager-") {
			stored = append(stored, path)
		}
		return nil
	})
	if len(stored) == 0 {
		t.Errorf("the session's directory %s holds no copy of the program but the TaskManager's: its blob store is elsewhere", s.Dir)
	}
	waitFor(t, 20*time.Second, "the idle TaskManager to be released", func() bool {
		var tms v1.TaskManagers
		return c.get(t, "/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == 0
	})
	var tmFiles []string
	waitFor(t, 10*time.Second, "the released TaskManager's files to be removed", func() bool {
		tmFiles = tmFiles[:0]
		filepath.WalkDir(s.Dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && d.Name() == "log" {
				return filepath.SkipDir
			}
			if rel, _ := filepath.Rel(s.Dir, path); strings.Contains(rel, "taskmanager-") {
				tmFiles = append(tmFiles, rel)
			}
			return nil
		})
		return len(tmFiles) == 0
	})
	if logs, _ := filepath.Glob(filepath.Join(s.Dir, "log", "taskmanager-*.out")); len(logs) == 0 {
		t.Errorf("the released TaskManager's logs are gone from %s/log", s.Dir)
	}
}

// TestPerJobKilledClusterRemovedAtNextStart SIGKILLs the JobManager of a
// detached per-job cluster: its directory stays, and the next per-job
// cluster to start on the host removes it.
func TestPerJobKilledClusterRemovedAtNextStart(t *testing.T) {
	bin := binaries(t)
	tmp := t.TempDir()
	perJob := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "spate"), append([]string{"run", "--target", "process-per-job", "-p", "1"}, args...)...)
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("spate run %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := perJob("--detached", filepath.Join(bin, "topn"), "-events", "1000000000000")
	m := clusterDirLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the output does not name the cluster's directory:\n%s", out)
	}
	dir := m[1]
	// Once the job runs, the JobManager has started its TaskManager: no
	// fork of it (which shares its command line until exec) is about.
	c := &cluster{rest: restOf(t, out)}
	id := regexpJobID.FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no job id in the output:\n%s", out)
	}
	waitFor(t, 60*time.Second, "the job's subtasks to run", func() bool {
		d := c.job(t, id[1])
		total := 0
		for _, v := range d.Vertices {
			total += v.Parallelism
		}
		return d.StatusCounts[v1.TaskRunning] == total
	})
	jm := 0
	for _, p := range processesNaming(dir) {
		if strings.Contains(p, " jobmanager ") {
			if jm != 0 {
				t.Fatalf("two JobManager processes in %s: %q", dir, processesNaming(dir))
			}
			jm, _ = strconv.Atoi(p[:strings.IndexByte(p, ':')])
		}
	}
	if jm == 0 {
		t.Fatalf("no JobManager process of the cluster in %s: %q", dir, processesNaming(dir))
	}
	syscall.Kill(jm, syscall.SIGKILL)
	waitFor(t, 20*time.Second, "the killed cluster's processes to be gone", func() bool {
		return len(processesNaming(dir)) == 0
	})
	if !exists(dir) {
		t.Fatalf("the killed cluster removed its directory %s: nothing to test; the run said:\n%s", dir, out)
	}
	perJob(filepath.Join(bin, "wordcount"), wordcountInput(t))
	if exists(dir) {
		t.Errorf("the next per-job cluster left the dead one's directory %s: %q", dir, entries(dir))
	}
}
