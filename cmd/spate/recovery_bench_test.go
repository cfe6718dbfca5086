package main

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// BenchmarkRecoverySIGKILL measures, on the process provider, the time
// from the SIGKILL of a worker or of a whole TaskManager to every subtask
// of the job RUNNING again (numRestarts one more), as GET /v1/jobs/{id}
// shows it, polled every 5 ms: the process provider notices the child's
// exit at once and the lost TaskManager is replaced at once; the job
// restarts from its latest checkpoint with restart-strategy fixed-delay
// and no delay. One op is one kill and its recovery; "ms-to-RUNNING" is
// their mean, "max-ms" the slowest. The job is examples/exactlyonce,
// unbounded in practice, with checkpoints every 200 ms, at parallelism 2
// on a session of two TaskManagers of one slot.
//
//	go test -run XXX -bench RecoverySIGKILL -benchtime 5x -count 5 ./cmd/spate
func BenchmarkRecoverySIGKILL(b *testing.B) {
	prog := exactlyonceBinary(b)
	home := b.TempDir()
	o, err := spateEnv(b, home, "session", "start", "--target", "process-session", "--taskmanagers", "2", "--slots", "1")
	if err != nil {
		b.Fatalf("session start: %v\n%s", err, o)
	}
	ss := listSessions(b, home)
	if len(ss) != 1 {
		b.Fatalf("sessions %+v after start:\n%s", ss, o)
	}
	s := ss[0]
	b.Cleanup(func() {
		if _, err := spateEnv(b, home, "session", "stop", s.ID); err != nil {
			syscall.Kill(s.PID, syscall.SIGKILL)
		}
	})
	c := &cluster{rest: s.REST}
	out := workerDir(b)
	// chaosConf with restarts for every kill of every run of the
	// benchmark (-count times 1 + b.N).
	conf := slices.Clone(chaosConf)
	conf[len(conf)-1] = "restart-strategy.fixed-delay.attempts=1000000"
	args := append([]string{"run", "--session", s.ID, "--detached"}, conf...)
	args = append(args, prog, "-keys", "4", "-count", "1000000000000", "-rate", "2000", "-checkpoint-interval", "200ms", "-out", out)
	o, err = spateEnv(b, home, args...)
	m := regexpJobID.FindStringSubmatch(o)
	if err != nil || m == nil {
		b.Fatalf("run --session: %v\n%s", err, o)
	}
	id := m[1]
	job := func() v1.JobDetails {
		var d v1.JobDetails
		if err := c.get(b, "/v1/jobs/"+id, &d); err != nil {
			b.Fatal(err)
		}
		if v1.TerminalJobStatus(d.State) {
			var ex v1.JobExceptions
			c.get(b, "/v1/jobs/"+id+"/exceptions", &ex)
			b.Fatalf("job %s is %s after %d restarts: %s", id, d.State, d.NumRestarts, ex.RootException)
		}
		return d
	}
	waitFor(b, 60*time.Second, "the job to run", func() bool { return allRunning(job()) })
	b.Cleanup(func() { spateEnv(b, home, "cancel", "--jobmanager", s.REST, id) })

	for _, victim := range []string{"worker", "taskmanager"} {
		b.Run("kill="+victim, func(b *testing.B) {
			var took []time.Duration
			for i := range b.N {
				var ck checkpointCounts
				c.get(b, "/v1/jobs/"+id+"/checkpoints", &ck)
				done := ck.Counts.Completed
				// Kill once the job ran a checkpoint since the last
				// recovery, so that every restart restores one.
				waitFor(b, 30*time.Second, "a checkpoint before the kill", func() bool {
					job() // fails the benchmark if the job ended
					return c.get(b, "/v1/jobs/"+id+"/checkpoints", &ck) == nil && ck.Counts.Completed > done
				})
				d := job()
				var pid int
				waitFor(b, 30*time.Second, "a "+victim+" to kill", func() bool {
					_, workers, busy := clusterProcs(s.PID, "-out "+out)
					pick := workers
					if victim == "taskmanager" {
						pick = busy
					}
					if len(pick) > 0 {
						pid = pick[i%len(pick)]
					}
					return pid != 0
				})
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for {
					nd := job()
					if nd.NumRestarts > d.NumRestarts && allRunning(nd) {
						break
					}
					if time.Since(start) > 60*time.Second {
						b.Fatalf("kill %d of a %s: not RUNNING again within 60 s", i+1, victim)
					}
					time.Sleep(5 * time.Millisecond) // the poll interval of a measurement
				}
				took = append(took, time.Since(start))
			}
			var sum time.Duration
			for _, d := range took {
				sum += d
			}
			b.ReportMetric(float64(sum.Milliseconds())/float64(len(took)), "ms-to-RUNNING")
			b.ReportMetric(float64(slices.Max(took).Milliseconds()), "max-ms")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s: %s", victim, fmt.Sprint(durations(took)))
		})
	}
}
