package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/config"
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
	clusterGone(t, m[1], restOf(t, out))

	out, err = run(filepath.Join(bin, "multijob"), "-fail")
	if err == nil || !strings.Contains(out, "the application failed") || !strings.Contains(out, "main fails after its jobs") {
		t.Fatalf("a failing main: %v\n%s", err, out)
	}
	clusterGone(t, appDirLine.FindStringSubmatch(out)[1], restOf(t, out))

	out, err = run("--detached", filepath.Join(bin, "multijob"))
	if err != nil || !strings.Contains(out, "ends with the application") {
		t.Fatalf("detached: %v\n%s", err, out)
	}
	clusterGone(t, appDirLine.FindStringSubmatch(out)[1], restOf(t, out))
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

// TestApplicationFailureThroughREST runs a main that fails after its jobs
// on a standalone application cluster told to stay after its application
// (execution.shutdown-on-application-finish: false): GET /v1/application
// reports FAILED with main's own error, the jobs stay listed, and the
// JobManager, once stopped, exits with a failure and takes its
// TaskManager along.
func TestApplicationFailureThroughREST(t *testing.T) {
	bin := binaries(t)
	// What run-application hands the JobManager for main alone.
	t.Setenv(applicationPropertiesEnv, config.EncodeProperties(map[string]string{
		config.TaskManagerEnvPrefix + "APP_SECRET": "app-s3cret", "parallelism.default": "1"}))
	jm := start(t, "jobmanager", "--rpc-port", "0", "--rest-port", "0", "--host", "127.0.0.1",
		"-D", "heartbeat.interval=200", "-D", "heartbeat.timeout=2000", "-D", "parallelism.default=1",
		"-D", "execution.shutdown-on-application-finish=false",
		"--application", filepath.Join(bin, "multijob"), "--", "-fail")
	var m []string
	waitFor(t, 20*time.Second, "the JobManager to listen", func() bool {
		m = addrLine.FindStringSubmatch(jm.stdout())
		return m != nil
	})
	c := &cluster{rest: m[2]}
	tm := start(t, "taskmanager", "--jobmanager", m[1], "--slots", "2")

	var app v1.Application
	waitFor(t, 60*time.Second, "the application to end", func() bool {
		return c.get(t, "/v1/application", &app) == nil && app.Status != v1.JobRunning
	})
	if app.Status != v1.JobFailed || !strings.Contains(app.Error, "main fails after its jobs, as asked") || app.EndTime < app.StartTime {
		t.Errorf("GET /v1/application = %+v, want FAILED with main's error", app)
	}
	out, err := spateEnv(t, t.TempDir(), "list", "--all", "--jobmanager", m[2])
	if err != nil || strings.Count(out, "FINISHED") != 4 {
		t.Errorf("spate list after the application: %v, want its 4 jobs FINISHED:\n%s", err, out)
	}
	// main's secret is not the JobManager's configuration.
	var conf map[string]any
	if err := c.get(t, "/v1/config", &conf); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(conf); strings.Contains(string(b), "app-s3cret") {
		t.Errorf("GET /v1/config shows the application's secret: %s", b)
	}
	select {
	case <-jm.done:
		t.Fatal("the JobManager exited although told to stay after its application")
	case <-time.After(200 * time.Millisecond):
	}
	jm.cmd.Process.Signal(syscall.SIGTERM)
	for _, p := range []*proc{jm, tm} {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatal("a process of the application cluster did not exit after the JobManager was stopped")
		}
	}
	if code := jm.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("the JobManager of a failed application exited with 0:\n%s", jm.stderr())
	}
}
