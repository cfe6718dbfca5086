package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// The tests in this file run testdata/twice, a main that runs the same
// pipeline once per input ("alpha", then "beta") as the job "daily" each
// time, on every cluster target: each job must run its own closures.

// twiceVariants are the shapes of twice's main: Execute or ExecuteAsync,
// one Env (the jobs' fingerprints differ by their operator ids) or one Env
// per job (the jobs have the same fingerprint and differ only in the data
// their closures capture).
var twiceVariants = []struct {
	name string
	args []string
}{
	{"Execute", nil},
	{"ExecuteAsync", []string{"-async"}},
	{"SameFingerprint", []string{"-envs"}},
	{"SameFingerprintAsync", []string{"-envs", "-async"}},
}

// twiceWant is what twice's job number k prints.
func twiceWant(k int) []string {
	in := []string{"alpha", "beta"}[k]
	return []string{in + " 1", in + " 2", in + " 3"}
}

// jobOutput returns the lines tagged with job id in text, untagged and
// sorted.
func jobOutput(text, id string) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "[job "+id[:8]+" "); ok {
			_, line, _ := strings.Cut(rest, "] ")
			lines = append(lines, line)
		}
	}
	slices.Sort(lines)
	return lines
}

// submittedIDs returns the ids of the jobs a run submitted, in order.
func submittedIDs(t *testing.T, out string, want int) []string {
	t.Helper()
	var ids []string
	for _, m := range regexpJobID.FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	if len(ids) != want {
		t.Fatalf("%d jobs submitted, want %d:\n%s", len(ids), want, out)
	}
	return ids
}

// checkTwice checks that each of twice's jobs printed its own input's
// lines in text (read again by get until it does, or fails).
func checkTwice(t *testing.T, out string, get func() string) {
	t.Helper()
	ids := submittedIDs(t, out, 2)
	if ids[0] == ids[1] {
		t.Fatalf("both jobs have id %s", ids[0])
	}
	for k, id := range ids {
		var got []string
		waitFor(t, 10*time.Second, "job "+id+"'s output", func() bool {
			got = jobOutput(get(), id)
			return slices.Equal(got, twiceWant(k))
		})
	}
}

// TestSessionSamePipelineTwice runs twice on a session: the second job
// used to fail with a fingerprint mismatch (its worker ran the first
// Execute named "daily"), or, with equal fingerprints, to print the first
// job's data.
func TestSessionSamePipelineTwice(t *testing.T) {
	home := t.TempDir()
	if out, err := spateEnv(t, home, "session", "start", "--taskmanagers", "2", "--slots", "2"); err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	s := listSessions(t, home)[0]
	t.Cleanup(func() {
		spateEnv(t, home, "session", "stop", s.ID)
		syscall.Kill(s.PID, syscall.SIGKILL)
	})
	logs := func() string {
		paths, _ := filepath.Glob(filepath.Join(s.Dir, "log", "taskmanager-*.out"))
		var all strings.Builder
		for _, p := range paths {
			b, _ := os.ReadFile(p)
			all.Write(b)
		}
		return all.String()
	}
	for _, v := range twiceVariants {
		t.Run(v.name, func(t *testing.T) {
			out, err := spateEnv(t, home, append([]string{"run", "--session", s.ID, filepath.Join(binaries(t), "twice")}, v.args...)...)
			if err != nil || strings.Count(out, "is FINISHED") != 2 {
				t.Fatalf("run --session: %v\n%s", err, out)
			}
			checkTwice(t, out, logs)
		})
	}
}

var perJobDirs = regexp.MustCompile(`Per-job cluster in (\S+) for job`)

// runPerJobIn runs spate run --target process-per-job with TMPDIR set to
// tmp, so that everything the run and its clusters create lives there.
func runPerJobIn(t *testing.T, tmp string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binaries(t), "spate"), append([]string{"run", "--target", "process-per-job"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// nothingLeftIn waits until tmp is empty and no process names it.
func nothingLeftIn(t *testing.T, tmp string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the per-job clusters in "+tmp+" to be gone", func() bool {
		entries, err := os.ReadDir(tmp)
		return err == nil && len(entries) == 0 && len(processesNaming(tmp)) == 0
	})
}

