package main

import (
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// TestZombieTaskManager freezes a TaskManager that runs part of
// examples/exactlyonce, with its workers (SIGSTOP: a host that hangs),
// past the heartbeat timeout (2 s here): the JobManager drops it and the
// job recovers on the TaskManagers left, from its latest checkpoint, and
// completes checkpoints there. Then the frozen processes wake up
// (SIGCONT) while the job still runs: their workers belong to the old
// attempt, so whatever they still do (a source reading on, a sink with
// pre-committed files, a commit it was about to make, a job end it may
// believe in) must not reach the output: the JobManager refuses the old
// attempt's reports and acknowledgements and sends it no commit, the new
// attempt's workers refuse its data connections, and it stops itself. The
// committed output is still exactly the failure-free run's, also after the
// zombie's workers are gone.
//
// Two forms of the freeze: "host" stops the TaskManager and its workers;
// "taskmanager" stops the TaskManager alone, so that its worker of the
// old attempt runs on throughout, cut off from its TaskManager but not
// from the JobManager or its peers.
func TestZombieTaskManager(t *testing.T) {
	for _, freeze := range []string{"host", "taskmanager"} {
		t.Run("freeze="+freeze, func(t *testing.T) { testZombie(t, freeze == "host") })
	}
}

func testZombie(t *testing.T, withWorkers bool) {
	seed := chaosSeed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	want := failureFree(t)
	// Three TaskManagers of one slot (standalone, so that the JobManager
	// cannot kill the frozen one: it must fence it), for a job of two.
	c := startCluster(t, 1, 1, 1)
	out := workerDir(t)
	o, id, err := c.run(t, append([]string{"--detached"}, chaosConf...), "exactlyonce", chaosProgArgs(out)...)
	if err != nil || id == "" {
		t.Fatalf("submit: %v\n%s", err, o)
	}
	var d v1.JobDetails
	waitFor(t, 60*time.Second, "the job to run", func() bool {
		d = c.job(t, id)
		return allRunning(d) || v1.TerminalJobStatus(d.State)
	})
	var ck checkpointCounts
	waitFor(t, 30*time.Second, "a completed checkpoint", func() bool {
		return c.get(t, "/v1/jobs/"+id+"/checkpoints", &ck) == nil && ck.Counts.Completed > 0
	})

	// Freeze one of the two TaskManagers that hold the job, with its
	// workers.
	var tms v1.TaskManagers
	if err := c.get(t, "/v1/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	var busy []int
	for _, tm := range tms.TaskManagers {
		if tm.FreeSlots == 0 {
			busy = append(busy, int(tm.Path[len(tm.Path)-1]-'A'))
		}
	}
	if len(busy) != 2 {
		t.Fatalf("want the job on two TaskManagers, got %+v", tms)
	}
	victim := busy[rng.IntN(2)]
	tmPID := c.tms[victim].cmd.Process.Pid
	var workers []int
	for _, p := range processTable() {
		if p.ppid == tmPID && strings.Contains(p.cmdline, "-out "+out) {
			workers = append(workers, p.pid)
		}
	}
	if len(workers) == 0 {
		t.Fatalf("TaskManager tm%c (pid %d) has no worker of the job", 'A'+victim, tmPID)
	}
	frozen := []int{tmPID}
	if withWorkers {
		frozen = append(frozen, workers...)
	}
	for _, pid := range frozen {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	woken := false
	wake := func() {
		if !woken {
			woken = true
			for _, pid := range frozen {
				syscall.Kill(pid, syscall.SIGCONT)
			}
		}
	}
	t.Cleanup(wake)
	frozenAt := time.Now()
	t.Logf("froze TaskManager tm%c (workers %v frozen too: %v): pids %v", 'A'+victim, workers, withWorkers, frozen)

	// The job recovers without it and completes checkpoints there.
	restarts := d.NumRestarts
	waitFor(t, 60*time.Second, "the job to run again without the frozen TaskManager", func() bool {
		d = c.job(t, id)
		if v1.TerminalJobStatus(d.State) {
			t.Fatalf("job is %s while the TaskManager is frozen: %s", d.State, c.exceptions(t, id).RootException)
		}
		return d.NumRestarts > restarts && allRunning(d)
	})
	t.Logf("frozen to RUNNING again elsewhere: %v (heartbeat.timeout 2 s)", time.Since(frozenAt).Round(time.Millisecond))
	c.get(t, "/v1/jobs/"+id+"/checkpoints", &ck)
	target := ck.Counts.Completed + 2
	waitFor(t, 30*time.Second, "two checkpoints of the new attempt", func() bool {
		return c.get(t, "/v1/jobs/"+id+"/checkpoints", &ck) == nil && ck.Counts.Completed >= target
	})
	if d := c.job(t, id); v1.TerminalJobStatus(d.State) {
		t.Fatalf("the job is %s before the zombie wakes (make it run longer)", d.State)
	}

	// Wake the zombie while the job runs.
	wake()
	t.Logf("woke the zombie %v after %v", frozen, time.Since(frozenAt).Round(time.Millisecond))
	d = c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled)
	if d.State != v1.JobFinished {
		t.Fatalf("job is %s: %s", d.State, c.exceptions(t, id).RootException)
	}
	// The zombie's workers stop themselves; what they did before must
	// not show in the output.
	waitFor(t, 30*time.Second, "the zombie's workers to stop", func() bool {
		for _, p := range processTable() {
			if slices.Contains(workers, p.pid) && p.state != 'Z' {
				return false
			}
		}
		return true
	})
	c.get(t, "/v1/jobs/"+id+"/checkpoints", &ck)
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Errorf("with a zombie TaskManager the job committed %d lines, the failure-free run %d: %s", len(got), len(want), pairDiff(got, want))
	}
	if ck.Counts.Restored == 0 {
		t.Errorf("checkpoints: %v: the recovery must have restored a checkpoint", ck)
	}
	// The failover's cause is the frozen TaskManager.
	ex := c.exceptions(t, id)
	name := "tm" + string(rune('A'+victim))
	named := strings.Contains(ex.RootException, name)
	for _, e := range ex.History.Entries {
		named = named || strings.Contains(e.ExceptionName+e.Stacktrace+e.Location, name)
	}
	if !named {
		t.Errorf("the job's exceptions do not name the frozen TaskManager %s: %+v", name, ex)
	}
}
