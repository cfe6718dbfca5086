package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// spateEnv runs the spate CLI with SPATE_HOME set.
func spateEnv(t testing.TB, home string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "spate"), args...)
	cmd.Env = append(os.Environ(), "SPATE_HOME="+home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func listSessions(t testing.TB, home string) []sessionInfo {
	t.Helper()
	out, err := spateEnv(t, home, "session", "list", "--output", "json")
	if err != nil {
		t.Fatalf("session list: %v\n%s", err, out)
	}
	var ss []sessionInfo
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		t.Fatalf("session list --output json: %v\n%s", err, out)
	}
	return ss
}

// TestSessionLifecycle starts a session cluster of child processes, runs
// two jobs on its shared TaskManagers, stops it, and checks nothing is
// left; a session whose JobManager was killed is never listed as alive,
// and its TaskManagers die with it.
func TestSessionLifecycle(t *testing.T) {
	home := t.TempDir()
	out, err := spateEnv(t, home, "session", "start", "--target", "process-session", "--taskmanagers", "2", "--slots", "2")
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	ss := listSessions(t, home)
	if len(ss) != 1 || ss[0].Status != "RUNNING" || !strings.Contains(out, ss[0].ID) {
		t.Fatalf("session list = %+v after start:\n%s", ss, out)
	}
	s := ss[0]
	t.Cleanup(func() { syscall.Kill(s.PID, syscall.SIGKILL) })
	c := &cluster{rest: s.REST}

	var ids []string
	for range 2 {
		out, err := spateEnv(t, home, "run", "--session", s.ID, "-p", "4", filepath.Join(binaries(t), "wordcount"), wordcountInput(t))
		if err != nil || !strings.Contains(out, "is FINISHED") {
			t.Fatalf("run --session: %v\n%s", err, out)
		}
		ids = append(ids, regexpJobID.FindStringSubmatch(out)[1])
	}
	var tms v1.TaskManagers
	if err := c.get(t, "/v1/taskmanagers", &tms); err != nil || len(tms.TaskManagers) != 2 {
		t.Fatalf("taskmanagers = %+v, %v: the jobs must share the session's two", tms, err)
	}
	want := local(t, "wordcount", "-p", "4", wordcountInput(t))
	outs, _ := filepath.Glob(filepath.Join(s.Dir, "log", "taskmanager-*.out"))
	var all string
	for _, p := range outs {
		b, _ := os.ReadFile(p)
		all += string(b)
	}
	for _, id := range ids {
		var got []string
		for _, line := range strings.Split(all, "\n") {
			if rest, ok := strings.CutPrefix(line, "[job "+id[:8]+" "); ok {
				_, l, _ := strings.Cut(rest, "] ")
				got = append(got, l)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("job %s: output in the session's logs differs from local (%d vs %d lines)", id, len(got), len(want))
		}
	}

	// spate logs shows a job's output from the session's TaskManagers.
	logsOut, err := spateEnv(t, home, "logs", "--session", s.ID, ids[0])
	if err != nil {
		t.Fatalf("spate logs: %v\n%s", err, logsOut)
	}
	if got := untagged(logsOut); !slices.Equal(got, want) {
		t.Errorf("spate logs printed %d of the job's %d lines:\n%s", len(got), len(want), logsOut)
	}

	if out, err := spateEnv(t, home, "session", "stop", s.ID); err != nil {
		t.Fatalf("session stop: %v\n%s", err, out)
	}
	clusterGone(t, s.Dir, s.REST)
	if ss := listSessions(t, home); len(ss) != 0 {
		t.Errorf("session list after stop = %+v", ss)
	}

	// A session whose JobManager dies is shown dead with its logs, leaves
	// no TaskManager behind, and stays until it is stopped or pruned.
	if out, err := spateEnv(t, home, "session", "start", "--taskmanagers", "1"); err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	ss = listSessions(t, home)
	if len(ss) != 1 {
		t.Fatalf("sessions = %+v", ss)
	}
	dead := ss[0]
	syscall.Kill(dead.PID, syscall.SIGKILL)
	waitFor(t, 20*time.Second, "the killed session's processes to be gone", func() bool {
		return len(processesNaming(dead.Dir)) == 0
	})
	for range 2 { // list is a read: the second sees what the first did
		got := listSessions(t, home)
		if len(got) != 1 || got[0].ID != dead.ID || got[0].Status != "DEAD" {
			t.Fatalf("session list = %+v, want %s listed DEAD", got, dead.ID)
		}
		if !exists(filepath.Join(dead.Dir, "log", "jobmanager.log")) {
			t.Fatalf("session list removed the dead session's logs in %s", filepath.Join(dead.Dir, "log"))
		}
	}
	text, err := spateEnv(t, home, "session", "list")
	if err != nil || !strings.Contains(text, dead.ID) || !strings.Contains(text, "DEAD") || !strings.Contains(text, filepath.Join(dead.Dir, "log")) {
		t.Errorf("session list (text) does not show %s dead with its log directory: %v\n%s", dead.ID, err, text)
	}
	if out, err := spateEnv(t, home, "run", "--session", dead.ID, filepath.Join(binaries(t), "wordcount"), wordcountInput(t)); err == nil || !strings.Contains(out, "dead") {
		t.Errorf("run on a dead session: %v\n%s", err, out)
	}

	// The next session to start removes the dead one's work files (blobs,
	// TaskManagers' caches) but not its logs.
	if !exists(filepath.Join(dead.Dir, "work")) {
		t.Fatalf("the dead session has no work directory in %s", dead.Dir)
	}
	if out, err := spateEnv(t, home, "session", "start", "--taskmanagers", "0"); err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	var next sessionInfo
	for _, s := range listSessions(t, home) {
		if s.ID != dead.ID {
			next = s
		}
	}
	t.Cleanup(func() { syscall.Kill(next.PID, syscall.SIGKILL) })
	if exists(filepath.Join(dead.Dir, "work")) || !exists(filepath.Join(dead.Dir, "log", "jobmanager.log")) {
		t.Errorf("after the next start, the dead session's work directory exists %v (want removed), its log %v (want kept)",
			exists(filepath.Join(dead.Dir, "work")), exists(filepath.Join(dead.Dir, "log", "jobmanager.log")))
	}

	// prune removes dead sessions only.
	out, err = spateEnv(t, home, "session", "prune")
	if err != nil || !strings.Contains(out, dead.ID) {
		t.Fatalf("session prune: %v\n%s", err, out)
	}
	if exists(dead.Dir) {
		t.Errorf("session prune left %s", dead.Dir)
	}
	if got := listSessions(t, home); len(got) != 1 || got[0].ID != next.ID || got[0].Status != "RUNNING" {
		t.Errorf("session list after prune = %+v, want only %s RUNNING", got, next.ID)
	}
	if out, err := spateEnv(t, home, "session", "stop", next.ID); err != nil {
		t.Fatalf("session stop: %v\n%s", err, out)
	}
	clusterGone(t, next.Dir, next.REST)
}

// TestSessionStopRemovesDeadSession: stop on a dead session removes its
// directory (with --keep-logs, all but its logs).
func TestSessionStopRemovesDeadSession(t *testing.T) {
	home := t.TempDir()
	if out, err := spateEnv(t, home, "session", "start", "--taskmanagers", "0"); err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	ss := listSessions(t, home)
	if len(ss) != 1 {
		t.Fatalf("sessions = %+v", ss)
	}
	syscall.Kill(ss[0].PID, syscall.SIGKILL)
	waitFor(t, 20*time.Second, "the killed session's processes to be gone", func() bool {
		return len(processesNaming(ss[0].Dir)) == 0
	})
	out, err := spateEnv(t, home, "session", "stop", "--keep-logs", ss[0].ID)
	if err != nil || !strings.Contains(out, "dead") {
		t.Fatalf("session stop of a dead session: %v\n%s", err, out)
	}
	if got := listSessions(t, home); len(got) != 0 {
		t.Errorf("session list after stop = %+v", got)
	}
	left, _ := os.ReadDir(ss[0].Dir)
	if len(left) != 1 || left[0].Name() != "log" {
		t.Errorf("stop --keep-logs left %v in %s, want only log", left, ss[0].Dir)
	}
}