// TestPerJobSamePipelineTwice runs twice on the per-job target: each job
// gets a cluster of its own (the second job used to fail because the one
// cluster ended with the first), its output comes back labelled with its
// job, and nothing of the clusters is left once the client returns.
func TestPerJobSamePipelineTwice(t *testing.T) {
	for _, v := range twiceVariants {
		t.Run(v.name, func(t *testing.T) {
			tmp := t.TempDir()
			out, err := runPerJobIn(t, tmp, append([]string{filepath.Join(binaries(t), "twice")}, v.args...)...)
			if err != nil || strings.Count(out, "is FINISHED") != 2 {
				t.Fatalf("run --target process-per-job: %v\n%s", err, out)
			}
			checkTwice(t, out, func() string { return out })
			dirs := perJobDirs.FindAllStringSubmatch(out, -1)
			if len(dirs) != 2 || dirs[0][1] == dirs[1][1] {
				t.Fatalf("want two clusters, one per job:\n%s", out)
			}
			for _, ord := range []string{`"daily" (Execute call #0)`, `"daily" (Execute call #1)`} {
				if !strings.Contains(out, "for job "+ord) {
					t.Errorf("no cluster was deployed for job %s:\n%s", ord, out)
				}
			}
			for _, id := range submittedIDs(t, out, 2) {
				if !strings.Contains(out, "[job "+id[:8]+" w0 daily] ") {
					t.Errorf("job %s's output lines do not name the job:\n%s", id, out)
				}
			}
			// Gone at once: the client waits for its clusters.
			if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
				t.Errorf("left behind in TMPDIR: %v", entries)
			}
			if ps := processesNaming(tmp); len(ps) > 0 {
				t.Errorf("processes left behind: %q", ps)
			}
		})
	}
}

// TestPerJobDetachedTwoJobs submits both of twice's jobs detached: each
// gets its own cluster, which removes itself when its job ends.
func TestPerJobDetachedTwoJobs(t *testing.T) {
	tmp := t.TempDir()
	out, err := runPerJobIn(t, tmp, "--detached", filepath.Join(binaries(t), "twice"), "-envs")
	if err != nil {
		t.Fatalf("run --detached: %v\n%s", err, out)
	}
	submittedIDs(t, out, 2)
	if dirs := perJobDirs.FindAllStringSubmatch(out, -1); len(dirs) != 2 {
		t.Fatalf("want two clusters, one per job:\n%s", out)
	}
	nothingLeftIn(t, tmp)
}

// TestApplicationSamePipelineTwice runs twice in application mode: main
// runs in the cluster, and each job's workers run that job's closures.
func TestApplicationSamePipelineTwice(t *testing.T) {
	for _, v := range twiceVariants {
		t.Run(v.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			b, err := exec.CommandContext(ctx, filepath.Join(binaries(t), "spate"),
				append([]string{"run-application", filepath.Join(binaries(t), "twice")}, v.args...)...).CombinedOutput()
			out := string(b)
			if err != nil {
				t.Fatalf("run-application: %v\n%s", err, out)
			}
			checkTwice(t, out, func() string { return out })
			clusterGone(t, appDirLine.FindStringSubmatch(out)[1], restOf(t, out))
		})
	}
}

var fingerprints = regexp.MustCompile(`[0-9a-f]{64}`)

