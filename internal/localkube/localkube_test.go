// The package's tests run against a real kube-apiserver and
// kube-controller-manager (one cluster shared by the tests, see Shared),
// whose binaries are built once and cached: a cold run first builds them,
// 10 to 30 minutes on 2 cores (skipped with the reason if they cannot be
// built, failed under CI=true); a warm run takes about 20 s under -race,
// 3 s of which start the cluster.
package localkube_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/spate-dev/spate/internal/localkube"
	"github.com/spate-dev/spate/internal/localkube/inpod"
)

var kube localkube.Shared

// The test binary doubles as the program of the test pods: with
// LOCALKUBE_TEST_HELPER set it runs that helper instead of the tests.
func TestMain(m *testing.M) {
	if h := os.Getenv("LOCALKUBE_TEST_HELPER"); h != "" {
		os.Exit(helper(h))
	}
	code := m.Run()
	if err := kube.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// helper is a pod's program. Exit codes: 0 done, 3 forbidden, 4 other
// failure.
func helper(mode string) int {
	switch mode {
	case "list-pods": // as the pod's service account, through the in-cluster configuration
		cfg, err := inpod.InClusterConfig()
		if err != nil {
			fmt.Println("in-cluster config:", err)
			return 4
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			fmt.Println(err)
			return 4
		}
		ns, _ := os.ReadFile(inpod.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace"))
		_, err = cs.CoreV1().Pods(string(ns)).List(context.Background(), metav1.ListOptions{})
		if apierrors.IsForbidden(err) {
			fmt.Println("forbidden:", err)
			return 3
		}
		if err != nil {
			fmt.Println("list pods:", err)
			return 4
		}
		fmt.Println("listed pods of", string(ns))
		return 0
	case "serve": // an HTTP server on the pod's address answering its name
		l, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("MY_POD_IP"), "8080"))
		if err != nil {
			fmt.Println(err)
			return 4
		}
		http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, os.Getenv("MY_POD_NAME"))
		}))
		return 4
	case "dial": // GET $URL through the cluster DNS, wanting $WANT
		if !inpod.UseClusterDNS() {
			fmt.Println("no", inpod.EnvDNS)
			return 4
		}
		resp, err := http.Get(os.Getenv("URL"))
		if err != nil {
			fmt.Println(err)
			return 4
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != os.Getenv("WANT") {
			fmt.Printf("got %q, want %q\n", b, os.Getenv("WANT"))
			return 4
		}
		fmt.Println("reached", os.Getenv("URL"))
		return 0
	}
	fmt.Println("unknown helper", mode)
	return 4
}

// namespace creates a namespace of the test's own on the shared cluster.
func namespace(t *testing.T) (*localkube.Cluster, string) {
	t.Helper()
	c := kube.Get(t, localkube.Options{})
	ns := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	ns = strings.ReplaceAll(ns, "_", "-")
	if len(ns) > 50 {
		ns = ns[:50]
	}
	ns = strings.TrimRight(ns, "-") + "-" + strconv.Itoa(os.Getpid()%10000)
	if err := c.CreateNamespace(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return c, ns
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, last)
		}
		<-tick.C
	}
}

func waitPod(t *testing.T, c *localkube.Cluster, ns, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, 30*time.Second, "pod "+ns+"/"+name+" "+what, func() (bool, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		return cond(p), nil
	})
	return pod
}

