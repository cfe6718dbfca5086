package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/config"
)

// probeLine is a line envprobe's operators print.
var probeLine = regexp.MustCompile(`probe (\d) SECRET=("[^"]*") TOKEN=("[^"]*") greeting=("[^"]*") GOMEMLIMIT=("[^"]*")$`)

// probes returns the probe lines of out, keyed by their values after the
// record number: the set of environments the job's operators saw, and the
// set of GOMEMLIMIT values their processes had.
func probes(t *testing.T, out string) (n int, seen, memLimits map[string]bool) {
	t.Helper()
	seen, memLimits = map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if m := probeLine.FindStringSubmatch(line); m != nil {
			n++
			seen["SECRET="+m[2]+" TOKEN="+m[3]+" greeting="+m[4]] = true
			memLimits[m[5]] = true
		}
	}
	return n, seen, memLimits
}

// TestSessionJobEnvironment submits two jobs at once to one session
// cluster with a single shared TaskManager: one with an environment file,
// a -D containerized.taskmanager.env entry and a -D configuration entry,
// the other with only its own configuration entry. Each job's workers see
// exactly what their own submission gave, the TaskManager's environment
// holds none of it, and a malformed environment file is refused before
// anything is submitted.
func TestSessionJobEnvironment(t *testing.T) {
	bin := binaries(t)
	home := t.TempDir()
	// The session's configuration reaches the TaskManagers it starts: their
	// workers get a memory limit.
	out, err := spateEnv(t, home, "session", "start", "--taskmanagers", "1", "--slots", "4", "-D", "taskmanager.worker.memory-limit=300m")
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

	envFile := filepath.Join(t.TempDir(), "a.env")
	if err := os.WriteFile(envFile, []byte("# job a's secret\nPROBE_SECRET=\"a-secret, with a comma\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(bin, "envprobe")
	submissions := map[string][]string{
		"a": {"run", "--session", s.ID, "-p", "2", "--env-file", envFile,
			"-D", "containerized.taskmanager.env.PROBE_TOKEN=token-a", "-D", "app.greeting=hello, a", probe},
		"b": {"run", "--session", s.ID, "-p", "2", "-D", "app.greeting=hello, b", probe},
	}
	var mu sync.Mutex
	ids := map[string]string{}
	var wg sync.WaitGroup
	for name, args := range submissions {
		wg.Go(func() {
			out, err := spateEnv(t, home, args...)
			if err != nil || !strings.Contains(out, "is FINISHED") {
				t.Errorf("job %s: %v\n%s", name, err, out)
				return
			}
			mu.Lock()
			ids[name] = regexpJobID.FindStringSubmatch(out)[1]
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	want := map[string]string{
		"a": `SECRET="a-secret, with a comma" TOKEN="token-a" greeting="hello, a"`,
		"b": `SECRET="" TOKEN="" greeting="hello, b"`,
	}
	for name, id := range ids {
		out, err := spateEnv(t, home, "logs", "--session", s.ID, id)
		if err != nil {
			t.Fatalf("spate logs %s: %v\n%s", id, err, out)
		}
		n, seen, mem := probes(t, out)
		if n != 4 || len(seen) != 1 || !seen[want[name]] {
			t.Errorf("job %s's operators saw %d records with environments %v, want 4 with %s:\n%s", name, n, seen, want[name], out)
		}
		// 90% of 300 MiB, set by the TaskManager from the session's -D.
		if len(mem) != 1 || !mem[`"283115520"`] {
			t.Errorf("job %s's workers ran with GOMEMLIMIT %v, want 283115520 from the session's taskmanager.worker.memory-limit", name, mem)
		}
	}

	// The shared TaskManager's and the JobManager's own environments hold
	// no job's secret, so no later job's worker inherits it.
	var tms int
	for _, p := range processesNaming(s.Dir) {
		pid, cmdline, _ := strings.Cut(p, ": ")
		if strings.Contains(cmdline, " taskmanager ") {
			tms++
		}
		environ, err := os.ReadFile(filepath.Join("/proc", pid, "environ"))
		if err != nil {
			t.Fatalf("read the environment of %s: %v", p, err)
		}
		for _, secret := range []string{"a-secret", "token-a", "PROBE_"} {
			if bytes.Contains(environ, []byte(secret)) {
				t.Errorf("the environment of %s holds %q from job a", p, secret)
			}
		}
	}
	if tms != 1 {
		t.Errorf("found %d TaskManager processes of the session, want 1: %q", tms, processesNaming(s.Dir))
	}

	// A malformed file names itself and its line; nothing is submitted.
	bad := filepath.Join(t.TempDir(), "bad.env")
	os.WriteFile(bad, []byte("OK=1\nNOT A LINE\n"), 0o600)
	out, err = spateEnv(t, home, "run", "--session", s.ID, "--env-file", bad, probe)
	if err == nil || !strings.Contains(out, "bad.env:2") || strings.Contains(out, "submitted") {
		t.Errorf("run with a malformed --env-file: %v\n%s", err, out)
	}

	// A per-job cluster's workers see the file too.
	out, err = spateEnv(t, home, "run", "--target", "process-per-job", "-p", "2", "--env-file", envFile, "-D", "app.greeting=hi", probe)
	if n, seen, _ := probes(t, out); err != nil || n != 4 || len(seen) != 1 || !seen[`SECRET="a-secret, with a comma" TOKEN="" greeting="hi"`] {
		t.Errorf("run --target process-per-job --env-file: %v, environments %v:\n%s", err, seen, out)
	}

	// So do an application cluster's.
	out, err = spateEnv(t, home, "run-application", "-p", "2", "--env-file", envFile, "-D", "app.greeting=hi", probe)
	if n, seen, _ := probes(t, out); err != nil || n != 4 || len(seen) != 1 || !seen[`SECRET="a-secret, with a comma" TOKEN="" greeting="hi"`] {
		t.Errorf("run-application --env-file: %v, environments %v:\n%s", err, seen, out)
	}

	// Run plainly, the program is the job's only worker: it sees the file.
	out, err = spateEnv(t, home, "run", "-p", "1", "--env-file", envFile, "-D", "app.greeting=hi", probe)
	if n, seen, _ := probes(t, out); err != nil || n != 4 || !seen[`SECRET="a-secret, with a comma" TOKEN="" greeting="hi"`] {
		t.Errorf("run --target local --env-file: %v, environments %v:\n%s", err, seen, out)
	}
}

// TestApplicationSecretsStayWithMain runs an unbounded application,
// detached, with an environment file: while its job runs, the cluster's
// TaskManager holds none of the file's variables in its environment and the
// JobManager's configuration does not show them; cancelling the job ends
// main, and the cluster removes itself.
func TestApplicationSecretsStayWithMain(t *testing.T) {
	bin := binaries(t)
	envFile := filepath.Join(t.TempDir(), "app.env")
	if err := os.WriteFile(envFile, []byte("PROBE_SECRET=app-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := spateEnv(t, t.TempDir(), "run-application", "--detached", "-p", "1", "--env-file", envFile,
		filepath.Join(bin, "topn"), "-events", "1000000000000")
	if err != nil {
		t.Fatalf("run-application --detached: %v\n%s", err, out)
	}
	dir, rest := appDirLine.FindStringSubmatch(out)[1], restOf(t, out)
	c := &cluster{rest: rest}
	t.Cleanup(func() { cancelAll(rest, config.Config{}); clusterGone(t, dir, rest) })

	var tm string
	waitFor(t, 30*time.Second, "the application's TaskManager", func() bool {
		for _, p := range processesNaming(dir) {
			if pid, cmdline, _ := strings.Cut(p, ": "); strings.Contains(cmdline, " taskmanager ") {
				tm = pid
				return true
			}
		}
		return false
	})
	environ, err := os.ReadFile(filepath.Join("/proc", tm, "environ"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(environ, []byte("app-s3cret")) {
		t.Error("the application cluster's TaskManager holds main's secret in its environment")
	}
	var conf map[string]any
	if err := c.get(t, "/v1/config", &conf); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(conf); bytes.Contains(b, []byte("app-s3cret")) {
		t.Errorf("GET /v1/config shows main's secret: %s", b)
	}
}
