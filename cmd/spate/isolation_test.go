package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// processCPU returns the CPU time (user and system) process pid has used, 0
// if unknown.
func processCPU(pid string) time.Duration {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	_, after, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(after)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	// Clock ticks of USER_HZ, 100 a second on Linux.
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// TestIsolation runs, on the same TaskManager, a well-behaved job next to
// one whose user code panics, hoards memory without bound, or spins the
// CPU. The bad job fails (or is cancelled, for the spinner) in its own
// worker process; the good job's results stay correct; the TaskManager
// and the JobManager stay up.
func TestIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	c := startClusterTM(t, nil, []string{"-D", "taskmanager.worker.memory-limit=200m"}, 4)
	good := []string{"-events", "400000", "-n", "3"}
	want := local(t, "topn", append([]string{"-p", "2"}, good...)...)
	cases := []struct {
		mode      string
		wantState string
		wantCause string
	}{
		{mode: "panic", wantState: v1.JobFailed, wantCause: "user code panics on record 1000"},
		{mode: "memory", wantState: v1.JobFailed, wantCause: "over the limit of 200 MiB"},
		{mode: "spin", wantState: v1.JobCanceled},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			out, goodID, err := c.run(t, []string{"-p", "2", "--detached"}, "topn", good...)
			if err != nil {
				t.Fatalf("submit the good job: %v\n%s", err, out)
			}
			out, badID, err := c.run(t, []string{"--detached"}, "misbehave", "-mode", tc.mode)
			if err != nil {
				t.Fatalf("submit the bad job: %v\n%s", err, out)
			}
			if tc.mode == "spin" {
				// Spinning: its worker has burnt a quarter of a second of CPU.
				waitFor(t, 30*time.Second, "the spinner to spin", func() bool {
					for _, p := range processesNaming("\x00-mode\x00spin") {
						pid, _, _ := strings.Cut(p, ": ")
						if processCPU(pid) >= 250*time.Millisecond {
							return true
						}
					}
					return false
				})
				if out, err := spateCLI(t, "cancel", "--jobmanager", c.rest, badID); err != nil {
					t.Fatalf("cancel the spinner: %v\n%s", err, out)
				}
			}
			bad := c.waitStatus(t, badID, v1.JobFailed, v1.JobCanceled, v1.JobFinished)
			if bad.State != tc.wantState {
				t.Fatalf("bad job is %s, want %s", bad.State, tc.wantState)
			}
			if tc.wantCause != "" {
				var ex v1.JobExceptions
				if err := c.get(t, "/v1/jobs/"+badID+"/exceptions", &ex); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(ex.RootException, tc.wantCause) {
					t.Errorf("root exception %q lacks %q", ex.RootException, tc.wantCause)
				}
			}
			if d := c.waitStatus(t, goodID, v1.JobFinished, v1.JobFailed, v1.JobCanceled); d.State != v1.JobFinished {
				t.Fatalf("the good job is %s next to the %s job", d.State, tc.mode)
			}
			// The TaskManager forwards a worker's output as it reads it,
			// which may be after the job's FINISHED is visible.
			var got []string
			deadline := time.Now().Add(10 * time.Second)
			for got = c.output(goodID); !slices.Equal(got, want) && time.Now().Before(deadline); got = c.output(goodID) {
				time.Sleep(20 * time.Millisecond)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("the good job's output is wrong next to the %s job (%d vs %d lines)", tc.mode, len(got), len(want))
			}
			// The TaskManager and JobManager are the same processes, up and
			// registered, with every slot free again.
			for _, p := range []*proc{c.jm, c.tms[0]} {
				if err := p.cmd.Process.Signal(syscall.Signal(0)); err != nil {
					t.Fatalf("a daemon died: %v", err)
				}
			}
			waitFor(t, 20*time.Second, "the slots to be free", func() bool {
				var tms v1.TaskManagers
				return c.get(t, "/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == 1 && tms.TaskManagers[0].FreeSlots == 4
			})
		})
	}
}
