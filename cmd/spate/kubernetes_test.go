package main

// End-to-end tests of the kubernetes-* targets on a real local Kubernetes
// cluster (internal/localkube: etcd, kube-apiserver and
// kube-controller-manager, and a pod runner that runs pods as local
// processes with loopback pod IPs). The test image is a directory: the
// spate binary at /opt/spate/bin/spate and the example programs under
// /opt/spate/usrlib. The Kubernetes binaries are cached after one build
// (10 to 30 minutes cold on 2 cores, see internal/localkube); without them
// these tests skip, but under CI=true. Warm, this file's tests with the
// object, TLS and savepoint ones (-run
// 'TestKubernetes|TestSessionObjects|TestDeployFailures|TestModeObjects')
// take about 80 s without -race on 2 shared cores, a few of them starting
// the shared cluster.

import (
	"bytes"
	"context"
	"fmt"
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

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/localkube"
	"github.com/spate-dev/spate/internal/provider/kubernetes"
)

var (
	kube         localkube.Shared
	kubeRootOnce sync.Once
	kubeRoot     string
	kubeRootErr  error
)

// kubeImage is the test image's name, known to the pod runner.
const kubeImage = "spate:test"

// kubeTest is a namespace of the shared local cluster, with the RBAC of
// deploy/kubernetes, and the CLI's environment to use it.
type kubeTest struct {
	c   *localkube.Cluster
	ns  string
	env []string
}

// startKube returns the shared local cluster with a fresh namespace.
func startKube(t *testing.T) *kubeTest {
	t.Helper()
	bin := binaries(t)
	kubeRootOnce.Do(func() {
		kubeRoot, kubeRootErr = os.MkdirTemp("", "spate-kube-image-")
		if kubeRootErr != nil {
			return
		}
		for name, dest := range map[string]string{"spate": kubernetes.DefaultEntryPath, "wordcount": "/opt/spate/usrlib/wordcount", "multijob": "/opt/spate/usrlib/multijob", "exactlyonce": "/opt/spate/usrlib/exactlyonce"} {
			p := filepath.Join(kubeRoot, dest)
			if kubeRootErr = os.MkdirAll(filepath.Dir(p), 0o755); kubeRootErr != nil {
				return
			}
			if kubeRootErr = os.Symlink(filepath.Join(bin, name), p); kubeRootErr != nil {
				return
			}
		}
		// A program whose job's workers never get ready, to interrupt.
		if out, err := exec.Command("go", "build", "-o", filepath.Join(kubeRoot, "opt/spate/usrlib/hang"), "./testdata/hang").CombinedOutput(); err != nil {
			kubeRootErr = fmt.Errorf("build hang: %v\n%s", err, out)
		}
	})
	if kubeRootErr != nil {
		t.Fatal(kubeRootErr)
	}
	c := kube.Get(t, localkube.Options{Images: map[string]string{kubeImage: kubeRoot}})
	ns := strings.Trim(strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")), "-")
	if len(ns) > 40 {
		ns = strings.Trim(ns[:40], "-")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	k := &kubeTest{c: c, ns: ns, env: []string{"KUBECONFIG=" + c.Kubeconfig, "HOME=" + t.TempDir(), "SPATE_HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(c.Dir, "pods", ns, "*", "main.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b)
			}
		}
		c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	k.apply(t, filepath.Join("..", "..", "deploy", "kubernetes", "rbac.yaml"), nil)
	return k
}

// apply creates the ServiceAccount, Role and RoleBinding of an RBAC file;
// edit may change the Role first.
func (k *kubeTest) apply(t *testing.T, path string, edit func(*rbacv1.Role)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kc := k.c.Client
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		if err := utilyaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "ServiceAccount":
			var o corev1.ServiceAccount
			if err = utilyaml.Unmarshal(doc, &o); err == nil {
				_, err = kc.CoreV1().ServiceAccounts(k.ns).Create(ctx, &o, metav1.CreateOptions{})
			}
		case "Role":
			var o rbacv1.Role
			if err = utilyaml.Unmarshal(doc, &o); err == nil {
				if edit != nil {
					edit(&o)
				}
				_, err = kc.RbacV1().Roles(k.ns).Create(ctx, &o, metav1.CreateOptions{})
			}
		case "RoleBinding":
			var o rbacv1.RoleBinding
			if err = utilyaml.Unmarshal(doc, &o); err == nil {
				_, err = kc.RbacV1().RoleBindings(k.ns).Create(ctx, &o, metav1.CreateOptions{})
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// flags are the -D entries of the namespace's clusters.
func (k *kubeTest) flags(kv ...string) []string {
	args := []string{"-D", "kubernetes.namespace=" + k.ns, "-D", "kubernetes.container.image=" + kubeImage,
		"-D", "kubernetes.service-account=spate", "-D", "kubernetes.rest-service.exposed.type=LoadBalancer",
		"-D", "kubernetes.taskmanager.cpu=0.5", "-D", "kubernetes.jobmanager.cpu=0.5"}
	for _, e := range kv {
		args = append(args, "-D", e)
	}
	return args
}

// spate runs the CLI with the test's environment.
func (k *kubeTest) spate(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(binaries(t), "spate"), args...)
	cmd.Env = append(os.Environ(), k.env...)
	return cmd
}

// left lists the namespace's objects with Spate's label.
func (k *kubeTest) left(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: kubernetes.LabelType + "=" + kubernetes.TypeValue}
	var left []string
	kc := k.c.Client
	if l, err := kc.AppsV1().Deployments(k.ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			left = append(left, "deployment/"+o.Name)
		}
	}
	if l, err := kc.AppsV1().ReplicaSets(k.ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			left = append(left, "replicaset/"+o.Name)
		}
	}
	if l, err := kc.CoreV1().Pods(k.ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			left = append(left, "pod/"+o.Name)
		}
	}
	if l, err := kc.CoreV1().Services(k.ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			left = append(left, "service/"+o.Name)
		}
	}
	if l, err := kc.CoreV1().ConfigMaps(k.ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			left = append(left, "configmap/"+o.Name)
		}
	}
	if l, err := kc.CoreV1().Secrets(k.ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			left = append(left, "secret/"+o.Name)
		}
	}
	return left
}

