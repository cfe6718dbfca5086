package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/pki"
)

// restPKI is the files of a REST API's TLS: a CA, the JobManager's
// keystore, a client's keystore, and a client keystore of another CA.
type restPKI struct {
	truststore, server, client, foreign string
}

func newRESTPKI(t *testing.T) restPKI {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.NewCA("spate REST test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("someone else's CA")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, ca *pki.CA, id pki.Identity) string {
		kp, err := ca.Issue(id, []string{"127.0.0.1", "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := kp.PEM()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := pki.WriteFile(path, b); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p := restPKI{truststore: filepath.Join(dir, "truststore.pem")}
	if err := pki.WriteFile(p.truststore, pki.CertPEM(ca.Cert.Raw)); err != nil {
		t.Fatal(err)
	}
	p.server = write("jobmanager.pem", ca, pki.Identity{Role: pki.RoleJobManager})
	p.client = write("client.pem", ca, pki.Identity{Role: pki.RoleTaskManager, Name: "operator"})
	p.foreign = write("foreign.pem", other, pki.Identity{Role: pki.RoleTaskManager, Name: "intruder"})
	return p
}

// clientArgs are the CLI's -D settings of a client holding keystore.
func (p restPKI) clientArgs(keystore string) []string {
	return []string{"-D", "security.ssl.rest.enabled=true", "-D", "security.ssl.rest.authentication-enabled=true",
		"-D", "security.ssl.rest.keystore=" + keystore, "-D", "security.ssl.rest.truststore=" + p.truststore}
}

// TestRESTMutualTLS runs a JobManager whose REST API, bound to every
// address and without a token, requires client certificates
// (security.ssl.rest.authentication-enabled): it starts (mutual TLS
// authenticates it); clients without a certificate, with one of another
// CA, in the clear, or not trusting its certificate get nothing; the Go
// client, spate list and spate run --target remote (progress polls
// included) work with the client's certificate.
func TestRESTMutualTLS(t *testing.T) {
	p := newRESTPKI(t)
	jm := start(t, "jobmanager", "--rpc-port", "0", "--rest-port", "0", "--host", "127.0.0.1",
		"-D", "rest.address=0.0.0.0", "-D", "heartbeat.interval=200", "-D", "heartbeat.timeout=2000",
		"-D", "security.ssl.rest.enabled=true", "-D", "security.ssl.rest.authentication-enabled=true",
		"-D", "security.ssl.rest.keystore="+p.server, "-D", "security.ssl.rest.truststore="+p.truststore)
	var rpc, rest string
	waitFor(t, 20*time.Second, "the JobManager to listen", func() bool {
		m := addrLine.FindStringSubmatch(jm.stdout())
		if m != nil {
			rpc, rest = m[1], m[2]
		}
		return m != nil
	})
	if !strings.Contains(jm.stdout(), "REST at https://") {
		t.Errorf("the JobManager does not announce HTTPS: %s", jm.stdout())
	}
	_, port, _ := net.SplitHostPort(rest)
	rest = net.JoinHostPort("127.0.0.1", port)
	start(t, "taskmanager", "--jobmanager", rpc, "--slots", "2", "-D", "taskmanager.resource-id=tmA")

	// Refused: no certificate, another CA's, the clear, a client that
	// does not trust the JobManager.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	trusting, err := client.LoadTLS("", p.truststore)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := client.LoadTLS(p.foreign, p.truststore)
	if err != nil {
		t.Fatal(err)
	}
	distrusting, err := client.LoadTLS(p.client, p.foreign)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]client.Option{
		"no certificate":           {client.WithTLS(trusting)},
		"another CA's certificate": {client.WithTLS(foreign)},
		"a foreign truststore":     {client.WithTLS(distrusting)},
		"the clear":                nil,
	} {
		c, err := client.New(rest, append(opts, client.WithTimeout(10*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		if ov, err := c.Overview(ctx); err == nil {
			t.Errorf("a client with %s got an answer: %+v", name, ov)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	out, err := exec.Command(filepath.Join(binaries(t), "spate"), "list", "--jobmanager", rest,
		"-D", "security.ssl.rest.enabled=true", "-D", "security.ssl.rest.truststore="+p.truststore).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "TLS failed") {
		t.Errorf("spate list without a client certificate: %v\n%s", err, out)
	}

	// Accepted: the Go client, spate list, spate run with the client's
	// certificate.
	tc, err := client.LoadTLS(p.client, p.truststore)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(rest, client.WithTLS(tc))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the TaskManager to register", func() bool {
		ov, err := c.Overview(ctx)
		return err == nil && ov.TaskManagers == 1
	})
	out, err = exec.Command(filepath.Join(binaries(t), "spate"), append([]string{"list", "--jobmanager", rest}, p.clientArgs(p.client)...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No jobs.") {
		t.Errorf("spate list with the client's certificate: %v\n%s", err, out)
	}
	args := append([]string{"run", "--target", "remote", "--jobmanager", rest, "--progress", "plain", "--progress-interval", "300ms"}, p.clientArgs(p.client)...)
	cmd := exec.CommandContext(ctx, filepath.Join(binaries(t), "spate"), append(args, dashjob(t), "-rate", "4000", "-events", "4000")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("spate run --target remote over mutual TLS: %v\n%s%s", err, stdout, stderr.String())
	}
	id := regexpJobID.FindStringSubmatch(string(stdout))
	if id == nil || !strings.Contains(stderr.String(), "FINISHED") {
		t.Errorf("spate run over mutual TLS: no job id or no progress of its end:\n%s%s", stdout, stderr.String())
	} else if j, err := c.Job(ctx, id[1]); err != nil || j.State != "FINISHED" {
		t.Errorf("job %s over mutual TLS: %+v, %v", id[1], j, err)
	}
}

// TestRESTTLSSession starts a process session whose REST API requires
// client certificates: its record (0600) keeps the paths of the TLS
// files, and spate run --session and session list use them without
// being told.
func TestRESTTLSSession(t *testing.T) {
	p := newRESTPKI(t)
	home := t.TempDir()
	// The JobManager's keystore serves as the client's too, as Flink's
	// one REST keystore.
	out, err := spateEnv(t, home, append([]string{"session", "start", "--taskmanagers", "1"}, p.clientArgs(p.server)...)...)
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	if !strings.Contains(out, "REST https://") {
		t.Errorf("session start does not show HTTPS:\n%s", out)
	}
	ss := listSessions(t, home)
	if len(ss) != 1 || ss[0].Status != sessionRunning {
		t.Fatalf("session list = %+v", ss)
	}
	s := ss[0]
	t.Cleanup(func() { syscall.Kill(s.PID, syscall.SIGKILL) })
	if s.Credentials == nil || !s.Credentials.TLS || !s.Credentials.TLSMutual || s.Credentials.TLSKeystore != p.server || s.Credentials.TLSTruststore != p.truststore {
		t.Errorf("the session's record keeps %+v, want its TLS files", s.Credentials)
	}
	fi, err := os.Stat(filepath.Join(s.Dir, "session.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("session.json: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	plain := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := plain.Get("https://" + s.REST + "/v1/overview"); err == nil {
		resp.Body.Close()
		t.Errorf("the session's REST API answered a client without a certificate: %s", resp.Status)
	}
	out, err = spateEnv(t, home, "run", "--session", s.ID, filepath.Join(binaries(t), "wordcount"), wordcountInput(t))
	if err != nil || !strings.Contains(out, "is FINISHED") {
		t.Errorf("spate run --session over mutual TLS: %v\n%s", err, out)
	}
	if out, err := spateEnv(t, home, "session", "stop", s.ID); err != nil {
		t.Errorf("session stop: %v\n%s", err, out)
	}
}

// TestRESTTLSPerJob runs word count on a per-job cluster whose REST API
// requires client certificates: the program submits over HTTPS with the
// files the CLI names, the client follows the job to its end, and nothing
// is left.
func TestRESTTLSPerJob(t *testing.T) {
	p := newRESTPKI(t)
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"run", "--target", "process-per-job", "-p", "2"}, p.clientArgs(p.server)...)
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "spate"), append(args, filepath.Join(bin, "wordcount"), wordcountInput(t))...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "is FINISHED") {
		t.Fatalf("spate run --target process-per-job over mutual TLS: %v\n%s", err, out)
	}
	m := clusterDirLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("the run does not name its cluster's directory:\n%s", out)
	}
	if ps := processesNaming(string(m[1])); len(ps) > 0 {
		t.Errorf("processes left behind: %q", ps)
	}
}

// TestRESTTLSApplication runs an application cluster whose REST API
// requires client certificates: its main, run by the JobManager, submits
// its jobs over HTTPS with the JobManager's own REST keystore.
func TestRESTTLSApplication(t *testing.T) {
	p := newRESTPKI(t)
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"run-application", "--target", "process-application"}, p.clientArgs(p.server)...)
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "spate"), append(args, filepath.Join(bin, "multijob"))...).CombinedOutput()
	if err != nil {
		t.Fatalf("run-application over mutual TLS: %v\n%s", err, out)
	}
	for _, job := range []string{"first", "fourth"} {
		if !strings.Contains(string(out), job+" 10") {
			t.Errorf("no output of job %s:\n%s", job, out)
		}
	}
}
