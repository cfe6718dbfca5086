package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netns is a pair of network namespaces joined by a veth pair: a and b,
// at addresses A and B of a /24. The test that makes it removes it.
type netns struct {
	a, b string
	A, B string
}

// newNetns makes the namespaces with `ip netns` and the veth pair between
// them; it skips the test without root or ip.
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test makes network namespaces with ip netns")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2) for network namespaces")
	}
	id := os.Getpid() % 10000
	n := &netns{a: fmt.Sprintf("spate%d-a", id), b: fmt.Sprintf("spate%d-b", id),
		A: fmt.Sprintf("10.213.%d.1", id%250), B: fmt.Sprintf("10.213.%d.2", id%250)}
	va, vb := fmt.Sprintf("sp%da", id), fmt.Sprintf("sp%db", id)
	ip := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("netns", "add", n.a); err != nil {
		t.Skipf("cannot make a network namespace here: %v", err)
	}
	t.Cleanup(func() {
		// Deleting the namespaces deletes the veth pair with them.
		ip("netns", "del", n.a)
		ip("netns", "del", n.b)
	})
	for _, args := range [][]string{
		{"netns", "add", n.b},
		{"link", "add", va, "type", "veth", "peer", "name", vb},
		{"link", "set", va, "netns", n.a},
		{"link", "set", vb, "netns", n.b},
		{"-n", n.a, "addr", "add", n.A + "/24", "dev", va},
		{"-n", n.b, "addr", "add", n.B + "/24", "dev", vb},
		{"-n", n.a, "link", "set", va, "up"},
		{"-n", n.b, "link", "set", vb, "up"},
		{"-n", n.a, "link", "set", "lo", "up"},
		{"-n", n.b, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// startIn is start in network namespace ns.
func startIn(t *testing.T, ns string, args ...string) *proc {
	t.Helper()
	args = withTestTLS(t, args)
	p := &proc{cmd: exec.Command("ip", append([]string{"netns", "exec", ns, filepath.Join(binaries(t), "spate")}, args...)...)}
	p.cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	p.cmd.Stdout = lockedWriter{&p.mu, &p.out}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.err}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	p.done = done
	go func() { p.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("in %s: spate %s\nstdout:\n%s\nstderr:\n%s", ns, strings.Join(args, " "), p.stdout(), p.stderr())
		}
	})
	return p
}

// spateIn runs a spate command in network namespace ns.
func spateIn(t *testing.T, ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, filepath.Join(binaries(t), "spate")}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestClusterAcrossNetworkNamespaces runs a cluster on a real network:
// the JobManager and a TaskManager in one namespace, a TaskManager and
// the client in another, joined by a veth pair. A REST API on a
// non-loopback address needs a token to start; the client from the other
// namespace is refused without it and served with it; the TaskManager
// across the link registers over mutual TLS, and a job at parallelism 2
// exchanges its records between the namespaces.
func TestClusterAcrossNetworkNamespaces(t *testing.T) {
	n := newNetns(t)
	// No token: a REST API on the network refuses to start.
	out, err := spateIn(t, n.a, withTestTLS(t, []string{"jobmanager", "--host", n.A, "--rpc-port", "0", "--rest-port", "0"})...)
	if err == nil || !strings.Contains(out, "rest.authentication.token-file") {
		t.Fatalf("a JobManager on %s without a token: %v\n%s", n.A, err, out)
	}
	tokFile, _ := restToken(t)
	jm := startIn(t, n.a, "jobmanager", "--host", n.A, "--rpc-port", "0", "--rest-port", "0",
		"-D", "rest.authentication.token-file="+tokFile, "-D", "heartbeat.interval=200", "-D", "heartbeat.timeout=2000")
	c := &cluster{jm: jm}
	waitFor(t, 20*time.Second, "the JobManager to listen", func() bool {
		m := addrLine.FindStringSubmatch(jm.stdout())
		if m != nil {
			c.rpc, c.rest = m[1], m[2]
		}
		return m != nil
	})
	c.tms = []*proc{
		startIn(t, n.a, "taskmanager", "--jobmanager", c.rpc, "--slots", "1", "-D", "taskmanager.host="+n.A, "-D", "taskmanager.resource-id=tm-a"),
		startIn(t, n.b, "taskmanager", "--jobmanager", c.rpc, "--slots", "1", "-D", "taskmanager.host="+n.B, "-D", "taskmanager.resource-id=tm-b"),
	}
	auth := []string{"-D", "rest.authentication.token-file=" + tokFile}
	if out, err := spateIn(t, n.b, "list", "--jobmanager", c.rest); err == nil || !strings.Contains(out, "authentication required") {
		t.Errorf("spate list from %s without the token: %v\n%s", n.b, err, out)
	}
	waitFor(t, 20*time.Second, "both TaskManagers to register", func() bool {
		return strings.Contains(c.tms[0].stderr(), "taskmanager registered") && strings.Contains(c.tms[1].stderr(), "taskmanager registered")
	})
	if out, err := spateIn(t, n.b, append([]string{"list", "--jobmanager", c.rest}, auth...)...); err != nil {
		t.Errorf("spate list from %s with the token: %v\n%s", n.b, err, out)
	}
	out, err = spateIn(t, n.b, append(append([]string{"run", "--target", "remote", "--jobmanager", c.rest, "-p", "2"}, auth...),
		filepath.Join(binaries(t), "wordcount"), wordcountInput(t))...)
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Fatalf("wordcount across the namespaces: %v\n%s", err, out)
	}
	id := regexpJobID.FindStringSubmatch(out)[1]
	if lines := c.output(id); len(lines) == 0 {
		t.Errorf("wordcount printed nothing on the TaskManagers")
	}
}