// nothingLeft fails the test if any object with Spate's label is left in
// the namespace after wait.
func (k *kubeTest) nothingLeft(t *testing.T, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		left := k.left(t)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left in namespace %s after %v: %v", k.ns, wait, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var perJobClusterLine = regexp.MustCompile(`Per-job cluster (spate-[0-9a-f]{8}) for`)

// firstOutput runs cmd, returning its output, how long it took to print
// its first job output line and how long to end.
func firstOutput(t *testing.T, cmd *exec.Cmd) (out string, first, total time.Duration, err error) {
	t.Helper()
	start := time.Now()
	b := startBackground(t, cmd)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err = <-b.done:
			total = time.Since(start)
			if first == 0 {
				first = total
			}
			return b.text(), first, total, err
		case <-tick.C:
			if first == 0 && strings.Contains(b.text(), "\n[job ") {
				first = time.Since(start)
			}
		}
	}
}

// TestKubernetesPerJob runs word count on kubernetes-per-job: its output
// equals the local executor's and its cluster is gone when the client
// returns; a program with four jobs gets four clusters; detached, the
// JobManagers delete their clusters; on Ctrl-C the client does.
func TestKubernetesPerJob(t *testing.T) {
	k := startKube(t)
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append(append([]string{"run", "--target", "kubernetes-per-job", "-p", "2"}, k.flags()...), filepath.Join(bin, "wordcount"), wordcountInput(t))
	out, first, total, err := firstOutput(t, k.spate(ctx, t, args...))
	if err != nil {
		t.Fatalf("spate run: %v\n%s", err, out)
	}
	if want := local(t, "wordcount", "-p", "2", wordcountInput(t)); !slices.Equal(untagged(out), want) {
		t.Fatalf("kubernetes-per-job output differs from local:\n%s", out)
	}
	if ids := perJobClusterLine.FindAllStringSubmatch(out, -1); len(ids) != 1 {
		t.Errorf("clusters named: %v\n%s", ids, out)
	}
	if left := k.left(t); len(left) > 0 {
		t.Errorf("left when the client returned: %v", left)
	}
	t.Logf("kubernetes-per-job word count: first output record after %v, cluster gone after %v", first.Round(time.Millisecond), total.Round(time.Millisecond))

	t.Run("two jobs, two clusters", func(t *testing.T) {
		args := append(append([]string{"run", "--target", "kubernetes-per-job"}, k.flags()...), filepath.Join(bin, "multijob"))
		out, err := k.spate(ctx, t, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("spate run: %v\n%s", err, out)
		}
		ids := map[string]bool{}
		for _, m := range perJobClusterLine.FindAllStringSubmatch(string(out), -1) {
			ids[m[1]] = true
		}
		if len(ids) != 4 {
			t.Errorf("clusters of multijob's 4 jobs: %v\n%s", ids, out)
		}
		lines := untagged(string(out))
		for _, job := range []string{"first", "second", "third", "fourth"} {
			if n := countPrefix(lines, job+" "); n != 5 {
				t.Errorf("job %s printed %d lines, want 5:\n%s", job, n, out)
			}
		}
		k.nothingLeft(t, 0)
	})

	t.Run("failing", func(t *testing.T) {
		args := append(append([]string{"run", "--target", "kubernetes-per-job"}, k.flags()...), filepath.Join(bin, "wordcount"), "/nonexistent/input.txt")
		out, err := k.spate(ctx, t, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "no such file or directory") {
			t.Fatalf("a failing job: %v\n%s", err, out)
		}
		k.nothingLeft(t, 0)
	})

	t.Run("detached", func(t *testing.T) {
		args := append(append([]string{"run", "--target", "kubernetes-per-job", "--detached"}, k.flags()...), filepath.Join(bin, "wordcount"), wordcountInput(t))
		out, err := k.spate(ctx, t, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("spate run --detached: %v\n%s", err, out)
		}
		if len(perJobClusterLine.FindAllStringSubmatch(string(out), -1)) != 1 {
			t.Errorf("no cluster named:\n%s", out)
		}
		// The JobManager deletes its own Deployment after the job.
		k.nothingLeft(t, time.Minute)
	})

	t.Run("interrupted", func(t *testing.T) {
		hang := filepath.Join(kubeRoot, "opt/spate/usrlib/hang")
		args := append(append([]string{"run", "--target", "kubernetes-per-job"}, k.flags()...), hang)
		b := startBackground(t, k.spate(ctx, t, args...))
		waitFor(t, time.Minute, "the job to be submitted", func() bool { return regexpJobID.MatchString(b.text()) })
		b.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-b.done:
		case <-time.After(time.Minute):
			b.cmd.Process.Kill()
			t.Fatalf("the interrupted client did not return:\n%s", b.text())
		}
		if left := k.left(t); len(left) > 0 {
			t.Errorf("left when the interrupted client returned: %v\n%s", left, b.text())
		}
	})
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestKubernetesApplication runs word count, a program in the image, on
// kubernetes-application: its output equals the local executor's and the
// cluster is gone when the client returns; an application runs two jobs
// and two more at once; detached, the JobManager deletes its cluster.
func TestKubernetesApplication(t *testing.T) {
	k := startKube(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append(append([]string{"run-application", "--target", "kubernetes-application"}, k.flags()...),
		"local:///opt/spate/usrlib/wordcount", "-p", "2", wordcountInput(t))
	out, first, total, err := firstOutput(t, k.spate(ctx, t, args...))
	if err != nil {
		t.Fatalf("spate run-application: %v\n%s", err, out)
	}
	if want := local(t, "wordcount", "-p", "2", wordcountInput(t)); !slices.Equal(untagged(out), want) {
		t.Fatalf("kubernetes-application output differs from local:\n%s", out)
	}
	if left := k.left(t); len(left) > 0 {
		t.Errorf("left when the client returned: %v", left)
	}
	t.Logf("kubernetes-application word count: first output record after %v, cluster gone after %v", first.Round(time.Millisecond), total.Round(time.Millisecond))

	t.Run("four jobs", func(t *testing.T) {
		args := append(append([]string{"run-application", "--target", "kubernetes-application"}, k.flags()...), "local:///opt/spate/usrlib/multijob")
		out, err := k.spate(ctx, t, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("spate run-application: %v\n%s", err, out)
		}
		lines := untagged(string(out))
		for _, job := range []string{"first", "second", "third", "fourth"} {
			if n := countPrefix(lines, job+" "); n != 5 {
				t.Errorf("job %s printed %d lines, want 5:\n%s", job, n, out)
			}
		}
		k.nothingLeft(t, 0)
	})

	t.Run("failing", func(t *testing.T) {
		args := append(append([]string{"run-application", "--target", "kubernetes-application"}, k.flags()...), "local:///opt/spate/usrlib/multijob", "-fail")
		out, err := k.spate(ctx, t, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "the application failed") {
			t.Fatalf("a failing application: %v\n%s", err, out)
		}
		k.nothingLeft(t, 0)
	})

	t.Run("interrupted", func(t *testing.T) {
		args := append(append([]string{"run-application", "--target", "kubernetes-application"}, k.flags()...), "local:///opt/spate/usrlib/hang")
		b := startBackground(t, k.spate(ctx, t, args...))
		waitFor(t, time.Minute, "the application's TaskManager pod", func() bool {
			l, err := k.c.Client.CoreV1().Pods(k.ns).List(ctx, metav1.ListOptions{LabelSelector: "component=taskmanager"})
			return err == nil && len(l.Items) > 0
		})
		b.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-b.done:
		case <-time.After(time.Minute):
			b.cmd.Process.Kill()
			t.Fatalf("the interrupted client did not return:\n%s", b.text())
		}
		if left := k.left(t); len(left) > 0 {
			t.Errorf("left when the interrupted client returned: %v\n%s", left, b.text())
		}
	})

	t.Run("detached", func(t *testing.T) {
		args := append(append([]string{"run-application", "--target", "kubernetes-application", "--detached"}, k.flags()...),
			"local:///opt/spate/usrlib/wordcount", wordcountInput(t))
		out, err := k.spate(ctx, t, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("spate run-application --detached: %v\n%s", err, out)
		}
		k.nothingLeft(t, time.Minute)
	})
}

