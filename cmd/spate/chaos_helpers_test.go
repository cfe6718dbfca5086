package main

import (
	"fmt"
	"math/rand/v2"
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
)

// Helpers of the fault-tolerance tests (chaos, zombie, recovery
// benchmark): the exactlyonce example and its failure-free run, the process
// tree of a cluster and a seeded killer.

// exactlyonceBinary returns the path of examples/exactlyonce, built with
// the other test binaries.
func exactlyonceBinary(t testing.TB) string {
	t.Helper()
	return filepath.Join(binaries(t), "exactlyonce")
}

// failureFree runs the chaos job (chaosKeys, chaosCount) on the local
// executor, without failures and without a rate, and returns its
// committed lines, checked to be wantPairs.
func failureFree(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command(exactlyonceBinary(t), "-keys", strconv.Itoa(chaosKeys), "-count", strconv.Itoa(chaosCount), "-out", dir, "-p", "2").CombinedOutput()
	if err != nil {
		t.Fatalf("failure-free run: %v\n%s", err, out)
	}
	got := committedLines(t, dir)
	if want := wantPairs(); !slices.Equal(got, want) {
		t.Fatalf("the failure-free run committed %d lines, want the %d pairs once each: %s", len(got), len(want), pairDiff(got, want))
	}
	return got
}

// pairDiff says how two sorted line lists differ: lines missing and lines
// duplicated or extra, the first few of each.
func pairDiff(got, want []string) string {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	var missing, extra []string
	for _, l := range want {
		if count[l] > 0 {
			missing = append(missing, l)
			count[l] = 0
		}
	}
	for _, l := range got {
		if count[l] < 0 {
			extra = append(extra, l)
			count[l] = 0
		}
	}
	return fmt.Sprintf("%d missing %q, %d duplicated or unexpected %q", len(missing), missing[:min(len(missing), 5)], len(extra), extra[:min(len(extra), 5)])
}

// chaosSeed is the seed of a randomised test: SPATE_CHAOS_SEED if set (to
// replay a failure), else the clock. It is logged.
func chaosSeed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SPATE_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SPATE_CHAOS_SEED=%q: want an unsigned integer", s)
		}
	}
	t.Logf("chaos seed %d (rerun with SPATE_CHAOS_SEED=%d)", seed, seed)
	return seed
}

// procInfo is a process of the process table.
type procInfo struct {
	pid, ppid int
	state     byte // R, S, T (stopped), Z, ...
	cmdline   string
}

// processTable reads /proc.
func processTable() []procInfo {
	var ps []procInfo
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		ps = append(ps, procInfo{pid: pid, ppid: ppid, state: f[0][0], cmdline: strings.ReplaceAll(string(cmd), "\x00", " ")})
	}
	return ps
}

// clusterProcs are the TaskManagers and workers of a cluster whose
// JobManager is jm: the JobManager's children running `taskmanager`
// (the process provider's TaskManagers) and their children whose command
// line contains mark (the job's workers: the program's binary from the
// TaskManager's artifact cache, with the job's arguments). A fork about
// to exec shares its parent's command line, so it is neither. busy are
// the TaskManagers running a worker of the job: killing an idle one fails
// nothing.
func clusterProcs(jm int, mark string) (tms, workers, busy []int) {
	ps := processTable()
	isTM := map[int]bool{}
	for _, p := range ps {
		if p.ppid == jm && strings.Contains(p.cmdline, " taskmanager ") && p.state != 'Z' {
			tms = append(tms, p.pid)
			isTM[p.pid] = true
		}
	}
	for _, p := range ps {
		if isTM[p.ppid] && strings.Contains(p.cmdline, mark) && !strings.Contains(p.cmdline, " taskmanager ") && p.state != 'Z' {
			workers = append(workers, p.pid)
			if !slices.Contains(busy, p.ppid) {
				busy = append(busy, p.ppid)
			}
		}
	}
	return tms, workers, busy
}

// jobManagerOf returns the pid of the JobManager process whose command
// line names dir, 0 if none.
func jobManagerOf(dir string) int {
	for _, p := range processTable() {
		if strings.Contains(p.cmdline, dir) && strings.Contains(p.cmdline, " jobmanager ") && p.state != 'Z' {
			return p.pid
		}
	}
	return 0
}

// allRunning reports whether every subtask of d runs, and d with them.
func allRunning(d v1.JobDetails) bool {
	total := 0
	for _, v := range d.Vertices {
		total += v.Parallelism
	}
	return d.State == v1.JobRunning && total > 0 && d.StatusCounts[v1.TaskRunning] == total
}

// checkpointCounts is the part of GET /v1/jobs/{id}/checkpoints the tests
// read.
type checkpointCounts struct {
	Counts struct {
		Restored  int `json:"restored"`
		Completed int `json:"completed"`
		Failed    int `json:"failed"`
	} `json:"counts"`
	Latest struct {
		Failed *struct {
			ID             int64  `json:"id"`
			FailureMessage string `json:"failure_message"`
		} `json:"failed"`
	} `json:"latest"`
	NumRestarts int `json:"numRestarts"`
}

// String says how many checkpoints completed, failed and were restored,
// and why the latest failed.
func (c checkpointCounts) String() string {
	s := fmt.Sprintf("%d completed, %d failed, %d restored", c.Counts.Completed, c.Counts.Failed, c.Counts.Restored)
	if f := c.Latest.Failed; f != nil {
		s += fmt.Sprintf("; checkpoint %d failed: %s", f.ID, f.FailureMessage)
	}
	return s
}