// pid is the process of the pod's main container, from its container ID.
func pid(t *testing.T, pod *corev1.Pod) int {
	t.Helper()
	for _, cs := range pod.Status.ContainerStatuses {
		if id, ok := strings.CutPrefix(cs.ContainerID, "localkube://"); ok {
			n, err := strconv.Atoi(id)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("pod %s has no localkube container ID: %+v", pod.Name, pod.Status.ContainerStatuses)
	return 0
}

// groupGone reports whether no process of the group pgid is left.
func groupGone(pgid int) bool {
	return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

func sh(script string) corev1.Container {
	return corev1.Container{Name: localkube.MainContainer, Image: "spate:test", Command: []string{"/bin/sh", "-c", script}}
}

// A Deployment becomes a ReplicaSet and a pod the runner runs; deleting
// the pod kills its processes (the shell and its child) and the ReplicaSet
// replaces it; deleting the Deployment garbage-collects the ReplicaSet and
// the pods, processes included.
func TestDeploymentRunsPodsAndGarbageCollects(t *testing.T) {
	c, ns := namespace(t)
	ctx := context.Background()
	labels := map[string]string{"app": "hi"}
	one := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hi"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{sh("echo hi from $(MY_NAME); sleep 1000")}},
			},
		},
	}
	dep.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MY_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := func() *corev1.Pod {
		var pod *corev1.Pod
		waitFor(t, 60*time.Second, "a running pod of the deployment", func() (bool, error) {
			pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=hi"})
			if err != nil {
				return false, err
			}
			for i := range pods.Items {
				p := &pods.Items[i]
				if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
					pod = p
					return true, nil
				}
			}
			return false, nil
		})
		return pod
	}
	pod := running()
	rs, err := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=hi"})
	if err != nil || len(rs.Items) != 1 {
		t.Fatalf("replica sets of the deployment: %v, %v", rs, err)
	}
	if owner := metav1.GetControllerOf(pod); owner == nil || owner.Name != rs.Items[0].Name {
		t.Errorf("pod %s's controller = %v, want the ReplicaSet %s", pod.Name, owner, rs.Items[0].Name)
	}
	if pod.Spec.NodeName != c.NodeName || !strings.HasPrefix(pod.Status.PodIP, c.PodNetwork+".") {
		t.Errorf("pod on node %q with IP %q, want node %q and an address in %s.0.0/16", pod.Spec.NodeName, pod.Status.PodIP, c.NodeName, c.PodNetwork)
	}
	waitFor(t, 10*time.Second, "the pod's output", func() (bool, error) {
		b, err := os.ReadFile(filepath.Join(c.PodDir(ns, pod.Name), "main.log"))
		return strings.Contains(string(b), "hi from "+pod.Name), err
	})
	first := pid(t, pod)
	if groupGone(first) {
		t.Fatalf("pod %s's process %d is not running", pod.Name, first)
	}

	if err := c.Client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the deleted pod gone from the API", func() (bool, error) {
		_, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if !groupGone(first) {
		t.Errorf("processes of the deleted pod %s (group %d) are still running", pod.Name, first)
	}
	replacement := running()
	if replacement.Name == pod.Name {
		t.Fatalf("replacement has the deleted pod's name %s", pod.Name)
	}
	second := pid(t, replacement)

	if err := c.Client.AppsV1().Deployments(ns).Delete(ctx, "hi", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the garbage collector to remove the ReplicaSet and the pods", func() (bool, error) {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		rs, err := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(pods.Items) == 0 && len(rs.Items) == 0, nil
	})
	if !groupGone(second) {
		t.Errorf("processes of the garbage-collected pod %s (group %d) are still running", replacement.Name, second)
	}
}

// A pod whose process exits 3 is Failed with exit code 3; one exiting 0
// Succeeded.
func TestPodExitCodes(t *testing.T) {
	c, ns := namespace(t)
	ctx := context.Background()
	for name, script := range map[string]string{"three": "echo first; echo the reason; exit 3", "zero": "true"} {
		ctr := sh(script)
		ctr.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{ctr}}}
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	terminal := func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
	}
	three := waitPod(t, c, ns, "three", "finished", terminal)
	if three.Status.Phase != corev1.PodFailed {
		t.Errorf("pod three: phase %s, want Failed", three.Status.Phase)
	}
	if st := three.Status.ContainerStatuses; len(st) != 1 || st[0].State.Terminated == nil || st[0].State.Terminated.ExitCode != 3 {
		t.Errorf("pod three: container statuses %+v, want terminated with exit code 3", st)
	} else if msg := st[0].State.Terminated.Message; msg != "first\nthe reason" {
		t.Errorf("pod three's termination message %q, want its output (FallbackToLogsOnError)", msg)
	}
	zero := waitPod(t, c, ns, "zero", "finished", terminal)
	if zero.Status.Phase != corev1.PodSucceeded {
		t.Errorf("pod zero: phase %s, want Succeeded", zero.Status.Phase)
	}
	// A status the runner wrote is not written again: an update of the pod
	// (a label) causes no status write.
	before := c.StatusWrites()
	zero.Labels = map[string]string{"touched": "yes"}
	if _, err := c.Client.CoreV1().Pods(ns).Update(ctx, zero, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, ns, "zero", "relabelled", func(p *corev1.Pod) bool { return p.Labels["touched"] == "yes" })
	marker := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "marker"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{sh("true")}}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, marker, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, ns, "marker", "finished", terminal) // the runner has seen the relabelling by now: its queue is ordered per key only, but it handled later events
	if n := c.StatusWrites() - before; n > 3 {
		t.Errorf("%d status writes for a relabelled finished pod and a new one (at most 3: running, finished, and one spare)", n)
	}
}

