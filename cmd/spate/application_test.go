package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var appDirLine = regexp.MustCompile(`Application cluster in (\S+)`)

// TestApplicationMode runs a program's main in its own cluster: two jobs
// one after the other, then two at once; every job's output reaches the
// client, and the cluster is gone when main and its jobs are over. A main
// that returns an error fails the application; a detached client leaves a
// cluster that removes itself.
func TestApplicationMode(t *testing.T) {
	bin := binaries(t)
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, filepath.Join(bin, "spate"), append([]string{"run-application", "--target", "process-application"}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := run(filepath.Join(bin, "multijob"))
	if err != nil {
		t.Fatalf("run-application: %v\n%s", err, out)
	}
	var want []string
	for _, job := range []string{"first", "second", "third", "fourth"} {
		for _, v := range []int{2, 4, 6, 8, 10} {
			want = append(want, job+" "+itoa(v))
		}
	}
	slices.Sort(want)
	if got := untagged(out); !slices.Equal(got, want) {
		t.Fatalf("application output = %q, want %q\n%s", got, want, out)
	}
	if ids := regexpJobID.FindAllString(out, -1); len(ids) != 4 {
		t.Errorf("%d jobs submitted, want 4:\n%s", len(ids), out)
	}
	m := appDirLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no cluster directory named:\n%s", out)
	}
	clusterGone(t, m[1])

	out, err = run(filepath.Join(bin, "multijob"), "-fail")
	if err == nil || !strings.Contains(out, "the application failed") || !strings.Contains(out, "main fails after its jobs") {
		t.Fatalf("a failing main: %v\n%s", err, out)
	}
	clusterGone(t, appDirLine.FindStringSubmatch(out)[1])

	out, err = run("--detached", filepath.Join(bin, "multijob"))
	if err != nil || !strings.Contains(out, "ends with the application") {
		t.Fatalf("detached: %v\n%s", err, out)
	}
	clusterGone(t, appDirLine.FindStringSubmatch(out)[1])
}

func itoa(v int) string { return strconv.Itoa(v) }

// TestStandaloneApplicationCluster runs main in a JobManager started by
// hand with --application; TaskManagers started by hand join it, and when
// the application ends the JobManager exits and tells them to exit too.
func TestStandaloneApplicationCluster(t *testing.T) {
	bin := binaries(t)
	jm := start(t, "jobmanager", "--rpc-port", "0", "--rest-port", "0", "--host", "127.0.0.1",
		"-D", "heartbeat.interval=200", "-D", "heartbeat.timeout=2000", "-D", "parallelism.default=2",
		"--application", filepath.Join(bin, "multijob"))
	var rpc string
	waitFor(t, 20*time.Second, "the JobManager to listen", func() bool {
		m := addrLine.FindStringSubmatch(jm.stdout())
		if m != nil {
			rpc = m[1]
		}
		return m != nil
	})
	tms := []*proc{
		start(t, "taskmanager", "--jobmanager", rpc, "--slots", "1"),
		start(t, "taskmanager", "--jobmanager", rpc, "--slots", "1"),
	}
	for _, p := range append([]*proc{jm}, tms...) {
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("a process of the application cluster did not exit after the application")
		}
	}
	if code := jm.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("the JobManager exited with %d", code)
	}
	var got []string
	for _, tm := range tms {
		got = append(got, untagged(tm.stdout())...)
	}
	slices.Sort(got)
	var want []string
	for _, job := range []string{"first", "second", "third", "fourth"} {
		for _, v := range []int{2, 4, 6, 8, 10} {
			want = append(want, job+" "+strconv.Itoa(v))
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("output = %q, want %q", got, want)
	}
}