// killer SIGKILLs a cluster's TaskManagers and workers at random moments
// while a job runs: after each kill it waits for the job to run again
// (numRestarts up by one, every subtask RUNNING), which it times, then
// for one or two more completed checkpoints and a random while, and kills
// again.
type killer struct {
	t     *testing.T
	rng   *rand.Rand
	c     *cluster
	job   string
	jm    int    // the JobManager's pid
	mark  string // in the workers' command line (see clusterProcs)
	kills int    // how many to kill
	// log of what was killed and how long recovery took.
	killed     []string
	recoveries []time.Duration
	last       checkpointCounts
}

// run kills k.kills processes, at least two TaskManagers and two workers,
// and returns once the job ran again after the last.
func (k *killer) run() {
	t := k.t
	t.Helper()
	var d v1.JobDetails
	waitFor(t, 90*time.Second, "job "+k.job+" to run", func() bool {
		d = k.c.job(t, k.job)
		if v1.TerminalJobStatus(d.State) {
			t.Fatalf("job %s is %s before the first kill (make it run longer)", k.job, d.State)
		}
		return allRunning(d)
	})
	restarts := d.NumRestarts
	tmKills, workerKills := 0, 0
	for i := range k.kills {
		// The moment of the kill: a random while (up to 400 ms) after
		// the job completed one or two more checkpoints than it had when
		// it ran again, so that every attempt makes progress, and a
		// kill may come while the next checkpoint is pending.
		k.c.get(t, "/v1/jobs/"+k.job+"/checkpoints", &k.last)
		target := k.last.Counts.Completed + 1 + k.rng.IntN(2)
		offset := time.Duration(k.rng.IntN(400)) * time.Millisecond
		var reached time.Time
		deadline := time.Now().Add(60 * time.Second)
		waitFor(t, 61*time.Second, fmt.Sprintf("job %s to complete checkpoint number %d", k.job, target), func() bool {
			if time.Now().After(deadline) {
				t.Fatalf("job %s did not complete checkpoint number %d within 60 s; its checkpoints: %v", k.job, target, k.last)
			}
			if reached.IsZero() {
				if err := k.c.get(t, "/v1/jobs/"+k.job+"/checkpoints", &k.last); err != nil || k.last.Counts.Completed < target {
					return false
				}
				reached = time.Now()
			}
			return time.Since(reached) >= offset
		})
		left := k.kills - i
		wantTM := k.rng.IntN(2) == 0
		if tmKills < 2 && left <= 2-tmKills {
			wantTM = true
		} else if workerKills < 2 && left <= 2-workerKills {
			wantTM = false
		}
		var victim int
		var what string
		var before int
		waitFor(t, 20*time.Second, "a process to kill", func() bool {
			tms, workers, busy := clusterProcs(k.jm, k.mark)
			before = len(tms)
			switch {
			case wantTM && len(busy) > 0:
				victim, what = busy[k.rng.IntN(len(busy))], "TaskManager"
			case !wantTM && len(workers) > 0:
				victim, what = workers[k.rng.IntN(len(workers))], "worker"
			}
			return victim != 0
		})
		if d := k.c.job(t, k.job); v1.TerminalJobStatus(d.State) {
			t.Fatalf("job %s is %s after %d of %d kills (make it run longer)", k.job, d.State, i, k.kills)
		}
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s %d: %v", what, victim, err)
		}
		killedAt := time.Now()
		if what == "TaskManager" {
			tmKills++
		} else {
			workerKills++
		}
		k.killed = append(k.killed, fmt.Sprintf("%s %d", what, victim))
		waitFor(t, 90*time.Second, fmt.Sprintf("job %s to run again after kill %d (%s %d)", k.job, i+1, what, victim), func() bool {
			d = k.c.job(t, k.job)
			if d.State == v1.JobFailed || d.State == v1.JobCanceled {
				ex := k.c.exceptions(t, k.job)
				t.Fatalf("job %s is %s after kill %d (%s %d): %s", k.job, d.State, i+1, what, victim, ex.RootException)
			}
			return d.NumRestarts > restarts && allRunning(d) || d.State == v1.JobFinished
		})
		k.recoveries = append(k.recoveries, time.Since(killedAt))
		if what == "TaskManager" {
			// The process provider replaced it (the job, which needs
			// every slot, runs again anyway).
			waitFor(t, 10*time.Second, "the killed TaskManager's replacement", func() bool {
				tms, _, _ := clusterProcs(k.jm, k.mark)
				return len(tms) == before && !slices.Contains(tms, victim)
			})
		}
		restarts = d.NumRestarts
		k.c.get(t, "/v1/jobs/"+k.job+"/checkpoints", &k.last)
		if d.State == v1.JobFinished {
			t.Fatalf("job %s finished after %d of %d kills (make it run longer)", k.job, i+1, k.kills)
		}
	}
	t.Logf("killed %s", strings.Join(k.killed, ", "))
	t.Logf("SIGKILL to every subtask RUNNING again: %s", durations(k.recoveries))
}

// durations formats ds with their minimum, median and maximum.
func durations(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Round(time.Millisecond).String())
	}
	if len(s) == 0 {
		return "none"
	}
	return fmt.Sprintf("%s (min %v, median %v, max %v)", strings.Join(parts, " "), s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}
