package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// BenchmarkRecoverAfterSIGKILL measures, on a session cluster of the
// process provider, the time from the SIGKILL of the TaskManager running a
// job to every subtask of the job RUNNING again (a TaskManager started in
// its place, the job redeployed as the next attempt). Restarts have no
// backoff (fixed-delay 0 s): the figure is the detection and recovery.
//
//	go test -run '^$' -bench RecoverAfterSIGKILL -benchtime 5x ./cmd/spate
func BenchmarkRecoverAfterSIGKILL(b *testing.B) {
	home := b.TempDir()
	out, err := spateEnv(b, home, "session", "start", "--target", "process-session", "--taskmanagers", "1", "--slots", "2")
	if err != nil {
		b.Fatalf("session start: %v\n%s", err, out)
	}
	ss := listSessions(b, home)
	s := ss[0]
	b.Cleanup(func() {
		spateEnv(b, home, "session", "stop", s.ID)
		syscall.Kill(s.PID, syscall.SIGKILL)
	})
	c := &cluster{rest: s.REST}
	out, err = spateEnv(b, home, "run", "--session", s.ID, "--detached", "-D", "restart-strategy.type=fixed-delay",
		"-D", "restart-strategy.fixed-delay.attempts=1000", "-D", "restart-strategy.fixed-delay.delay=0 s",
		"-p", "2", filepath.Join(binaries(b), "topn"), "-events", "1000000000000")
	m := regexpJobID.FindStringSubmatch(out)
	if err != nil || m == nil {
		b.Fatalf("run: %v\n%s", err, out)
	}
	id := m[1]
	job := func() v1.JobDetails {
		var d v1.JobDetails
		c.get(b, "/v1/jobs/"+id, &d)
		return d
	}
	running := func(d v1.JobDetails) bool {
		total := 0
		for _, v := range d.Vertices {
			total += v.Parallelism
		}
		return d.State == v1.JobRunning && d.StatusCounts[v1.TaskRunning] == total
	}
	waitFor(b, 60*time.Second, "the job to run", func() bool { return running(job()) })
	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		var pid int
		for _, p := range processesNaming(s.Dir) {
			if strings.Contains(p, " taskmanager ") {
				pid, _ = strconv.Atoi(p[:strings.Index(p, ":")])
			}
		}
		if pid == 0 {
			b.Fatal("no TaskManager process")
		}
		start := time.Now()
		syscall.Kill(pid, syscall.SIGKILL)
		waitFor(b, 60*time.Second, "the job to run again", func() bool {
			d := job()
			return d.NumRestarts == i+1 && running(d)
		})
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/recovery")
}
