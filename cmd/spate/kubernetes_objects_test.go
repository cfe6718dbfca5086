package main

// Object tests of the Kubernetes provider (internal/provider/kubernetes)
// against a real kube-apiserver and kube-controller-manager
// (internal/localkube, see kubernetes_test.go), with the JobManager and
// TaskManagers running the spate binary in pods. They live here, above
// the provider in the layers, because localkube is test wiring (layer 5).

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/localkube"
	"github.com/spate-dev/spate/internal/provider"
	"github.com/spate-dev/spate/internal/provider/kubernetes"
)

// kubeTestdata holds the provider's pod templates.
var kubeTestdata = filepath.Join("..", "..", "internal", "provider", "kubernetes", "testdata")

// kubeLive returns the shared local cluster and a fresh namespace with the
// RBAC of deploy/kubernetes.
func kubeLive(t *testing.T) (*localkube.Cluster, string) {
	t.Helper()
	k := startKube(t)
	return k.c, k.ns
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// kubeConfig is the configuration of a test cluster in namespace ns.
func kubeConfig(ns, id string, kv ...string) map[string]string {
	m := map[string]string{
		kubernetes.KeyClusterID: id, kubernetes.KeyNamespace: ns, kubernetes.KeyImage: kubeImage, kubernetes.KeyServiceAccount: "spate",
		kubernetes.KeyRESTExposedType:  "LoadBalancer",
		kubernetes.KeyJobManagerCPU:    "0.25",
		kubernetes.KeyJobManagerMemory: "256m", kubernetes.KeyTaskManagerCPU: "0.5", kubernetes.KeyTaskManagerMemory: "512m",
		"heartbeat.interval": "1s", "heartbeat.timeout": "60s",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestSessionObjects deploys a session with one kept TaskManager and pod
// templates, and checks every object the client and the JobManager
// created as the API server has it: names, labels, owner references,
// resources, environment, arguments and the merged templates. Then it
// deletes the TaskManager pod: the JobManager notices at once (not after
// the 60 s heartbeat timeout) and creates a replacement. Stopping the
// cluster leaves nothing with its label.
func TestSessionObjects(t *testing.T) {
	c, ns := kubeLive(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := "objects"
	conf := kubeConfig(ns, id,
		kubernetes.KeyJobManagerTemplate, filepath.Join(kubeTestdata, "live-jobmanager-template.yaml"),
		kubernetes.KeyTaskManagerTemplate, filepath.Join(kubeTestdata, "taskmanager-template.yaml"),
		"taskmanager.numberOfTaskSlots", "2")
	cl, err := kubernetes.Deployer{Client: c.Client}.Deploy(ctx, provider.ClusterSpec{Mode: provider.Session, Config: conf, TaskManagers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop(context.Background())
	if cl.ID() != id {
		t.Errorf("cluster id = %q, want %q", cl.ID(), id)
	}
	kc := c.Client
	wantLabels := func(component string) map[string]string { return kubernetes.Labels(id, component) }

	dep, err := kc.AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{})
	mustOK(t, err)
	if !maps.Equal(dep.Labels, wantLabels("jobmanager")) || *dep.Spec.Replicas != 1 || dep.Annotations[kubernetes.AnnotationMode] != kubernetes.ModeSession {
		t.Errorf("Deployment %s: labels %v, replicas %d, annotations %v", dep.Name, dep.Labels, *dep.Spec.Replicas, dep.Annotations)
	}
	pod := dep.Spec.Template
	if pod.Labels["team"] != "streaming" || pod.Labels[kubernetes.LabelApp] != id || pod.Labels[kubernetes.LabelType] != kubernetes.TypeValue || pod.Labels[kubernetes.LabelComponent] != "jobmanager" {
		t.Errorf("JobManager pod labels = %v: want the template's and Spate's", pod.Labels)
	}
	if names := containerNames(pod.Spec.Containers); !slices.Equal(names, []string{kubernetes.MainContainer, "log-shipper"}) {
		t.Errorf("JobManager containers = %v, want spate-main and the template's sidecar", names)
	}
	main := pod.Spec.Containers[0]
	wantArgs := kubernetes.JobManagerArgs(kubernetes.ModeSession, "--taskmanagers", "1")
	if !slices.Equal(main.Args, wantArgs) || !slices.Equal(main.Command, []string{kubernetes.DefaultEntryPath}) || main.Image != kubeImage {
		t.Errorf("JobManager container: command %v args %v image %s, want %v %v %s", main.Command, main.Args, main.Image, kubernetes.DefaultEntryPath, wantArgs, kubeImage)
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
	if env["REGION"].Value != "eu-west-1" || env["SPATE_CONF_DIR"].Value != kubernetes.ConfDir || env[kubernetes.EnvPodIP].ValueFrom == nil || env[kubernetes.EnvPodIP].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("JobManager env = %v", main.Env)
	}
	if pod.Spec.ServiceAccountName != "spate" || pod.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("JobManager pod: service account %q, restart policy %s", pod.Spec.ServiceAccountName, pod.Spec.RestartPolicy)
	}
	if vols := volumeNames(pod.Spec.Volumes); !slices.Equal(vols, []string{"logs", "spate-config-volume", "spate-tls-volume"}) {
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
	mustOK(t, err)
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !maps.Equal(headless.Labels, wantLabels("jobmanager")) || headless.Spec.Ports[0].Port != kubernetes.RPCPort {
		t.Errorf("headless Service: clusterIP %q labels %v ports %v", headless.Spec.ClusterIP, headless.Labels, headless.Spec.Ports)
	}
	ownedByDeployment("Service "+id, headless.OwnerReferences)
	rest, err := kc.CoreV1().Services(ns).Get(ctx, id+"-rest", metav1.GetOptions{})
	mustOK(t, err)
	if rest.Spec.Type != corev1.ServiceTypeLoadBalancer || rest.Spec.Ports[0].Port != kubernetes.RESTPort || !maps.Equal(rest.Labels, wantLabels("jobmanager")) {
		t.Errorf("REST Service: type %s ports %v labels %v", rest.Spec.Type, rest.Spec.Ports, rest.Labels)
	}
	ownedByDeployment("Service "+id+"-rest", rest.OwnerReferences)
	cm, err := kc.CoreV1().ConfigMaps(ns).Get(ctx, "spate-config-"+id, metav1.GetOptions{})
	mustOK(t, err)
	ownedByDeployment("ConfigMap", cm.OwnerReferences)
	if !maps.Equal(cm.Labels, wantLabels("jobmanager")) || !strings.Contains(cm.Data[kubernetes.ConfigFile], "taskmanager.numberOfTaskSlots: \"2\"") || cm.Data[kubernetes.TaskManagerTemplateFile] == "" {
		t.Errorf("ConfigMap: labels %v data %v", cm.Labels, cm.Data)
	}

	// The kept TaskManager, created by the JobManager.
	tmName := kubernetes.TaskManagerPodName(id, 1, 1)
	var tm *corev1.Pod
	waitFor(t, time.Minute, "TaskManager pod "+tmName, func() bool {
		tm, err = kc.CoreV1().Pods(ns).Get(ctx, tmName, metav1.GetOptions{})
		return err == nil
	})
	ownedByDeployment("TaskManager pod", tm.OwnerReferences)
	if !maps.Equal(tm.Labels, map[string]string{kubernetes.LabelType: kubernetes.TypeValue, kubernetes.LabelApp: id, kubernetes.LabelComponent: "taskmanager", "team": "streaming"}) {
		t.Errorf("TaskManager labels = %v", tm.Labels)
	}
	if tm.Spec.RestartPolicy != corev1.RestartPolicyNever || tm.Spec.ServiceAccountName != "spate" {
		t.Errorf("TaskManager pod: restart policy %s, service account %s", tm.Spec.RestartPolicy, tm.Spec.ServiceAccountName)
	}
	jmPods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.ClusterSelector(id) + ",component=jobmanager"})
	mustOK(t, err)
	if len(jmPods.Items) != 1 {
		t.Fatalf("JobManager pods: %d", len(jmPods.Items))
	}
	jmIP := jmPods.Items[0].Status.PodIP
	wantTMArgs := kubernetes.TaskManagerArgs(provider.TaskManagerSpec{ID: "taskmanager-1", JobManager: fmt.Sprintf("%s:%d", jmIP, kubernetes.RPCPort), Slots: 2})
	tmMain := tm.Spec.Containers[0]
	if !slices.Equal(tmMain.Args, wantTMArgs) || tmMain.Name != kubernetes.MainContainer {
		t.Errorf("TaskManager %s args = %v, want %v", tmMain.Name, tmMain.Args, wantTMArgs)
	}
	if q := tmMain.Resources.Limits[corev1.ResourceMemory]; q.String() != "512Mi" {
		t.Errorf("TaskManager memory limit = %s, want 512Mi", q.String())
	}
	if vols := volumeNames(tm.Spec.Volumes); !slices.Equal(vols, []string{"scratch", "spate-config-volume", "spate-tls-volume"}) {
		t.Errorf("TaskManager volumes = %v", vols)
	}

	rc, err := client.New(cl.REST())
	mustOK(t, err)
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
	waitFor(t, time.Minute, "the TaskManager to register", registered("tm-1"))

	// A deleted TaskManager pod is noticed through the watch, and the
	// session's kept TaskManager replaced.
	deleted := time.Now()
	mustOK(t, kc.CoreV1().Pods(ns).Delete(ctx, tmName, metav1.DeleteOptions{}))
	waitFor(t, 20*time.Second, "the lost TaskManager to be replaced", registered("tm-2"))
	if since := time.Since(deleted); since > 30*time.Second {
		t.Errorf("the deleted TaskManager was replaced after %v: not through the watch", since)
	}
	if _, err := kc.CoreV1().Pods(ns).Get(ctx, kubernetes.TaskManagerPodName(id, 1, 2), metav1.GetOptions{}); err != nil {
		t.Errorf("replacement pod: %v", err)
	}

	// A TaskManager that dies (its pod Failed, exit code 137) is noticed
	// too, replaced, and its failed pod deleted.
	// Its process: the one that dials this cluster's JobManager (its pod
	// IP is this cluster's alone) as taskmanager-2.
	replacement := func() []string {
		return slices.DeleteFunc(processesNaming(jmIP+":"), func(p string) bool { return !strings.Contains(p, "taskmanager.resource-id=taskmanager-2") })
	}
	waitFor(t, 20*time.Second, "the replacement's process", func() bool { return len(replacement()) == 1 })
	pid, _, _ := strings.Cut(replacement()[0], ":")
	mustOK(t, exec.Command("kill", "-KILL", pid).Run())
	waitFor(t, 20*time.Second, "the killed TaskManager to be replaced", registered("tm-3"))
	waitFor(t, 20*time.Second, "the failed pod to be deleted", func() bool {
		_, err := kc.CoreV1().Pods(ns).Get(ctx, kubernetes.TaskManagerPodName(id, 1, 2), metav1.GetOptions{})
		return err != nil
	})

	// Session list finds it by label.
	sessions, err := kubernetes.Deployer{Client: kc, Config: map[string]string{kubernetes.KeyNamespace: ns}}.Sessions(ctx, kubernetes.ModeSession)
	mustOK(t, err)
	if len(sessions) != 1 || sessions[0].ID != id || sessions[0].REST != cl.REST() {
		t.Errorf("sessions = %+v, want %s at %s", sessions, id, cl.REST())
	}

	// Stopping it (as spate session stop) leaves nothing.
	mustOK(t, kubernetes.Deployer{Client: kc, Config: map[string]string{kubernetes.KeyNamespace: ns}}.Kill(ctx, id))
	left, err := kubernetes.Remaining(ctx, kc, ns, id)
	if err != nil || len(left) > 0 {
		t.Errorf("left after Kill: %v, %v", left, err)
	}
	select {
	case <-cl.Done():
	case <-time.After(10 * time.Second):
		t.Error("Done not closed once the cluster is gone")
	}
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
	c, ns := kubeLive(t)
	// A user without any right in the namespace.
	ctx := context.Background()
	_, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}}, metav1.CreateOptions{})
	mustOK(t, err)
	tok, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "nobody", &authv1.TokenRequest{}, metav1.CreateOptions{})
	mustOK(t, err)
	nobody, err := k8s.NewForConfig(&rest.Config{Host: c.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.CAFile}})
	mustOK(t, err)

	invalid := filepath.Join(t.TempDir(), "invalid.yaml")
	mustOK(t, os.WriteFile(invalid, []byte("apiVersion: v1\nkind: Pod\nspec:\n  volumes:\n    - name: Not_A_DNS_Label\n      emptyDir: {}\n"), 0o644))
	for _, tc := range []struct {
		name   string
		client k8s.Interface
		conf   map[string]string
		want   []string
	}{
		{"forbidden", nobody, kubeConfig(ns, "forbidden"),
			// The cluster's TLS Secret is its first object.
			[]string{"create Secret " + ns + "/spate-tls-forbidden", "forbidden", "RBAC forbids it"}},
		{"invalid template", c.Client, kubeConfig(ns, "invalid", kubernetes.KeyJobManagerTemplate, invalid),
			[]string{"create Deployment " + ns + "/invalid", "Not_A_DNS_Label", "Invalid value"}},
		{"image cannot be pulled", c.Client, kubeConfig(ns, "nopull", kubernetes.KeyImage, "registry.invalid/nope:1"),
			[]string{"the JobManager pod nopull-", "ErrImagePull", `image "registry.invalid/nope:1"`}},
		{"unschedulable", c.Client, kubeConfig(ns, "toobig", kubernetes.KeyJobManagerCPU, "1000"),
			[]string{"did not start", "not scheduled: Unschedulable", "Insufficient cpu"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err := kubernetes.Deployer{Client: tc.client}.Deploy(ctx, provider.ClusterSpec{Mode: provider.Session, Config: tc.conf})
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
			left, err := kubernetes.Remaining(context.Background(), c.Client, ns, tc.conf[kubernetes.KeyClusterID])
			if err != nil || len(left) > 0 {
				t.Errorf("left after the failed Deploy: %v, %v", left, err)
			}
		})
	}
	// An application's program must be in the image.
	if _, err := (kubernetes.Deployer{Client: c.Client}).Deploy(ctx, provider.ClusterSpec{Mode: provider.Application, Config: kubeConfig(ns, "app"), Artifact: "/host/path"}); err == nil || !strings.Contains(err.Error(), "local:///path/in/image") {
		t.Errorf("application with a host path: %v", err)
	}
}

