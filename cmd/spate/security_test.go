package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/pki"
)

// TestTaskManagerWithoutValidCertificateCannotRegister starts, beside a
// cluster's TaskManager, one whose certificate comes from another CA and
// one that speaks in the clear: neither registers, the cluster keeps its
// one TaskManager.
func TestTaskManagerWithoutValidCertificateCannotRegister(t *testing.T) {
	c := startCluster(t, 1)
	foreign, err := pki.NewCA("someone else's CA")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := foreign.Issue(pki.Identity{Role: pki.RoleTaskManager, Name: "intruder"}, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := kp.PEM()
	dir := t.TempDir()
	keystore, truststore := filepath.Join(dir, "keystore.pem"), filepath.Join(dir, "truststore.pem")
	if err := pki.WriteFile(keystore, ks); err != nil {
		t.Fatal(err)
	}
	// It even trusts the cluster's CA: its own certificate is the problem.
	_, testDir := testCluster(t)
	tb, _ := os.ReadFile(filepath.Join(testDir, "truststore.pem"))
	if err := pki.WriteFile(truststore, append(tb, pki.CertPEM(foreign.Cert.Raw)...)); err != nil {
		t.Fatal(err)
	}
	intruders := []*proc{
		start(t, "taskmanager", "--jobmanager", c.rpc, "-D", "taskmanager.resource-id=intruder-foreign-ca",
			"-D", "security.ssl.internal.keystore="+keystore, "-D", "security.ssl.internal.truststore="+truststore),
		start(t, "taskmanager", "--jobmanager", c.rpc, "-D", "taskmanager.resource-id=intruder-clear",
			"-D", "security.ssl.internal.enabled=false"),
	}
	for _, p := range intruders {
		waitFor(t, 20*time.Second, "the intruders to fail registering", func() bool {
			return strings.Contains(p.stderr(), "no session with the JobManager")
		})
	}
	if !strings.Contains(intruders[1].stderr(), "SECURITY WARNING") {
		t.Errorf("a TaskManager in the clear did not say so loudly:\n%s", intruders[1].stderr())
	}
	var tms v1.TaskManagers
	if err := c.get(t, "/v1/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	if len(tms.TaskManagers) != 1 {
		t.Fatalf("%d TaskManagers registered, want the cluster's 1: %+v", len(tms.TaskManagers), tms.TaskManagers)
	}
}

// TestStandaloneRefusesTheClear: a standalone daemon without keystore and
// truststore does not start, and says which keys to set.
func TestStandaloneRefusesTheClear(t *testing.T) {
	bin := binaries(t)
	for _, args := range [][]string{
		{"jobmanager", "--rpc-port", "0", "--rest-port", "0", "--host", "127.0.0.1"},
		{"taskmanager", "--jobmanager", "127.0.0.1:1"},
	} {
		cmd := exec.Command(filepath.Join(bin, "spate"), args...)
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "security.ssl.internal.keystore") || !strings.Contains(string(out), "security.ssl.internal.enabled: false") {
			t.Errorf("spate %s without TLS settings: %v\n%s", args[0], err, out)
		}
	}
}

// restToken writes a token file of mode 0600 and returns its path and
// token.
func restToken(t *testing.T) (string, string) {
	tok := hex.EncodeToString([]byte("a test token of the cluster!"))
	path := filepath.Join(t.TempDir(), "rest-token")
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tok
}

