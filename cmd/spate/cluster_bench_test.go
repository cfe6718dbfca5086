package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
)

// BenchmarkSubmitWarm measures job submission on a warm cluster (a
// JobManager and a TaskManager running, the program's binary already
// uploaded and cached by the TaskManager): from the client's submit call
// to the job being RUNNING, and to every subtask RUNNING (the worker
// process started, rebuilt the graph and joined the data plane). Each
// iteration then cancels the job and waits for its slot to be free again.
func BenchmarkSubmitWarm(b *testing.B) {
	c := startCluster(b, 1)
	cl, err := client.New(c.rest)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	prog := filepath.Join(binDir, "topn")
	up, err := cl.UploadArtifact(ctx, prog)
	if err != nil {
		b.Fatal(err)
	}
	info := exec.Command(prog, "-p", "1", "-events", "1000000000000")
	info.Env = append(os.Environ(), "SPATE_INFO=json")
	graph, err := info.Output()
	if err != nil {
		b.Fatal(err)
	}
	req := v1.JobSubmitRequest{JobGraph: graph, Artifact: up.ID, Args: []string{"-p", "1", "-events", "1000000000000"}}
	var toRunning, toTasks time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		id, err := cl.SubmitJob(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		running := false
		for {
			d, err := cl.Job(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if !running && d.State == v1.JobRunning {
				running = true
				toRunning += time.Since(start)
			}
			total := 0
			for _, v := range d.Vertices {
				total += v.Parallelism
			}
			if d.StatusCounts[v1.TaskRunning] == total {
				toTasks += time.Since(start)
				break
			}
			if v1.TerminalJobStatus(d.State) {
				b.Fatalf("job ended %s", d.State)
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		if err := cl.CancelJob(ctx, id); err != nil {
			b.Fatal(err)
		}
		for {
			o, err := cl.Overview(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if o.SlotsAvailable == o.SlotsTotal {
				break
			}
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(toRunning.Microseconds())/1000/float64(b.N), "ms-to-RUNNING")
	b.ReportMetric(float64(toTasks.Microseconds())/1000/float64(b.N), "ms-to-subtasks-RUNNING")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleRSS reports the resident memory of an idle JobManager and an
// idle TaskManager with one registered.
func BenchmarkIdleRSS(b *testing.B) {
	c := startCluster(b, 1)
	time.Sleep(time.Second)
	var jm, tm float64
	for i := 0; i < b.N; i++ {
		jm = rssMiB(b, c.jm.cmd.Process.Pid)
		tm = rssMiB(b, c.tms[0].cmd.Process.Pid)
	}
	b.ReportMetric(jm, "JM-MiB")
	b.ReportMetric(tm, "TM-MiB")
	b.ReportMetric(0, "ns/op")
}

func rssMiB(b *testing.B, pid int) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkDeploymentModes measures a run of word count at parallelism 1
// on a cluster of its own, per-job and application mode on the process
// provider, from the command's start: to the job's first output record on
// the client's terminal, and to the command's return, by which time the
// cluster is gone (the client waits for it). For comparison it submits the
// same job to a warm session cluster.
func BenchmarkDeploymentModes(b *testing.B) {
	bin := binaries(b)
	input, err := filepath.Abs("../../examples/wordcount/testdata/input.txt")
	if err != nil {
		b.Fatal(err)
	}
	modes := []struct {
		name string
		args []string
	}{
		{name: "per-job", args: []string{"run", "--target", "process-per-job", "-p", "1"}},
		{name: "application", args: []string{"run-application", "--target", "process-application", "-p", "1"}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			var toFirst, toGone time.Duration
			for i := 0; i < b.N; i++ {
				first, total := timeCommand(b, nil, func(line string) bool { return strings.HasPrefix(line, "[job ") },
					append(m.args, filepath.Join(bin, "wordcount"), input)...)
				toFirst += first
				toGone += total
			}
			b.ReportMetric(float64(toFirst.Microseconds())/1000/float64(b.N), "ms-to-first-record")
			b.ReportMetric(float64(toGone.Microseconds())/1000/float64(b.N), "ms-to-cluster-gone")
			b.ReportMetric(0, "ns/op")
		})
	}

	// The same job submitted to a warm session cluster: from the
	// command's start to the job RUNNING and to its end (the client has
	// followed it); its output goes to the session's logs.
	b.Run("session", func(b *testing.B) {
		home := b.TempDir()
		if out, err := spateEnv(b, home, "session", "start", "--taskmanagers", "1"); err != nil {
			b.Fatalf("session start: %v\n%s", err, out)
		}
		ss := listSessions(b, home)
		if len(ss) != 1 {
			b.Fatalf("sessions = %+v", ss)
		}
		defer spateEnv(b, home, "session", "stop", ss[0].ID)
		var toRunning, toEnd time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			running, total := timeCommand(b, []string{"SPATE_HOME=" + home}, func(line string) bool { return strings.HasSuffix(line, " is RUNNING") },
				"run", "--session", ss[0].ID, "-p", "1", filepath.Join(bin, "wordcount"), input)
			toRunning += running
			toEnd += total
		}
		b.ReportMetric(float64(toRunning.Microseconds())/1000/float64(b.N), "ms-to-RUNNING")
		b.ReportMetric(float64(toEnd.Microseconds())/1000/float64(b.N), "ms-to-job-end")
		b.ReportMetric(0, "ns/op")
	})
}

// timeCommand runs the spate CLI with args (and env added to its
// environment) and returns the time from its start to the first line of
// its output that mark accepts, and to its return.
func timeCommand(b *testing.B, env []string, mark func(line string) bool, args ...string) (toMark, toEnd time.Duration) {
	b.Helper()
	start := time.Now()
	cmd := exec.Command(filepath.Join(binDir, "spate"), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if toMark == 0 && mark(sc.Text()) {
			toMark = time.Since(start)
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	if toMark == 0 {
		b.Fatalf("spate %s: no line marked the event measured", strings.Join(args, " "))
	}
	return toMark, time.Since(start)
}