// TestModeObjects deploys a per-job and an application cluster, attached
// and detached, and checks what differs by mode in their objects: the
// JobManager's arguments, its environment, the mode annotation and the
// configuration; then deletes them.
func TestModeObjects(t *testing.T) {
	c, ns := kubeLive(t)
	for _, tc := range []struct {
		name     string
		spec     provider.ClusterSpec
		wantArgs []string
		wantEnv  string
		wantConf string
	}{
		{"per-job attached", provider.ClusterSpec{Mode: provider.PerJob, ResultLinger: 30 * time.Second},
			kubernetes.JobManagerArgs(kubernetes.ModePerJob, "--per-job", "--result-linger", "30s", "--result-acks", "2"), "", ""},
		{"per-job detached", provider.ClusterSpec{Mode: provider.PerJob, RemoveWhenDone: true},
			kubernetes.JobManagerArgs(kubernetes.ModePerJob, "--per-job"), "", ""},
		// The spate binary stands in for a program: it submits nothing,
		// so the attached application fails and its cluster stays.
		{"application attached", provider.ClusterSpec{Mode: provider.Application, Artifact: "local://" + kubernetes.DefaultEntryPath, Args: []string{"help"},
			Env: map[string]string{"SPATE_APPLICATION_PROPERTIES": `{"app.greeting":"hi"}`}},
			kubernetes.JobManagerArgs(kubernetes.ModeApplication, "--application", "local://"+kubernetes.DefaultEntryPath, "--", "help"), "SPATE_APPLICATION_PROPERTIES", "execution.shutdown-on-application-finish: \"false\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			id := strings.ReplaceAll(tc.name, " ", "-")
			tc.spec.Config = kubeConfig(ns, id)
			cl, err := kubernetes.Deployer{Client: c.Client}.Deploy(ctx, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Stop(context.Background())
			dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{})
			mustOK(t, err)
			main := dep.Spec.Template.Spec.Containers[0]
			if !slices.Equal(main.Args, tc.wantArgs) {
				t.Errorf("JobManager args = %v, want %v", main.Args, tc.wantArgs)
			}
			wantMode := map[provider.Mode]string{provider.PerJob: kubernetes.ModePerJob, provider.Application: kubernetes.ModeApplication}[tc.spec.Mode]
			if dep.Annotations[kubernetes.AnnotationMode] != wantMode {
				t.Errorf("mode annotation = %q, want %q", dep.Annotations[kubernetes.AnnotationMode], wantMode)
			}
			if tc.wantEnv != "" {
				// From the cluster's Secret, owned by the Deployment: not
				// readable in the Deployment.
				i := slices.IndexFunc(main.Env, func(e corev1.EnvVar) bool { return e.Name == tc.wantEnv })
				if i < 0 || main.Env[i].Value != "" || main.Env[i].ValueFrom == nil || main.Env[i].ValueFrom.SecretKeyRef == nil || main.Env[i].ValueFrom.SecretKeyRef.Name != kubernetes.EnvSecretName(id) {
					t.Errorf("JobManager env %v: want %s from Secret %s", main.Env, tc.wantEnv, kubernetes.EnvSecretName(id))
				}
				s, err := c.Client.CoreV1().Secrets(ns).Get(ctx, kubernetes.EnvSecretName(id), metav1.GetOptions{})
				mustOK(t, err)
				if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != dep.UID || string(s.Data[tc.wantEnv]) != tc.spec.Env[tc.wantEnv] {
					t.Errorf("Secret %s: owners %v, data %q", s.Name, s.OwnerReferences, s.Data)
				}
			}
			cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, kubernetes.ConfigMapName(id), metav1.GetOptions{})
			mustOK(t, err)
			if tc.wantConf != "" && !strings.Contains(cm.Data[kubernetes.ConfigFile], tc.wantConf) {
				t.Errorf("config.yaml lacks %q:\n%s", tc.wantConf, cm.Data[kubernetes.ConfigFile])
			}
			mustOK(t, cl.Stop(ctx))
			if left, err := kubernetes.Remaining(ctx, c.Client, ns, id); err != nil || len(left) > 0 {
				t.Errorf("left after Stop: %v, %v", left, err)
			}
		})
	}
}