// TestRESTRequiresToken runs a JobManager with a token file: every
// reading and mutating endpoint answers 401 (with one JSON message)
// without the token, the health endpoint does not, the CLI reads the
// token from its configuration, and a token file others can read keeps
// the JobManager from starting.
func TestRESTRequiresToken(t *testing.T) {
	path, tok := restToken(t)
	jm := start(t, "jobmanager", "--rpc-port", "0", "--rest-port", "0", "--host", "127.0.0.1", "-D", "rest.authentication.token-file="+path)
	var rest string
	waitFor(t, 20*time.Second, "the JobManager to listen", func() bool {
		m := addrLine.FindStringSubmatch(jm.stdout())
		if m != nil {
			rest = m[2]
		}
		return m != nil
	})
	const job = "0123456789abcdef0123456789abcdef"
	const art = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	endpoints := []struct{ method, path, body string }{
		{"GET", "/v1/overview", ""}, {"GET", "/v1/config", ""}, {"GET", "/v1/jobs", ""},
		{"GET", "/v1/jobs/overview", ""}, {"GET", "/v1/jobs/" + job, ""}, {"GET", "/v1/jobs/" + job + "/exceptions", ""},
		{"GET", "/v1/taskmanagers", ""}, {"GET", "/v1/taskmanagers/tm-1/stdout", ""}, {"GET", "/v1/artifacts/" + art, ""},
		{"POST", "/v1/jobs", `{"jobGraph":{}}`}, {"PATCH", "/v1/jobs/" + job + "?mode=cancel", ""},
		{"POST", "/v1/jobs/" + job + "/collect", "{}"}, {"POST", "/v1/jobs/" + job + "/acknowledge-result", ""},
		{"POST", "/v1/artifacts", "\x7fELF"}, {"GET", "/v1/nowhere", ""},
	}
	do := func(method, path, body, auth string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+rest+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var answer string
	for _, e := range endpoints {
		for _, auth := range []string{"", "Bearer " + strings.Repeat("0", len(tok))} {
			code, body := do(e.method, e.path, e.body, auth)
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: %d %s, want 401", e.method, e.path, auth, code, body)
			}
			var er v1.ErrorResponse
			if json.Unmarshal([]byte(body), &er) != nil || len(er.Errors) != 1 {
				t.Errorf("%s %s: 401 body %q is not a JSON error", e.method, e.path, body)
			}
			if answer == "" {
				answer = body
			} else if body != answer {
				t.Errorf("%s %s: answer %q differs from %q", e.method, e.path, body, answer)
			}
		}
		if code, body := do(e.method, e.path, e.body, "Bearer "+tok); code == http.StatusUnauthorized {
			t.Errorf("%s %s with the token: 401 %s", e.method, e.path, body)
		}
	}
	if code, body := do("GET", "/v1/health", "", ""); code != 200 {
		t.Errorf("GET /v1/health without a token: %d %s", code, body)
	}

	// The CLI takes the token from its configuration.
	bin := binaries(t)
	out, err := exec.Command(filepath.Join(bin, "spate"), "list", "--jobmanager", rest, "-D", "rest.authentication.token-file="+path).CombinedOutput()
	if err != nil {
		t.Errorf("spate list with the token file: %v\n%s", err, out)
	}
	out, err = exec.Command(filepath.Join(bin, "spate"), "list", "--jobmanager", rest).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "authentication required") {
		t.Errorf("spate list without the token: %v\n%s", err, out)
	}

	// A token file readable by others is refused.
	open := filepath.Join(t.TempDir(), "open-token")
	os.WriteFile(open, []byte(tok), 0o644)
	os.Chmod(open, 0o644)
	cmd := exec.Command(filepath.Join(bin, "spate"), withTestTLS(t, []string{"jobmanager", "--rpc-port", "0", "--rest-port", "0", "--host", "127.0.0.1", "-D", "rest.authentication.token-file=" + open})...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "chmod 600") {
		t.Errorf("a JobManager with a world-readable token file: %v\n%s", err, out)
	}
}

