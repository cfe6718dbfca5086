package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var clusterDirLine = regexp.MustCompile(`Per-job cluster in (\S+)`)

// clusterGone waits until nothing of the cluster in dir whose REST API was
// at rest (if not empty) is left: no directory, no process naming it, and
// nothing accepting connections on its REST port.
func clusterGone(t *testing.T, dir, rest string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the cluster in "+dir+" to be gone", func() bool {
		if _, err := os.Stat(dir); err == nil {
			return false
		}
		if rest != "" {
			if c, err := net.DialTimeout("tcp", rest, time.Second); err == nil {
				c.Close()
				return false
			}
		}
		return len(processesNaming(dir)) == 0
	})
}

var restAPILine = regexp.MustCompile(`REST API at http://(\S+)`)

// restOf returns the REST address a run's output names.
func restOf(t *testing.T, out string) string {
	t.Helper()
	m := restAPILine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the output does not name the cluster's REST API:\n%s", out)
	}
	return m[1]
}

// processesNaming lists the processes whose command line contains s.
func processesNaming(s string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}

// untagged returns the job output lines of a per-job run's output, sorted.
func untagged(out string) []string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "[job "); ok {
			_, line, _ := strings.Cut(rest, "] ")
			lines = append(lines, line)
		}
	}
	slices.Sort(lines)
	return lines
}

// TestPerJobAttached runs word count on a per-job cluster: the job's
// output streams to the client, equals the local executor's, and the
// cluster (processes and directory) is gone when the client returns.
func TestPerJobAttached(t *testing.T) {
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "spate"), "run", "--target", "process-per-job", "-p", "2",
		filepath.Join(bin, "wordcount"), wordcountInput(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("spate run: %v\n%s", err, out)
	}
	m := clusterDirLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("the run does not name its cluster's directory:\n%s", out)
	}
	dir := string(m[1])
	if want := local(t, "wordcount", "-p", "2", wordcountInput(t)); !slices.Equal(untagged(string(out)), want) {
		t.Fatalf("per-job output differs from local:\n%s", out)
	}
	if !strings.Contains(string(out), "is FINISHED") {
		t.Errorf("the client did not see the job finish:\n%s", out)
	}
	// Gone at once: the client waits for the cluster before it returns.
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("cluster directory %s left behind", dir)
	}
	if ps := processesNaming(dir); len(ps) > 0 {
		t.Errorf("processes left behind: %q", ps)
	}
	if c, err := net.DialTimeout("tcp", restOf(t, string(out)), time.Second); err == nil {
		c.Close()
		t.Error("the cluster's REST port still accepts connections")
	}
}

// TestPerJobInterrupted interrupts an attached client while its unbounded
// job runs: the job is cancelled and the cluster removed.
func TestPerJobInterrupted(t *testing.T) {
	bin := binaries(t)
	cmd := exec.Command(filepath.Join(bin, "spate"), "run", "--target", "process-per-job", "-p", "2",
		filepath.Join(bin, "topn"), "-events", "1000000000000")
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	bg := startBackground(t, cmd)
	done, text := bg.done, bg.text
	waitFor(t, 60*time.Second, "the job to run", func() bool { return strings.Contains(text(), "is RUNNING") })
	m := clusterDirLine.FindStringSubmatch(text())
	if m == nil {
		t.Fatalf("no cluster directory named:\n%s", text())
	}
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
		t.Errorf("the job was not cancelled:\n%s", text())
	}
	clusterGone(t, m[1], restOf(t, text()))
	nothingLeftIn(t, tmp)
}

// TestPerJobDetached submits to a per-job cluster and returns at once; the
// cluster removes itself when the job ends.
func TestPerJobDetached(t *testing.T) {
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "spate"), "run", "--target", "process-per-job", "--detached", "-p", "2",
		filepath.Join(bin, "topn"), "-events", "300000")
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("spate run --detached: %v\n%s", err, out)
	}
	m := clusterDirLine.FindSubmatch(out)
	if m == nil || !bytes.Contains(out, []byte("submitted with JobID")) {
		t.Fatalf("unexpected output:\n%s", out)
	}
	clusterGone(t, string(m[1]), restOf(t, string(out)))
	nothingLeftIn(t, tmp)
}

// background is a CLI command started by a test, whose output is read
// while it runs.
type background struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error // receives the command's end
	// exited is closed once the command has ended.
	exited chan struct{}
}

// startBackground starts cmd with its output kept; the test waits on
// done (or kills cmd) itself.
func startBackground(t *testing.T, cmd *exec.Cmd) *background {
	t.Helper()
	b := &background{cmd: cmd, done: make(chan error, 1), exited: make(chan struct{})}
	cmd.Stdout = lockedWriter{&b.mu, &b.out}
	cmd.Stderr = lockedWriter{&b.mu, &b.out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.done <- cmd.Wait()
		close(b.exited)
	}()
	return b
}

// stopAtCleanup sends the command sig at the test's end unless it has
// ended by then, and SIGKILL after grace; a failed test logs its output.
func (b *background) stopAtCleanup(t *testing.T, sig os.Signal, grace time.Duration) {
	t.Cleanup(func() {
		select {
		case <-b.exited:
		default:
			b.cmd.Process.Signal(sig)
			select {
			case <-b.exited:
			case <-time.After(grace):
				b.cmd.Process.Kill()
				<-b.exited
			}
		}
		if t.Failed() {
			t.Logf("spate run:\n%s", b.text())
		}
	})
}

// awaitJobID waits for the output to name the submitted job, and
// returns its id.
func (b *background) awaitJobID(t *testing.T) string {
	t.Helper()
	var id string
	waitFor(t, 30*time.Second, "the job's submission", func() bool {
		if m := regexpJobID.FindStringSubmatch(b.text()); m != nil {
			id = m[1]
		}
		return id != ""
	})
	return id
}

// text is the output so far.
func (b *background) text() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}
