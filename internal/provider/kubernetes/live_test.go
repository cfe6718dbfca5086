package kubernetes

// Tests against a real kube-apiserver and kube-controller-manager
// (internal/localkube), with the JobManager and TaskManagers running the
// spate binary in pods (local processes of localkube's pod runner, with
// loopback pod IPs). The Kubernetes binaries are built once and cached
// (see internal/localkube: a cold build takes 10 to 20 minutes on 2 cores;
// cached, a cluster starts in about 3 s); without them these tests skip,
// but under CI=true, where .ci/run builds them first.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	authv1 "k8s.io/api/authentication/v1"

	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/localkube"
	"github.com/spate-dev/spate/internal/provider"
)

var (
	kube localkube.Shared
	// imageRoot is the test image's file system: the spate binary at
	// DefaultEntryPath.
	imageRoot string
)

// testImage is the image localkube's runner knows; any other is an image
// that cannot be pulled.
const testImage = "spate:test"

func TestMain(m *testing.M) {
	code := func() int {
		flag.Parse()
		if !testing.Short() {
			dir, err := os.MkdirTemp("", "spate-kube-image-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			imageRoot = dir
			bin := filepath.Join(dir, DefaultEntryPath)
			if out, err := exec.Command("go", "build", "-o", bin, "github.com/spate-dev/spate/cmd/spate").CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build spate: %v\n%s", err, out)
				return 1
			}
		}
		code := m.Run()
		kube.Close()
		return code
	}()
	os.Exit(code)
}

// live returns the shared local cluster and a fresh namespace with the
// RBAC of deploy/kubernetes applied.
func live(t *testing.T) (*localkube.Cluster, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a local Kubernetes cluster")
	}
	c := kube.Get(t, localkube.Options{Images: map[string]string{testImage: imageRoot}})
	ns := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(ns) > 50 {
		ns = ns[:50]
	}
	ns = strings.Trim(ns, "-")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			// The pods' output, for the reason.
			logs, _ := filepath.Glob(filepath.Join(c.Dir, "pods", ns, "*", "main.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b)
			}
		}
		c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	applyRBAC(t, c.Client, ns, filepath.Join("..", "..", "..", "deploy", "kubernetes", "rbac.yaml"))
	return c, ns
}

