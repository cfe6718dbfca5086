package main

import (
	"context"
	"regexp"
	"slices"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// TestKubernetesSessionSavepoint: on a kubernetes-session cluster,
// examples/exactlyonce with checkpoints is stopped mid-run with spate
// stop --savepoint into a host directory (the pods of localkube are
// local processes, so the JobManager and the workers reach it), then
// spate run -s on the same session finishes it: the committed output
// of the two pieces equals an uninterrupted run's, each pair once.
func TestKubernetesSessionSavepoint(t *testing.T) {
	k := startKube(t)
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := append([]string{"session", "start", "--target", "kubernetes-session", "--taskmanagers", "2", "--slots", "1"},
		k.flags("kubernetes.cluster-id=spsess")...)
	o, err := k.spate(ctx, t, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, o)
	}
	m := sessionStartedLine.FindStringSubmatch(string(o))
	if m == nil {
		t.Fatalf("session start did not name the session:\n%s", o)
	}
	t.Cleanup(func() {
		if o, err := k.spate(context.Background(), t, append([]string{"session", "stop"}, append(k.flags(), "spsess")...)...).CombinedOutput(); err != nil {
			t.Logf("session stop: %v\n%s", err, o)
		}
	})
	c := &cluster{rest: m[2]}
	want := wantPairs()
	out, spDir := workerDir(t), workerDir(t)
	submit := func(runFlags ...string) string {
		t.Helper()
		args := append(append([]string{"run", "--target", "kubernetes-session", "--detached"}, k.flags("kubernetes.cluster-id=spsess")...), runFlags...)
		args = append(args, chaosArgs(bin, out)...)
		o, err := k.spate(ctx, t, args...).CombinedOutput()
		m := regexpJobID.FindStringSubmatch(string(o))
		if err != nil || m == nil {
			t.Fatalf("spate %v: %v\n%s", args, err, o)
		}
		return m[1]
	}

	id := submit()
	waitMidRun(t, c, id, out)
	began := time.Now()
	o, err = k.spate(ctx, t, "stop", "-m", c.rest, "--savepoint", spDir, id).CombinedOutput()
	sp := regexpSavepointPath.FindStringSubmatch(string(o))
	if err != nil || sp == nil {
		t.Fatalf("spate stop: %v\n%s", err, o)
	}
	stopped := time.Since(began)
	if d := c.waitStatus(t, id, v1.JobFinished, v1.JobFailed, v1.JobCanceled); d.State != v1.JobFinished {
		t.Fatalf("job %s is %s after spate stop, want FINISHED: %s", id, d.State, c.exceptions(t, id).RootException)
	}
	checkPiece(t, out, want)
	checkSavepointCommitted(t, sp[1], out)

	restart := time.Now()
	id2 := submit("-s", sp[1])
	waitFor(t, 60*time.Second, "job "+id2+" RUNNING", func() bool { d := c.job(t, id2); return allRunning(d) || v1.TerminalJobStatus(d.State) })
	running := time.Since(restart)
	if d := c.waitStatus(t, id2, v1.JobFinished, v1.JobFailed, v1.JobCanceled); d.State != v1.JobFinished {
		t.Fatalf("job %s restored from %s is %s: %s", id2, sp[1], d.State, c.exceptions(t, id2).RootException)
	}
	var st v1.CheckpointingStatistics
	if err := c.get(t, "/v1/jobs/"+id2+"/checkpoints", &st); err != nil {
		t.Fatal(err)
	}
	if st.Latest.Restored == nil || st.Latest.Restored.ExternalPath != sp[1] {
		t.Errorf("job %s restored %+v, want the savepoint %s", id2, st.Latest.Restored, sp[1])
	}
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("the two pieces committed %d lines, one uninterrupted run %d: %s", len(got), len(want), pairDiff(got, want))
	}
	t.Logf("kubernetes-session: spate stop --savepoint took %v; spate run -s to every subtask RUNNING %v",
		stopped.Round(time.Millisecond), running.Round(time.Millisecond))
}

var appRESTLine = regexp.MustCompile(`Application cluster \S+'s REST API at http://(\S+)`)

// TestKubernetesApplicationSavepoint: the same on kubernetes-application,
// the program in the image: a detached application is stopped mid-run
// with a savepoint (its cluster then deletes itself), and a second
// application started with -s finishes the output. Its cluster is gone
// when the client returns, so the restore shows in the output alone: a
// second run from scratch would commit pairs twice.
func TestKubernetesApplicationSavepoint(t *testing.T) {
	k := startKube(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	want := wantPairs()
	out, spDir := workerDir(t), workerDir(t)
	app := func(runFlags ...string) []string {
		args := append(append(append([]string{"run-application", "--target", "kubernetes-application"}, runFlags...), k.flags()...), chaosConf...)
		return append(append(args, "local:///opt/spate/usrlib/exactlyonce"), chaosProgArgs(out)...)
	}
	o, err := k.spate(ctx, t, app("--detached")...).CombinedOutput()
	m := appRESTLine.FindStringSubmatch(string(o))
	if err != nil || m == nil {
		t.Fatalf("spate run-application --detached: %v\n%s", err, o)
	}
	c := &cluster{rest: m[1]}
	var id string
	waitFor(t, time.Minute, "the application's job", func() bool {
		var ov v1.JobsOverview
		if c.get(t, "/v1/jobs/overview", &ov) != nil || len(ov.Jobs) != 1 {
			return false
		}
		id = ov.Jobs[0].JID
		return true
	})
	waitMidRun(t, c, id, out)
	o, err = k.spate(ctx, t, "stop", "-m", c.rest, "--savepoint", spDir, id).CombinedOutput()
	sp := regexpSavepointPath.FindStringSubmatch(string(o))
	if err != nil || sp == nil {
		t.Fatalf("spate stop: %v\n%s", err, o)
	}
	checkPiece(t, out, want)
	checkSavepointCommitted(t, sp[1], out)
	k.nothingLeft(t, time.Minute)

	o, err = k.spate(ctx, t, app("-s", sp[1])...).CombinedOutput()
	if err != nil {
		t.Fatalf("spate run-application -s %s: %v\n%s", sp[1], err, o)
	}
	if got := committedLines(t, out); !slices.Equal(got, want) {
		t.Fatalf("the two pieces committed %d lines, one uninterrupted run %d: %s", len(got), len(want), pairDiff(got, want))
	}
	k.nothingLeft(t, 0)
}