// ConfigMap and Secret volumes are under $LOCALKUBE_ROOT at their mount
// paths; envFrom, configMapKeyRef, secretKeyRef, the downward API and
// $(VAR) references make the environment.
func TestPodEnvironmentAndVolumes(t *testing.T) {
	c, ns := namespace(t)
	ctx := context.Background()
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "conf"},
		Data: map[string]string{"config.yaml": "a: 1\n", "GREETING": "hello"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec"},
		Data: map[string][]byte{"password": []byte("s3cret")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ctr := sh(`cat $LOCALKUBE_ROOT/opt/conf/config.yaml; cat $LOCALKUBE_ROOT/etc/sec/password; echo; ` +
		`echo "env $CONF_GREETING $PASSWORD $POD_NAME/$POD_NS ip=$POD_IP mem=$MEM $COMBINED"`)
	ctr.EnvFrom = []corev1.EnvFromSource{{Prefix: "CONF_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}}
	ctr.Env = []corev1.EnvVar{
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "password"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "COMBINED", Value: "$(POD_NAME)-$(CONF_GREETING)"},
	}
	ctr.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
	ctr.VolumeMounts = []corev1.VolumeMount{{Name: "conf", MountPath: "/opt/conf"}, {Name: "sec", MountPath: "/etc/sec"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "env"}, Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{ctr},
		Volumes: []corev1.Volume{
			{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
			{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
		},
	}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := waitPod(t, c, ns, "env", "finished", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
	})
	out, _ := os.ReadFile(filepath.Join(c.PodDir(ns, "env"), "main.log"))
	if done.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("pod env: %s, output:\n%s", done.Status.Phase, out)
	}
	want := fmt.Sprintf("a: 1\ns3cret\nenv hello s3cret env/%s ip=%s mem=64 env-hello\n", ns, done.Status.PodIP)
	if string(out) != want {
		t.Errorf("pod env's output:\n%q\nwant\n%q", out, want)
	}
}

// A pod of a service account reads its token where client-go's in-cluster
// configuration does (under $LOCALKUBE_ROOT): without a RoleBinding it is
// forbidden to list pods, with one it lists them.
func TestServiceAccountTokenAndRBAC(t *testing.T) {
	c, ns := namespace(t)
	ctx := context.Background()
	if _, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "spate"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	run := func(name string) *corev1.Pod {
		t.Helper()
		ctr := corev1.Container{Name: localkube.MainContainer, Image: "spate:test", Command: []string{os.Args[0]},
			Env: []corev1.EnvVar{{Name: "LOCALKUBE_TEST_HELPER", Value: "list-pods"}}}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
			ServiceAccountName: "spate", RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{ctr}}}
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return waitPod(t, c, ns, name, "finished", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
		})
	}
	exit := func(p *corev1.Pod) int32 {
		if st := p.Status.ContainerStatuses; len(st) == 1 && st[0].State.Terminated != nil {
			return st[0].State.Terminated.ExitCode
		}
		return -1
	}
	log := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(c.PodDir(ns, name), "main.log"))
		return string(b)
	}
	if p := run("unbound"); exit(p) != 3 {
		t.Fatalf("without a RoleBinding: exit code %d, want 3 (forbidden); output:\n%s", exit(p), log("unbound"))
	}
	if !strings.Contains(log("unbound"), `"system:serviceaccount:`+ns+`:spate" cannot list resource "pods"`) {
		t.Errorf("the forbidden error does not name the service account:\n%s", log("unbound"))
	}
	if _, err := c.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pods"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pods"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "spate", Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := run("bound"); exit(p) != 0 {
		t.Fatalf("with a RoleBinding: exit code %d, want 0; output:\n%s", exit(p), log("bound"))
	}
}