// applyRBAC creates the ServiceAccount, Role and RoleBinding of a file in
// namespace ns.
func applyRBAC(t *testing.T, kc kubernetes.Interface, ns, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		if err := utilyaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "ServiceAccount":
			var o corev1.ServiceAccount
			must(t, utilyaml.Unmarshal(doc, &o))
			_, err = kc.CoreV1().ServiceAccounts(ns).Create(ctx, &o, metav1.CreateOptions{})
		case "Role":
			var o rbacv1.Role
			must(t, utilyaml.Unmarshal(doc, &o))
			_, err = kc.RbacV1().Roles(ns).Create(ctx, &o, metav1.CreateOptions{})
		case "RoleBinding":
			var o rbacv1.RoleBinding
			must(t, utilyaml.Unmarshal(doc, &o))
			_, err = kc.RbacV1().RoleBindings(ns).Create(ctx, &o, metav1.CreateOptions{})
		default:
			t.Fatalf("%s: unexpected kind %q", path, meta.Kind)
		}
		must(t, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// baseConfig is the configuration of a test cluster in namespace ns.
func baseConfig(ns, id string, kv ...string) map[string]string {
	m := map[string]string{
		KeyClusterID: id, KeyNamespace: ns, KeyImage: testImage, KeyServiceAccount: "spate",
		KeyRESTExposedType:  "LoadBalancer",
		KeyJobManagerCPU:    "0.25",
		KeyJobManagerMemory: "256m", KeyTaskManagerCPU: "0.5", KeyTaskManagerMemory: "512m",
		"heartbeat.interval": "1s", "heartbeat.timeout": "60s",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// poll waits until cond holds, failing the test after timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSessionObjects deploys a session with one kept TaskManager and pod
// templates, and checks every object the client and the JobManager
// created as the API server has it: names, labels, owner references,
// resources, environment, arguments and the merged templates. Then it
// deletes the TaskManager pod: the JobManager notices at once (not after
// the 60 s heartbeat timeout) and creates a replacement. Stopping the
// cluster leaves nothing with its label.
func TestSessionObjects(t *testing.T) {
	c, ns := live(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := "objects"
	conf := baseConfig(ns, id,
		KeyJobManagerTemplate, filepath.Join("testdata", "live-jobmanager-template.yaml"),
		KeyTaskManagerTemplate, filepath.Join("testdata", "taskmanager-template.yaml"),
		"taskmanager.numberOfTaskSlots", "2")
	cl, err := Deployer{Client: c.Client}.Deploy(ctx, provider.ClusterSpec{Mode: provider.Session, Config: conf, TaskManagers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop(context.Background())
	if cl.ID() != id {
		t.Errorf("cluster id = %q, want %q", cl.ID(), id)
	}
	kc := c.Client
	wantLabels := func(component string) map[string]string { return Labels(id, component) }

	dep, err := kc.AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{})
	must(t, err)
	if !equalMaps(dep.Labels, wantLabels("jobmanager")) || *dep.Spec.Replicas != 1 || dep.Annotations[AnnotationMode] != ModeSession {
		t.Errorf("Deployment %s: labels %v, replicas %d, annotations %v", dep.Name, dep.Labels, *dep.Spec.Replicas, dep.Annotations)
	}
	pod := dep.Spec.Template
	if pod.Labels["team"] != "streaming" || pod.Labels[LabelApp] != id || pod.Labels[LabelType] != TypeValue || pod.Labels[LabelComponent] != "jobmanager" {
		t.Errorf("JobManager pod labels = %v: want the template's and Spate's", pod.Labels)
	}
	if names := containerNames(pod.Spec.Containers); !slices.Equal(names, []string{MainContainer, "log-shipper"}) {
		t.Errorf("JobManager containers = %v, want spate-main and the template's sidecar", names)
	}
	main := pod.Spec.Containers[0]
	wantArgs := JobManagerArgs(ModeSession, "--taskmanagers", "1")
	if !slices.Equal(main.Args, wantArgs) || !slices.Equal(main.Command, []string{DefaultEntryPath}) || main.Image != testImage {
		t.Errorf("JobManager container: command %v args %v image %s, want %v %v %s", main.Command, main.Args, main.Image, DefaultEntryPath, wantArgs, testImage)
	}
	if q := main.Resources.Limits[corev1.ResourceCPU]; q.String() != "250m" {
		t.Errorf("JobManager cpu limit = %s, want 250m", q.String())
	}
	if q := main.Resources.Requests[corev1.ResourceMemory]; q.String() != "256Mi" {
		t.Errorf("JobManager memory request = %s, want 256Mi", q.String())
	}
	if _, ok := main.Resources.Limits[corev1.ResourceEphemeralStorage]; !ok {
		t.Errorf("JobManager limits %v lost the template's ephemeral-storage", main.Resources.Limits)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range main.Env {
		env[e.Name] = e
	}
	if env["REGION"].Value != "eu-west-1" || env["SPATE_CONF_DIR"].Value != ConfDir || env[EnvPodIP].ValueFrom == nil || env[EnvPodIP].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("JobManager env = %v", main.Env)
	}
	if pod.Spec.ServiceAccountName != "spate" || pod.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("JobManager pod: service account %q, restart policy %s", pod.Spec.ServiceAccountName, pod.Spec.RestartPolicy)
	}
	if vols := volumeNames(pod.Spec.Volumes); !slices.Equal(vols, []string{"logs", configVolume}) {
		t.Errorf("JobManager volumes = %v", vols)
	}
	owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: id, UID: dep.UID}
	ownedByDeployment := func(what string, refs []metav1.OwnerReference) {
		t.Helper()
		if len(refs) != 1 || refs[0].UID != owner.UID || refs[0].Kind != "Deployment" || refs[0].Name != id {
			t.Errorf("%s: owner references %v, want the Deployment %s (uid %s)", what, refs, id, dep.UID)
		}
	}
	headless, err := kc.CoreV1().Services(ns).Get(ctx, id, metav1.GetOptions{})
	must(t, err)
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !equalMaps(headless.Labels, wantLabels("jobmanager")) || headless.Spec.Ports[0].Port != RPCPort {
		t.Errorf("headless Service: clusterIP %q labels %v ports %v", headless.Spec.ClusterIP, headless.Labels, headless.Spec.Ports)
	}
	ownedByDeployment("Service "+id, headless.OwnerReferences)
	rest, err := kc.CoreV1().Services(ns).Get(ctx, id+"-rest", metav1.GetOptions{})
	must(t, err)
	if rest.Spec.Type != corev1.ServiceTypeLoadBalancer || rest.Spec.Ports[0].Port != RESTPort || !equalMaps(rest.Labels, wantLabels("jobmanager")) {
		t.Errorf("REST Service: type %s ports %v labels %v", rest.Spec.Type, rest.Spec.Ports, rest.Labels)
	}
	ownedByDeployment("Service "+id+"-rest", rest.OwnerReferences)
	cm, err := kc.CoreV1().ConfigMaps(ns).Get(ctx, "spate-config-"+id, metav1.GetOptions{})
	must(t, err)
	ownedByDeployment("ConfigMap", cm.OwnerReferences)
	if !equalMaps(cm.Labels, wantLabels("jobmanager")) || !strings.Contains(cm.Data[ConfigFile], "taskmanager.numberOfTaskSlots: \"2\"") || cm.Data[TaskManagerTemplateFile] == "" {
		t.Errorf("ConfigMap: labels %v data %v", cm.Labels, cm.Data)
	}

	// The kept TaskManager, created by the JobManager.
	tmName := TaskManagerPodName(id, 1, 1)
	var tm *corev1.Pod
	poll(t, time.Minute, "TaskManager pod "+tmName, func() bool {
		tm, err = kc.CoreV1().Pods(ns).Get(ctx, tmName, metav1.GetOptions{})
		return err == nil
	})
	ownedByDeployment("TaskManager pod", tm.OwnerReferences)
	if !equalMaps(tm.Labels, map[string]string{LabelType: TypeValue, LabelApp: id, LabelComponent: "taskmanager", "team": "streaming"}) {
		t.Errorf("TaskManager labels = %v", tm.Labels)
	}
	if tm.Spec.RestartPolicy != corev1.RestartPolicyNever || tm.Spec.ServiceAccountName != "spate" {
		t.Errorf("TaskManager pod: restart policy %s, service account %s", tm.Spec.RestartPolicy, tm.Spec.ServiceAccountName)
	}
	jmPods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: ClusterSelector(id) + ",component=jobmanager"})
	must(t, err)
	if len(jmPods.Items) != 1 {
		t.Fatalf("JobManager pods: %d", len(jmPods.Items))
	}
	jmIP := jmPods.Items[0].Status.PodIP
	wantTMArgs := TaskManagerArgs(provider.TaskManagerSpec{ID: "taskmanager-1", JobManager: fmt.Sprintf("%s:%d", jmIP, RPCPort), Slots: 2})
	tmMain := tm.Spec.Containers[0]
	if !slices.Equal(tmMain.Args, wantTMArgs) || tmMain.Name != MainContainer {
		t.Errorf("TaskManager %s args = %v, want %v", tmMain.Name, tmMain.Args, wantTMArgs)
	}
	if q := tmMain.Resources.Limits[corev1.ResourceMemory]; q.String() != "512Mi" {
		t.Errorf("TaskManager memory limit = %s, want 512Mi", q.String())
	}
	if vols := volumeNames(tm.Spec.Volumes); !slices.Equal(vols, []string{"scratch", configVolume}) {
		t.Errorf("TaskManager volumes = %v", vols)
	}

	rc, err := client.New(cl.REST())
	must(t, err)
	registered := func(want string) func() bool {
		return func() bool {
			tms, err := rc.TaskManagers(ctx)
			if err != nil {
				return false
			}
			var ids []string
			for _, tm := range tms.TaskManagers {
				ids = append(ids, tm.ID)
			}
			return strings.Join(ids, ",") == want
		}
	}
	poll(t, time.Minute, "the TaskManager to register", registered("tm-1"))

	// A deleted TaskManager pod is noticed through the watch, and the
	// session's kept TaskManager replaced.
	deleted := time.Now()
	must(t, kc.CoreV1().Pods(ns).Delete(ctx, tmName, metav1.DeleteOptions{}))
	poll(t, 20*time.Second, "the lost TaskManager to be replaced", registered("tm-2"))
	if since := time.Since(deleted); since > 30*time.Second {
		t.Errorf("the deleted TaskManager was replaced after %v: not through the watch", since)
	}
	if _, err := kc.CoreV1().Pods(ns).Get(ctx, TaskManagerPodName(id, 1, 2), metav1.GetOptions{}); err != nil {
		t.Errorf("replacement pod: %v", err)
	}

	// Session list finds it by label.
	sessions, err := Deployer{Client: kc, Config: map[string]string{KeyNamespace: ns}}.Sessions(ctx, ModeSession)
	must(t, err)
	if len(sessions) != 1 || sessions[0].ID != id || sessions[0].REST != cl.REST() {
		t.Errorf("sessions = %+v, want %s at %s", sessions, id, cl.REST())
	}

	// Stopping it (as spate session stop) leaves nothing.
	must(t, Deployer{Client: kc, Config: map[string]string{KeyNamespace: ns}}.Kill(ctx, id))
	left, err := Remaining(ctx, kc, ns, id)
	if err != nil || len(left) > 0 {
		t.Errorf("left after Kill: %v, %v", left, err)
	}
	select {
	case <-cl.Done():
	case <-time.After(10 * time.Second):
		t.Error("Done not closed once the cluster is gone")
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func containerNames(cs []corev1.Container) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

// volumeNames are the names of vs but the service account token's, which
// the API server's admission adds.
func volumeNames(vs []corev1.Volume) []string {
	var names []string
	for _, v := range vs {
		if strings.HasPrefix(v.Name, "kube-api-access-") {
			continue
		}
		names = append(names, v.Name)
	}
	return names
}

// TestDeployFailures: a cluster that cannot start fails Deploy with an
// error naming the object and the cause, within the wait, and leaves
// nothing behind.
func TestDeployFailures(t *testing.T) {
	c, ns := live(t)
	// A user without any right in the namespace.
	ctx := context.Background()
	_, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}}, metav1.CreateOptions{})
	must(t, err)
	tok, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "nobody", &authv1.TokenRequest{}, metav1.CreateOptions{})
	must(t, err)
	nobody, err := kubernetes.NewForConfig(&rest.Config{Host: c.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.CAFile}})
	must(t, err)

	invalid := filepath.Join(t.TempDir(), "invalid.yaml")
	must(t, os.WriteFile(invalid, []byte("apiVersion: v1\nkind: Pod\nspec:\n  volumes:\n    - name: Not_A_DNS_Label\n      emptyDir: {}\n"), 0o644))
	for _, tc := range []struct {
		name   string
		client kubernetes.Interface
		conf   map[string]string
		want   []string
	}{
		{"forbidden", nobody, baseConfig(ns, "forbidden"),
			[]string{"create Deployment " + ns + "/forbidden", "forbidden", "RBAC forbids it"}},
		{"invalid template", c.Client, baseConfig(ns, "invalid", KeyJobManagerTemplate, invalid),
			[]string{"create Deployment " + ns + "/invalid", "Not_A_DNS_Label", "Invalid value"}},
		{"image cannot be pulled", c.Client, baseConfig(ns, "nopull", KeyImage, "registry.invalid/nope:1"),
			[]string{"the JobManager pod nopull-", "ErrImagePull", `image "registry.invalid/nope:1"`}},
		{"unschedulable", c.Client, baseConfig(ns, "toobig", KeyJobManagerCPU, "1000"),
			[]string{"did not start", "not scheduled: Unschedulable", "Insufficient cpu"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err := Deployer{Client: tc.client}.Deploy(ctx, provider.ClusterSpec{Mode: provider.Session, Config: tc.conf})
			if err == nil {
				t.Fatal("Deploy succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Deploy error = %v\nwant it to contain %q", err, w)
				}
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("Deploy took %v to fail", d)
			}
			left, err := Remaining(context.Background(), c.Client, ns, tc.conf[KeyClusterID])
			if err != nil || len(left) > 0 {
				t.Errorf("left after the failed Deploy: %v, %v", left, err)
			}
		})
	}
	// An application's program must be in the image.
	if _, err := (Deployer{Client: c.Client}).Deploy(ctx, provider.ClusterSpec{Mode: provider.Application, Config: baseConfig(ns, "app"), Artifact: "/host/path"}); err == nil || !strings.Contains(err.Error(), "local:///path/in/image") {
		t.Errorf("application with a host path: %v", err)
	}
}