// TestJobIsolation runs a victim job, whose workers hold a secret and
// exchange records over the data plane, and then a spy job on one of the
// victim's TaskManagers. The spy's worker, with its own certificate,
// cannot report the victim's tasks nor open its data channels, nor read
// its secret through /proc or its files; the victim runs on; the secret
// is in no REST answer, daemon log or command line; certificate files
// are 0600.
func TestJobIsolation(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: workers run as users of their own only under a root TaskManager (as non-root, see docs/security.md)")
	}
	const secret = "victim-secret-7f3a9c"
	uids := []string{"-D", "taskmanager.worker.uid-range=100000-165535"}
	c := startClusterTM(t, nil, uids, 1)
	// A second TaskManager of two slots, registered after the first: the
	// victim's two subtasks take a slot of each (two workers, a data
	// channel between them), the spy the other slot of the second.
	c.tms = append(c.tms, start(t, append([]string{"taskmanager", "--jobmanager", c.rpc, "--slots", "2", "-D", "taskmanager.resource-id=tmB"}, uids...)...))
	waitFor(t, 20*time.Second, "the second TaskManager", func() bool {
		var tms v1.TaskManagers
		return c.get(t, "/v1/taskmanagers", &tms) == nil && len(tms.TaskManagers) == 2
	})
	envFile := filepath.Join(t.TempDir(), "victim.env")
	if err := os.WriteFile(envFile, []byte("VICTIM_SECRET="+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, victim, err := c.run(t, []string{"--detached", "-p", "2", "--env-file", envFile}, "spy", "victim")
	if err != nil || victim == "" {
		t.Fatalf("submit the victim: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		exec.Command(filepath.Join(binaries(t), "spate"), "cancel", "--jobmanager", c.rest, victim).Run()
	})
	var pids []int
	var addrs []string
	waitFor(t, 30*time.Second, "the victim's two workers to listen on their data ports", func() bool {
		pids, addrs = workersOf(victim), nil
		for _, pid := range pids {
			addrs = append(addrs, listening(t, pid)...)
		}
		return len(pids) == 2 && len(addrs) == 2 && c.job(t, victim).State == v1.JobRunning
	})
	t.Logf("victim %s: workers %v listening on %v", victim, pids, addrs)

	out, spyJob, err := c.run(t, []string{"-p", "1"}, "spy", append([]string{"probe", victim}, addrs...)...)
	t.Logf("spy done")
	if err != nil {
		t.Fatalf("the spy: %v\n%s", err, out)
	}
	var res struct {
		ReportTasks, Heartbeat, Register string
		Data, DataNoCert                 map[string]string
		EnvironLeaks, FilesSeen          []string
		FilesRead, ProbeErrors           []string
		ProcsScanned, OwnUID             int
	}
	found := false
	for _, line := range c.output(spyJob) {
		if js, ok := strings.CutPrefix(line, "SPY-RESULT "); ok {
			if err := json.Unmarshal([]byte(js), &res); err != nil {
				t.Fatalf("spy result %q: %v", js, err)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("no SPY-RESULT in the spy's output: %q", c.output(spyJob))
	}
	t.Logf("spy: %+v", res)
	if len(res.ProbeErrors) > 0 {
		t.Fatalf("the spy could not probe: %v", res.ProbeErrors)
	}
	for what, code := range map[string]string{"ReportTasks for the victim's w0": res.ReportTasks, "WorkerHeartbeat for the victim's w0": res.Heartbeat, "RegisterTaskManager": res.Register} {
		if code != "PermissionDenied" {
			t.Errorf("the spy's %s: %s, want PermissionDenied", what, code)
		}
	}
	for _, a := range addrs {
		if !strings.HasPrefix(res.Data[a], "refused") || !strings.HasPrefix(res.DataNoCert[a], "refused") {
			t.Errorf("the victim's data port %s: with the spy's certificate %q, without one %q; want both refused", a, res.Data[a], res.DataNoCert[a])
		}
	}
	if res.OwnUID == 0 || len(res.EnvironLeaks) > 0 || len(res.FilesRead) > 0 {
		t.Errorf("the spy (uid %d) read the victim's environment in %v and files %v", res.OwnUID, res.EnvironLeaks, res.FilesRead)
	}
	if res.ProcsScanned == 0 {
		t.Error("the spy scanned no process")
	}
	if st := c.job(t, victim).State; st != v1.JobRunning {
		t.Errorf("the victim is %s after the spy, want RUNNING", st)
	}

	// The victim's secret: in its workers' environment only.
	for _, p := range []string{"/v1/jobs/" + victim, "/v1/jobs/overview", "/v1/config", "/v1/taskmanagers", "/v1/jobs/" + victim + "/exceptions", "/v1/overview"} {
		resp, err := http.Get("http://" + c.rest + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), secret) {
			t.Errorf("GET %s holds the secret: %s", p, b)
		}
	}
	for _, d := range append([]*proc{c.jm}, c.tms...) {
		if strings.Contains(d.stdout()+d.stderr(), secret) {
			t.Errorf("a daemon's log holds the secret: %s", strings.Join(d.cmd.Args, " "))
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(b), secret) {
			t.Errorf("process %s has the secret on its command line: %q", e.Name(), b)
		}
	}
	// The victim's certificate files: 0600, its worker's.
	for _, pid := range pids {
		dir := jobDirOf(pid)
		for _, f := range []string{"tls/keystore.pem", "tls/truststore.pem", "tls/peer-ca.pem", "deployment.json"} {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Errorf("worker %d: %v", pid, err)
				continue
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %04o, want 0600", filepath.Join(dir, f), fi.Mode().Perm())
			}
		}
	}
}

// workersOf returns the pids of job's worker processes on this host.
func workersOf(job string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if strings.Contains(jobDirOf(pid), "/"+job+"-") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// jobDirOf returns the $SPATE_JOB_DIR of process pid.
func jobDirOf(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, "SPATE_JOB_DIR="); ok {
			return v
		}
	}
	return ""
}

// listening returns the TCP addresses process pid listens on.
func listening(t *testing.T, pid int) []string {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil {
			if ino, ok := strings.CutPrefix(l, "socket:["); ok {
				inodes[strings.TrimSuffix(ino, "]")] = true
			}
		}
	}
	var addrs []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] {
				continue
			}
			hostPort := strings.Split(fs[1], ":")
			port, _ := strconv.ParseUint(hostPort[1], 16, 16)
			addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		}
		f.Close()
	}
	return addrs
}