// TestNondeterministicMainMismatch runs a main that, as a worker, skips
// its first input: the worker's first Execute builds another dataflow than
// the submitted first job. The job fails with an error naming the call's
// ordinal, both fingerprints and the cause; it never runs the other
// dataflow's closures. The second job's worker, whose main ends before
// its call, fails the job saying so.
func TestNondeterministicMainMismatch(t *testing.T) {
	c := startCluster(t, 2, 2)
	out, id, err := c.run(t, nil, "twice", "-nondet")
	if err == nil {
		t.Fatalf("a non-deterministic main ran:\n%s", out)
	}
	var d v1.JobDetails
	if err := c.get(t, "/v1/jobs/"+id, &d); err != nil {
		t.Fatal(err)
	}
	var submitted struct {
		Fingerprint string `json:"fingerprint"`
	}
	if err := json.Unmarshal(d.Plan, &submitted); err != nil || submitted.Fingerprint == "" {
		t.Fatalf("plan of the job: %v", err)
	}
	var ex v1.JobExceptions
	if err := c.get(t, "/v1/jobs/"+id+"/exceptions", &ex); err != nil {
		t.Fatal(err)
	}
	fps := fingerprints.FindAllString(ex.RootException, -1)
	if len(fps) != 2 || fps[0] == fps[1] || !slices.Contains(fps, submitted.Fingerprint) {
		t.Errorf("root exception %q does not name both fingerprints (submitted %s)", ex.RootException, submitted.Fingerprint)
	}
	for _, want := range []string{"call #0", "deterministic"} {
		if !strings.Contains(ex.RootException, want) {
			t.Errorf("root exception %q lacks %q", ex.RootException, want)
		}
	}
	if !strings.Contains(out, "call #0") {
		t.Errorf("spate run output does not explain the failure:\n%s", out)
	}
	for _, line := range c.output(id) {
		if !strings.HasPrefix(line, "spate worker:") {
			t.Errorf("the mismatched job ran and printed %q", line)
		}
	}

	out, _, err = c.run(t, []string{"--detached"}, "twice", "-nondet", "-async")
	if err != nil {
		t.Fatalf("submit detached: %v\n%s", err, out)
	}
	second := submittedIDs(t, out, 2)[1]
	c.waitStatus(t, second, v1.JobFailed)
	if err := c.get(t, "/v1/jobs/"+second+"/exceptions", &ex); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"without reaching Execute/ExecuteAsync call #1", "deterministic"} {
		if !strings.Contains(ex.RootException, want) {
			t.Errorf("root exception of the job main never reaches %q lacks %q", ex.RootException, want)
		}
	}
}

// TestRunNotASpateProgram runs programs that submit nothing on cluster
// targets, and a package that is not main: each is a clear error (the
// first used to exit 0, the last to say "permission denied").
func TestRunNotASpateProgram(t *testing.T) {
	c := startCluster(t, 1)
	for _, target := range [][]string{{"--target", "remote", "--jobmanager", c.rest}, {"--target", "process-per-job"}} {
		tmp := t.TempDir()
		cmd := exec.Command(filepath.Join(binaries(t), "spate"), append(append([]string{"run"}, target...), "/bin/true")...)
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		b, err := cmd.CombinedOutput()
		if out := string(b); err == nil || !strings.Contains(out, "ended without submitting a job") || !strings.Contains(out, "is /bin/true a Spate program?") {
			t.Errorf("spate run %v /bin/true: %v, want an error saying it submitted nothing:\n%s", target, err, out)
		}
		nothingLeftIn(t, tmp)
	}
	// In application mode main runs in the cluster: its application fails.
	tmp := t.TempDir()
	cmd := exec.Command(filepath.Join(binaries(t), "spate"), "run-application", "--target", "process-application", "/bin/true")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "returned without submitting a job") || !strings.Contains(string(b), "is the program a Spate program?") {
		t.Errorf("spate run-application /bin/true: %v, want an error saying it submitted nothing:\n%s", err, b)
	}
	nothingLeftIn(t, tmp)
	out, err := spateCLI(t, "run", "../../internal/config")
	if err == nil || !strings.Contains(out, "../../internal/config is not a main package") {
		t.Errorf("spate run ../../internal/config: %v, want an error saying it is not a main package:\n%s", err, out)
	}
}

// TestPerJobInterruptedTwoJobs interrupts an attached client while two
// unbounded jobs run at once, each on its own per-job cluster: both are
// cancelled and both clusters removed.
func TestPerJobInterruptedTwoJobs(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command(filepath.Join(binaries(t), "spate"), "run", "--target", "process-per-job",
		filepath.Join(binaries(t), "twice"), "-async", "-forever")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	bg := startBackground(t, cmd)
	done, text := bg.done, bg.text
	waitFor(t, 60*time.Second, "both jobs to run", func() bool {
		return strings.Count(text(), "is RUNNING") == 2 && len(jobOutput(text(), submittedIDs(t, text(), 2)[1])) == 3
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the interrupted client did not return:\n%s", text())
	}
	if !strings.Contains(text(), "is CANCELED") {
		t.Errorf("the jobs were not cancelled:\n%s", text())
	}
	nothingLeftIn(t, tmp)
}