// TestModeObjects deploys a per-job and an application cluster, attached
// and detached, and checks what differs by mode in their objects: the
// JobManager's arguments, its environment, the mode annotation and the
// configuration; then deletes them.
func TestModeObjects(t *testing.T) {
	c, ns := live(t)
	for _, tc := range []struct {
		name     string
		spec     provider.ClusterSpec
		wantArgs []string
		wantEnv  string
		wantConf string
	}{
		{"per-job attached", provider.ClusterSpec{Mode: provider.PerJob, ResultLinger: 30 * time.Second},
			JobManagerArgs(ModePerJob, "--per-job", "--result-linger", "30s", "--result-acks", "2"), "", ""},
		{"per-job detached", provider.ClusterSpec{Mode: provider.PerJob, RemoveWhenDone: true},
			JobManagerArgs(ModePerJob, "--per-job"), "", ""},
		// The spate binary stands in for a program: it submits nothing,
		// so the attached application fails and its cluster stays.
		{"application attached", provider.ClusterSpec{Mode: provider.Application, Artifact: "local://" + DefaultEntryPath, Args: []string{"help"},
			Env: map[string]string{"SPATE_APPLICATION_PROPERTIES": `{"app.greeting":"hi"}`}},
			JobManagerArgs(ModeApplication, "--application", "local://"+DefaultEntryPath, "--", "help"), "SPATE_APPLICATION_PROPERTIES", "execution.shutdown-on-application-finish: \"false\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			id := strings.ReplaceAll(tc.name, " ", "-")
			tc.spec.Config = baseConfig(ns, id)
			cl, err := Deployer{Client: c.Client}.Deploy(ctx, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Stop(context.Background())
			dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{})
			must(t, err)
			main := dep.Spec.Template.Spec.Containers[0]
			if !slices.Equal(main.Args, tc.wantArgs) {
				t.Errorf("JobManager args = %v, want %v", main.Args, tc.wantArgs)
			}
			wantMode := map[provider.Mode]string{provider.PerJob: ModePerJob, provider.Application: ModeApplication}[tc.spec.Mode]
			if dep.Annotations[AnnotationMode] != wantMode {
				t.Errorf("mode annotation = %q, want %q", dep.Annotations[AnnotationMode], wantMode)
			}
			if tc.wantEnv != "" && !slices.ContainsFunc(main.Env, func(e corev1.EnvVar) bool { return e.Name == tc.wantEnv }) {
				t.Errorf("JobManager env %v lacks %s", main.Env, tc.wantEnv)
			}
			cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, ConfigMapName(id), metav1.GetOptions{})
			must(t, err)
			if tc.wantConf != "" && !strings.Contains(cm.Data[ConfigFile], tc.wantConf) {
				t.Errorf("config.yaml lacks %q:\n%s", tc.wantConf, cm.Data[ConfigFile])
			}
			must(t, cl.Stop(ctx))
			if left, err := Remaining(ctx, c.Client, ns, id); err != nil || len(left) > 0 {
				t.Errorf("left after Stop: %v, %v", left, err)
			}
		})
	}
}