// A pod reaches another through the cluster DNS by its headless
// Service's name, and the host reaches it through a LoadBalancer
// Service's ingress address, as a client reaches a cloud's.
func TestServiceDNSAndLoadBalancer(t *testing.T) {
	c, ns := namespace(t)
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	server := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: localkube.MainContainer, Image: "spate:test", Command: []string{os.Args[0]},
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		Env: []corev1.EnvVar{{Name: "LOCALKUBE_TEST_HELPER", Value: "serve"},
			{Name: "MY_POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "MY_POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
	}}}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, server, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "web-rest"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "rest", Port: 80, TargetPort: intstr.FromString("http")}}}},
	} {
		if _, err := c.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitPod(t, c, ns, "web", "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	var ingress string
	waitFor(t, 30*time.Second, "the load balancer's ingress address", func() (bool, error) {
		s, err := c.Client.CoreV1().Services(ns).Get(ctx, "web-rest", metav1.GetOptions{})
		if err != nil || len(s.Status.LoadBalancer.Ingress) == 0 {
			return false, err
		}
		ingress = s.Status.LoadBalancer.Ingress[0].IP
		return true, nil
	})
	if !strings.HasPrefix(ingress, c.PodNetwork+".255.") {
		t.Errorf("ingress address %s, want one in %s.255.0/24", ingress, c.PodNetwork)
	}
	waitFor(t, 30*time.Second, "the web pod through the load balancer", func() (bool, error) {
		resp, err := http.Get("http://" + ingress + ":80/")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b) == "web", err
	})

	svc, err := c.Client.CoreV1().Services(ns).Get(ctx, "web-rest", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodePort := svc.Spec.Ports[0].NodePort
	if nodePort == 0 {
		t.Fatal("the LoadBalancer Service has no node port")
	}
	resp, err := http.Get(fmt.Sprintf("http://%s.0.1:%d/", c.PodNetwork, nodePort))
	if err != nil {
		t.Fatalf("GET through the node port: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "web" {
		t.Errorf("through the node port: %q, want web", b)
	}

	for name, url := range map[string]string{
		"dial-headless": "http://web." + ns + ":8080/",
		"dial-lb":       "http://web-rest." + ns + ".svc.cluster.local/",
	} {
		client := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: localkube.MainContainer, Image: "spate:test", Command: []string{os.Args[0]},
				Env: []corev1.EnvVar{{Name: "LOCALKUBE_TEST_HELPER", Value: "dial"}, {Name: "URL", Value: url}, {Name: "WANT", Value: "web"}}}}}}
		if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, client, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := waitPod(t, c, ns, name, "finished", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
		})
		if p.Status.Phase != corev1.PodSucceeded {
			b, _ := os.ReadFile(filepath.Join(c.PodDir(ns, name), "main.log"))
			t.Errorf("pod %s (GET %s): %s; output:\n%s", name, url, p.Status.Phase, b)
		}
	}
}

// A pod whose requests do not fit the Node stays Pending, Unschedulable.
func TestUnschedulablePod(t *testing.T) {
	c, ns := namespace(t)
	ctr := sh("true")
	ctr.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000")}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "big"}, Spec: corev1.PodSpec{Containers: []corev1.Container{ctr}}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, c, ns, "big", "unschedulable", func(p *corev1.Pod) bool {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Reason == corev1.PodReasonUnschedulable {
				return true
			}
		}
		return false
	})
	if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending {
		t.Errorf("unschedulable pod: node %q, phase %s; want unbound and Pending", p.Spec.NodeName, p.Status.Phase)
	}
}

// A pod of a restartPolicy Always exiting is restarted, its restarts
// counted, and stays Running.
func TestRestartPolicyAlways(t *testing.T) {
	c, ns := namespace(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "crash"}, Spec: corev1.PodSpec{Containers: []corev1.Container{sh("echo started; exit 1")}}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, c, ns, "crash", "restarted", func(p *corev1.Pod) bool {
		st := p.Status.ContainerStatuses
		return len(st) == 1 && st[0].RestartCount >= 1 && st[0].LastTerminationState.Terminated != nil
	})
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s between restarts, want Running", p.Status.Phase)
	}
	if code := p.Status.ContainerStatuses[0].LastTerminationState.Terminated.ExitCode; code != 1 {
		t.Errorf("last termination's exit code %d, want 1", code)
	}
	// Each start is counted, and restarts back off (no tight loop).
	out, _ := os.ReadFile(filepath.Join(c.PodDir(ns, "crash"), "main.log"))
	if starts, restarts := strings.Count(string(out), "started"), int(p.Status.ContainerStatuses[0].RestartCount); starts > restarts+2 {
		t.Errorf("%d starts for %d restarts: restarts without back-off", starts, restarts)
	}
}