var sessionStartedLine = regexp.MustCompile(`Session (\S+) started in namespace \S+: REST http://(\S+)`)

// TestKubernetesSession starts a session with no TaskManager: two jobs at
// once, each with its own secrets, get TaskManager pods on demand, see
// only their own environment, and the pods go once idle; word count's
// output equals the local executor's; session list finds the session and
// session stop leaves nothing. It reports a warm session's time from
// spate run to the job RUNNING.
func TestKubernetesSession(t *testing.T) {
	k := startKube(t)
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"session", "start", "--target", "kubernetes-session", "--taskmanagers", "0", "--slots", "4"},
		k.flags("kubernetes.cluster-id=sess", "resourcemanager.taskmanager-timeout=2s")...)
	out, err := k.spate(ctx, t, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, out)
	}
	m := sessionStartedLine.FindStringSubmatch(string(out))
	if m == nil || m[1] != "sess" {
		t.Fatalf("session start did not name the session:\n%s", out)
	}
	rest := m[2]
	tmPods := func() int {
		l, err := k.c.Client.CoreV1().Pods(k.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=sess,component=taskmanager"})
		if err != nil {
			return -1
		}
		return len(l.Items)
	}
	if n := tmPods(); n != 0 {
		t.Errorf("%d TaskManager pods before any job, want 0", n)
	}

	list, err := k.spate(ctx, t, append([]string{"session", "list"}, k.flags()...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(list), "sess") || !strings.Contains(string(list), rest) {
		t.Errorf("session list: %v\n%s", err, list)
	}

	envFile := filepath.Join(t.TempDir(), "a.env")
	if err := os.WriteFile(envFile, []byte("PROBE_SECRET=\"a-secret, with a comma\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	submit := func(extra ...string) []string {
		return append(append([]string{"run", "--target", "kubernetes-session", "-p", "2"}, k.flags("kubernetes.cluster-id=sess")...), extra...)
	}
	submissions := map[string][]string{
		"a": submit("--env-file", envFile, "-D", "containerized.taskmanager.env.PROBE_TOKEN=token-a", "-D", "app.greeting=hello, a", filepath.Join(bin, "envprobe")),
		"b": submit("-D", "app.greeting=hello, b", filepath.Join(bin, "envprobe")),
	}
	var mu sync.Mutex
	ids := map[string]string{}
	var wg sync.WaitGroup
	for name, args := range submissions {
		wg.Go(func() {
			out, err := k.spate(ctx, t, args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "is FINISHED") {
				t.Errorf("job %s: %v\n%s", name, err, out)
				return
			}
			mu.Lock()
			ids[name] = regexpJobID.FindStringSubmatch(string(out))[1]
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := map[string]string{
		"a": `SECRET="a-secret, with a comma" TOKEN="token-a" greeting="hello, a"`,
		"b": `SECRET="" TOKEN="" greeting="hello, b"`,
	}
	for name, id := range ids {
		out, err := k.spate(ctx, t, "logs", "-m", rest, id).CombinedOutput()
		if err != nil {
			t.Fatalf("spate logs %s: %v\n%s", id, err, out)
		}
		n, seen, _ := probes(t, string(out))
		if n != 4 || len(seen) != 1 || !seen[want[name]] {
			t.Errorf("job %s's operators saw %d records with environments %v, want 4 with %s:\n%s", name, n, seen, want[name], out)
		}
	}
	// Idle TaskManager pods go after resourcemanager.taskmanager-timeout.
	waitFor(t, 30*time.Second, "the idle TaskManager pods to be deleted", func() bool { return tmPods() == 0 })

	// Word count; then, warm (a TaskManager is up), the time from spate
	// run to the job RUNNING.
	out, err = k.spate(ctx, t, submit(filepath.Join(bin, "wordcount"), wordcountInput(t))...).CombinedOutput()
	if err != nil {
		t.Fatalf("word count on the session: %v\n%s", err, out)
	}
	id := regexpJobID.FindStringSubmatch(string(out))[1]
	logs, err := k.spate(ctx, t, "logs", "-m", rest, id).CombinedOutput()
	if err != nil {
		t.Fatalf("spate logs: %v\n%s", err, logs)
	}
	if want := local(t, "wordcount", "-p", "2", wordcountInput(t)); !slices.Equal(untagged(string(logs)), want) {
		t.Fatalf("session word count differs from local:\n%s", logs)
	}
	rc, err := client.New(rest)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b := startBackground(t, k.spate(ctx, t, submit(filepath.Join(bin, "wordcount"), wordcountInput(t))...))
	var running time.Duration
	for running == 0 {
		if m := regexpJobID.FindStringSubmatch(b.text()); m != nil {
			if d, err := rc.Job(ctx, m[1]); err == nil && (d.State == v1.JobRunning || v1.TerminalJobStatus(d.State)) {
				running = time.Since(start)
			}
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("the job did not run:\n%s", b.text())
		}
		time.Sleep(2 * time.Millisecond)
	}
	<-b.done
	t.Logf("warm kubernetes-session: spate run to RUNNING in %v", running.Round(time.Millisecond))

	out, err = k.spate(ctx, t, append([]string{"session", "stop"}, append(k.flags(), "sess")...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("session stop: %v\n%s", err, out)
	}
	if left := k.left(t); len(left) > 0 {
		t.Errorf("left after session stop: %v", left)
	}
}

// TestKubernetesJobErrors: a job whose TaskManager pods cannot be created
// (RBAC forbids it, the template is invalid) or scheduled fails with an
// error naming the pod and the cause, without waiting for
// slot.request.timeout where the cause is final.
func TestKubernetesJobErrors(t *testing.T) {
	k := startKube(t)
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	invalid := filepath.Join(t.TempDir(), "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("apiVersion: v1\nkind: Pod\nspec:\n  volumes:\n    - name: Not_A_DNS_Label\n      emptyDir: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		conf []string
		want []string
	}{
		{"forbidden", []string{"kubernetes.service-account=limited"},
			[]string{"create TaskManager pod " + k.ns + "/forbidden-taskmanager-1-", "forbidden", "cannot create resource \"pods\""}},
		{"invalid template", []string{"kubernetes.pod-template-file.taskmanager=" + invalid},
			[]string{"create TaskManager pod " + k.ns + "/invalid-template-taskmanager-1-", "Not_A_DNS_Label", "Invalid value"}},
		{"unschedulable", []string{"kubernetes.taskmanager.cpu=1000", "slot.request.timeout=3s"},
			[]string{"slot.request.timeout", "is not scheduled: Unschedulable", "Insufficient cpu"}},
		// Last: the quota is the namespace's.
		{"quota", nil,
			[]string{"create TaskManager pod " + k.ns + "/quota-taskmanager-1-", "exceeded quota", "a ResourceQuota of the namespace refuses it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			switch tc.name {
			case "forbidden":
				// Its Role may do all but create pods.
				createLimited(t, k)
			case "quota":
				// Room for the JobManager's pod only.
				createQuota(t, k, "1")
			}
			conf := append([]string{"kubernetes.cluster-id=" + id}, tc.conf...)
			args := append(append([]string{"session", "start", "--target", "kubernetes-session", "--taskmanagers", "0"}, k.flags()...), flagsOf(conf)...)
			if out, err := k.spate(ctx, t, args...).CombinedOutput(); err != nil {
				t.Fatalf("session start: %v\n%s", err, out)
			}
			defer k.spate(ctx, t, append([]string{"session", "stop"}, append(k.flags(), id)...)...).Run()
			start := time.Now()
			run := append(append([]string{"run", "--target", "kubernetes-session"}, k.flags("kubernetes.cluster-id="+id)...), filepath.Join(bin, "wordcount"), wordcountInput(t))
			out, err := k.spate(ctx, t, run...).CombinedOutput()
			if err == nil {
				t.Fatalf("the job ran:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("job error does not contain %q:\n%s", w, out)
				}
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("the job took %v to fail", d)
			}
		})
	}
}

func flagsOf(entries []string) []string {
	var args []string
	for _, e := range entries {
		args = append(args, "-D", e)
	}
	return args
}

// createLimited creates the service account "limited" bound to a copy of
// the JobManager's Role without pods create.
func createLimited(t *testing.T, k *kubeTest) {
	t.Helper()
	ctx := context.Background()
	kc := k.c.Client
	if _, err := kc.CoreV1().ServiceAccounts(k.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "limited"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role, err := kc.RbacV1().Roles(k.ns).Get(ctx, "spate-jobmanager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	limited := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "limited"}, Rules: role.DeepCopy().Rules}
	for i, r := range limited.Rules {
		if slices.Contains(r.Resources, "pods") {
			limited.Rules[i].Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == "create" })
		}
	}
	if _, err := kc.RbacV1().Roles(k.ns).Create(ctx, limited, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "limited"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "limited"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "limited"}}}
	if _, err := kc.RbacV1().RoleBindings(k.ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createQuota limits the namespace to pods pods, and waits until the
// quota controller has taken it up.
func createQuota(t *testing.T, k *kubeTest, pods string) {
	t.Helper()
	ctx := context.Background()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: apiresource.MustParse(pods)}}}
	if _, err := k.c.Client.CoreV1().ResourceQuotas(k.ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the quota's status", func() bool {
		q, err := k.c.Client.CoreV1().ResourceQuotas(k.ns).Get(ctx, "pods", metav1.GetOptions{})
		return err == nil && len(q.Status.Hard) > 0
	})
}
