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

	// A session whose JobManager dies is not shown alive, and leaves no
	// TaskManager behind.
	if out, err := spateEnv(t, home, "session", "start", "--taskmanagers", "1"); err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	ss = listSessions(t, home)
	if len(ss) != 1 {
		t.Fatalf("sessions = %+v", ss)
	}
	syscall.Kill(ss[0].PID, syscall.SIGKILL)
	waitFor(t, 20*time.Second, "the killed session's processes to be gone", func() bool {
		return len(processesNaming(ss[0].Dir)) == 0
	})
	if got := listSessions(t, home); len(got) != 0 {
		t.Errorf("session list shows a dead session: %+v", got)
	}
	if _, err := os.Stat(ss[0].Dir); err == nil {
		t.Errorf("the dead session's directory %s was not removed by list", ss[0].Dir)
	}
}