// The image root: a container without a command runs the image's
// entrypoint from it, the image's files and a volume mounted inside an
// image directory are both under $LOCALKUBE_ROOT (local:// paths resolve
// through it), and an unknown image is not pulled.
func TestImageRootAndEntrypoint(t *testing.T) {
	image := t.TempDir()
	os.MkdirAll(filepath.Join(image, "opt", "spate", "bin"), 0o755)
	os.MkdirAll(filepath.Join(image, "opt", "app"), 0o755)
	os.WriteFile(filepath.Join(image, "opt", "app", "job.txt"), []byte("the job\n"), 0o644)
	os.WriteFile(filepath.Join(image, "opt", "spate", "bin", "spate"), []byte(`#!/bin/sh
echo "args: $*"
cat "$LOCALKUBE_ROOT/opt/spate/conf/config.yaml"
cat "$LOCALKUBE_ROOT${2#local://}"
ls "$LOCALKUBE_ROOT/opt/spate"
`), 0o755)
	c := StartForTestWith(t, localkube.Options{Images: map[string]string{"spate:test": image}, Entrypoint: []string{"/opt/spate/bin/spate"}})
	ctx := context.Background()
	ns := "default"
	if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "spate-config"},
		Data: map[string]string{"config.yaml": "k: v\n"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{{Name: localkube.MainContainer, Image: "spate:test", Args: []string{"jobmanager", "local:///opt/app/job.txt"},
			VolumeMounts: []corev1.VolumeMount{{Name: "conf", MountPath: "/opt/spate/conf"}}}},
		Volumes: []corev1.Volume{{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "spate-config"}}}}},
	}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := waitPod(t, c, ns, "app", "finished", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
	})
	out, _ := os.ReadFile(filepath.Join(c.PodDir(ns, "app"), "main.log"))
	if want := "args: jobmanager local:///opt/app/job.txt\nk: v\nthe job\nbin\nconf\n"; done.Status.Phase != corev1.PodSucceeded || string(out) != want {
		t.Errorf("pod app: %s, output\n%q\nwant\n%q", done.Status.Phase, out, want)
	}
	if _, err := os.Stat(filepath.Join(image, "opt", "spate", "conf")); !os.IsNotExist(err) {
		t.Errorf("the volume was written into the image root (%v)", err)
	}

	unknown := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "unknown"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: localkube.MainContainer, Image: "nope:1", Command: []string{"/bin/true"}}}}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, unknown, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, c, ns, "unknown", "waiting for its image", func(p *corev1.Pod) bool {
		st := p.Status.ContainerStatuses
		return len(st) == 1 && st[0].State.Waiting != nil && st[0].State.Waiting.Reason == "ErrImagePull"
	})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("pod with an unknown image: phase %s, want Pending", p.Status.Phase)
	}
}

// StartForTestWith starts a cluster of the test's own with options.
func StartForTestWith(t *testing.T, o localkube.Options) *localkube.Cluster {
	return localkube.StartForTest(t, o)
}

// A running pod's service account token is renewed once 80% of its
// lifetime passed, as the kubelet does, and not before.
func TestServiceAccountTokenRefresh(t *testing.T) {
	c, ns := namespace(t)
	ctx := context.Background()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "long"}, Spec: corev1.PodSpec{Containers: []corev1.Container{sh("sleep 1000")}}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, ns, "long", "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	token := filepath.Join(c.PodDir(ns, "long"), "root", inpod.TokenFile)
	stat := func() time.Time {
		fi, err := os.Stat(token)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	first := stat()
	c.RefreshTokensAt(time.Now().Add(30 * time.Minute))
	if !stat().Equal(first) {
		t.Fatal("token renewed after half its lifetime")
	}
	c.RefreshTokensAt(time.Now().Add(50 * time.Minute))
	if stat().Equal(first) {
		t.Fatal("token not renewed after 80% of its lifetime")
	}
	if b, _ := os.ReadFile(token); strings.Count(string(b), ".") != 2 {
		t.Errorf("renewed token %q is not a JWT", b)
	}
}
