package localkube

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/spate-dev/spate/internal/localkube/inpod"
)

// MainContainer is the name of the container the runner runs; a pod
// without one has its first container run.
const MainContainer = "spate-main"

// The environment the runner gives every pod process on top of the pod's
// own, documented in the package doc.
const (
	// EnvRoot names the directory standing for the container's "/".
	EnvRoot = inpod.EnvRoot
	// EnvDNS names the address (ip:port, UDP and TCP) of the cluster's
	// DNS server, which resolves Service names.
	EnvDNS = inpod.EnvDNS
)

// runner is the test node: it schedules pending pods onto its Node, runs
// their main container as a local process, reports its state as the pod's
// status, and plays kube-proxy, the load-balancer controller and the
// cluster DNS (services.go).
type runner struct {
	c      *Cluster
	o      Options
	log    *slog.Logger
	client kubernetes.Interface
	node   string
	nodeIP string
	net    int // second octet of the pod network

	factory  informers.SharedInformerFactory
	pods     corelisters.PodLister
	services corelisters.ServiceLister
	spaces   corelisters.NamespaceLister
	queue    workqueue.TypedRateLimitingInterface[string]
	svcQueue workqueue.TypedRateLimitingInterface[string]
	dns      *dnsServer

	statusWrites atomic.Int64 // pod status updates sent, for a test that they are not needless

	mu struct {
		sync.Mutex
		runs     map[types.UID]*podRun
		byName   map[string]types.UID // namespace/name → the newest incarnation
		ipUsed   map[string]bool
		nextIP   int
		proxies  map[string]*svcProxy // namespace/name
		svcIPs   map[string]bool
		nextSvc  int
		stopping bool
	}
}

// podRun is the runner's record of one pod (one UID).
type podRun struct {
	uid            types.UID
	namespace      string
	name           string
	dir, root      string
	ip             string
	container      string
	image          string
	startTime      metav1.Time
	readyChanged   metav1.Time
	proc           *proc
	restarts       int32
	state          corev1.ContainerState
	lastState      corev1.ContainerState
	restartPending bool
	final          bool // terminated and not to be restarted
	deleting       bool
	tokens         []tokenFile // projected service account tokens, refreshed
	cpu, mem       int64       // requests (milli-CPU, bytes), for scheduling
}

func newRunner(c *Cluster, o Options, x int) (*runner, error) {
	r := &runner{
		c: c, o: o, log: o.Log, client: c.Client, node: o.NodeName, net: x,
		nodeIP: fmt.Sprintf("127.%d.0.1", x),
	}
	r.mu.runs = map[types.UID]*podRun{}
	r.mu.byName = map[string]types.UID{}
	r.mu.ipUsed = map[string]bool{}
	r.mu.proxies = map[string]*svcProxy{}
	r.mu.svcIPs = map[string]bool{}
	r.factory = informers.NewSharedInformerFactory(c.Client, 0)
	r.pods = r.factory.Core().V1().Pods().Lister()
	r.services = r.factory.Core().V1().Services().Lister()
	r.spaces = r.factory.Core().V1().Namespaces().Lister()
	r.queue = workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 5*time.Second))
	r.svcQueue = workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 5*time.Second))
	enqueue := func(q workqueue.TypedRateLimitingInterface[string]) cache.ResourceEventHandler {
		add := func(obj any) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				q.Add(key)
			}
		}
		return cache.ResourceEventHandlerFuncs{AddFunc: add, UpdateFunc: func(_, o any) { add(o) }, DeleteFunc: add}
	}
	podInf := r.factory.Core().V1().Pods().Informer()
	podInf.AddEventHandler(enqueue(r.queue))
	// A pod that ended frees its resources for the pods waiting for them.
	podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(any) { r.enqueuePending() },
		UpdateFunc: func(_, o any) {
			if p, ok := o.(*corev1.Pod); ok && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
				r.enqueuePending()
			}
		},
	})
	r.factory.Core().V1().Services().Informer().AddEventHandler(enqueue(r.svcQueue))
	dns, err := startDNS(r, r.nodeIP)
	if err != nil {
		return nil, err
	}
	r.dns = dns
	return r, nil
}

// registerNode creates (or refreshes) the runner's Node, Ready, with the
// configured capacity.
func (r *runner) registerNode(ctx context.Context) error {
	cpu, err := resource.ParseQuantity(r.o.NodeCPU)
	if err != nil {
		return fmt.Errorf("localkube: Options.NodeCPU %q: %w", r.o.NodeCPU, err)
	}
	mem, err := resource.ParseQuantity(r.o.NodeMemory)
	if err != nil {
		return fmt.Errorf("localkube: Options.NodeMemory %q: %w", r.o.NodeMemory, err)
	}
	capacity := corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem, corev1.ResourcePods: resource.MustParse("1000")}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: r.node, Labels: map[string]string{
		"kubernetes.io/hostname": r.node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
		"node.kubernetes.io/instance-type": "localkube",
	}}}
	n, err := r.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		n, err = r.client.CoreV1().Nodes().Get(ctx, r.node, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("localkube: register node %s: %w", r.node, err)
	}
	now := apiNow()
	n.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity, Phase: corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "localkube's pod runner is ready", LastHeartbeatTime: now, LastTransitionTime: now}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: r.nodeIP}, {Type: corev1.NodeHostName, Address: r.node}},
		NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: KubeVersion, OperatingSystem: "linux", Architecture: "amd64", ContainerRuntimeVersion: "localkube://process"},
	}
	if _, err := r.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("localkube: report node %s ready: %w", r.node, err)
	}
	return nil
}

// run runs the runner until ctx ends.
func (r *runner) run(ctx context.Context) {
	r.factory.Start(ctx.Done())
	r.factory.WaitForCacheSync(ctx.Done())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for r.processNext(ctx, r.queue, r.syncPod) {
			}
		})
	}
	wg.Go(func() {
		for r.processNext(ctx, r.svcQueue, r.syncService) {
		}
	})
	wg.Go(func() { r.refreshTokens(ctx) })
	<-ctx.Done()
	r.queue.ShutDown()
	r.svcQueue.ShutDown()
	wg.Wait()
	r.factory.Shutdown()
}

func (r *runner) processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error) bool {
	key, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(key)
	if err := sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			r.log.Debug("localkube: retry", "key", key, "err", err)
		}
		q.AddRateLimited(key)
		return true
	}
	q.Forget(key)
	return true
}

// enqueuePending queues every unscheduled pod: resources were freed.
func (r *runner) enqueuePending() {
	pods, _ := r.pods.List(labels.Everything())
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			r.queue.Add(p.Namespace + "/" + p.Name)
		}
	}
}

// syncPod brings the pod namespace/name and its process in line.
func (r *runner) syncPod(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	pod, err := r.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		r.forgetName(key, "")
		return nil
	}
	if err != nil {
		return err
	}
	r.forgetName(key, pod.UID) // an older incarnation of the name
	if pod.Spec.NodeName == "" {
		return r.schedule(ctx, pod)
	}
	if pod.Spec.NodeName != r.node {
		return nil
	}
	r.mu.Lock()
	run := r.mu.runs[pod.UID]
	stopping := r.mu.stopping
	r.mu.Unlock()
	if stopping {
		return nil
	}
	if pod.DeletionTimestamp != nil {
		if run != nil {
			grace := 30 * time.Second
			if pod.DeletionGracePeriodSeconds != nil {
				grace = min(grace, time.Duration(*pod.DeletionGracePeriodSeconds)*time.Second)
			}
			r.kill(run, grace)
		}
		// As the kubelet does once the containers are gone: the final
		// delete, which removes the pod from the API.
		uid := pod.UID
		err := r.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete pod %s: %w", key, err)
		}
		return nil
	}
	if run == nil {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return nil
		}
		run = r.newRun(pod)
	}
	r.mu.Lock()
	never := run.state == (corev1.ContainerState{})
	creating := run.state.Waiting != nil && run.state.Waiting.Reason == reasonCreating
	needStart := run.proc == nil && !run.final && (never || creating) || run.restartPending
	r.mu.Unlock()
	if needStart {
		if err := r.startPod(ctx, pod, run); err != nil {
			r.updateStatus(ctx, pod, run)
			return err // retried: a ConfigMap or Secret not there yet
		}
	}
	return r.updateStatus(ctx, pod, run)
}

// forgetName kills and forgets the runs of the name key other than uid
// (all of them for uid ""): the pod was deleted without the grace the
// runner acts on (a forced delete).
func (r *runner) forgetName(key string, uid types.UID) {
	r.mu.Lock()
	var stale []*podRun
	for id, run := range r.mu.runs {
		if run.namespace+"/"+run.name == key && id != uid {
			stale = append(stale, run)
		}
	}
	r.mu.Unlock()
	for _, run := range stale {
		r.kill(run, 0)
		r.mu.Lock()
		delete(r.mu.runs, run.uid)
		r.mu.Unlock()
	}
}

func (r *runner) newRun(pod *corev1.Pod) *podRun {
	main := mainContainer(pod)
	cpu, mem := podRequests(pod)
	dir := filepath.Join(r.c.Dir, "pods", pod.Namespace, pod.Name+"-"+string(pod.UID)[:8])
	run := &podRun{
		uid: pod.UID, namespace: pod.Namespace, name: pod.Name,
		dir: dir, root: filepath.Join(dir, "root"),
		container: main.Name, image: main.Image,
		startTime: apiNow(), cpu: cpu, mem: mem,
	}
	run.readyChanged = run.startTime
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.mu.runs[pod.UID]; ok {
		return old
	}
	r.mu.runs[pod.UID] = run
	r.mu.byName[pod.Namespace+"/"+pod.Name] = pod.UID
	return run
}

// mainContainer is the container named spate-main, else the first.
func mainContainer(pod *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == MainContainer {
			return &pod.Spec.Containers[i]
		}
	}
	return &pod.Spec.Containers[0]
}

// podRequests sums the pod's containers' requests (milli-CPU, bytes).
func podRequests(pod *corev1.Pod) (cpu, mem int64) {
	for _, c := range pod.Spec.Containers {
		if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
			cpu += q.MilliValue()
		}
		if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
			mem += q.Value()
		}
	}
	return cpu, mem
}

// schedule binds the pod to the runner's Node if it fits, as the
// scheduler would; otherwise it reports the pod Unschedulable.
func (r *runner) schedule(ctx context.Context, pod *corev1.Pod) error {
	if s := pod.Spec.SchedulerName; s != "" && s != corev1.DefaultSchedulerName {
		return nil
	}
	if pod.DeletionTimestamp != nil {
		return nil
	}
	reason := r.unschedulable(pod)
	if reason == "" {
		err := r.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: r.node},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("bind pod %s/%s to %s: %w", pod.Namespace, pod.Name, r.node, err)
		}
		return nil
	}
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: "0/1 nodes are available: " + reason + "."}
	for _, c := range pod.Status.Conditions {
		if c.Type == cond.Type && c.Status == cond.Status && c.Message == cond.Message {
			return nil
		}
	}
	p := pod.DeepCopy()
	cond.LastTransitionTime = apiNow()
	setCondition(&p.Status, cond)
	p.Status.Phase = corev1.PodPending
	_, err := r.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// unschedulable says why the pod does not fit the Node ("" if it does):
// its node selector, or its requests on top of those of the pods bound to
// the Node and not finished.
func (r *runner) unschedulable(pod *corev1.Pod) string {
	nodeLabels := map[string]string{"kubernetes.io/hostname": r.node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
	for k, v := range pod.Spec.NodeSelector {
		if nodeLabels[k] != v {
			return "1 node(s) didn't match Pod's node affinity/selector"
		}
	}
	cpu, mem := podRequests(pod)
	all, _ := r.pods.List(labels.Everything())
	for _, p := range all {
		if p.Spec.NodeName == r.node && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			c, m := podRequests(p)
			cpu += c
			mem += m
		}
	}
	var why []string
	if q := resource.MustParse(r.o.NodeCPU); cpu > q.MilliValue() {
		why = append(why, "1 Insufficient cpu")
	}
	if q := resource.MustParse(r.o.NodeMemory); mem > q.Value() {
		why = append(why, "1 Insufficient memory")
	}
	return strings.Join(why, ", ")
}

const reasonCreating = "ContainerCreating"

// startPod starts (or restarts) the pod's main container.
func (r *runner) startPod(ctx context.Context, pod *corev1.Pod, run *podRun) error {
	main := mainContainer(pod)
	imageRoot, known := r.o.Images[main.Image]
	if !known {
		imageRoot = r.o.ImageRoot
		known = r.o.Images == nil || imageRoot != ""
	}
	waiting := func(reason, msg string) {
		r.mu.Lock()
		run.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
		r.mu.Unlock()
	}
	if !known {
		waiting("ErrImagePull", fmt.Sprintf("localkube: image %q is not known to the runner (Options.Images, Options.ImageRoot)", main.Image))
		return nil
	}
	r.mu.Lock()
	if run.ip == "" {
		run.ip = r.allocIPLocked()
	}
	restart := run.restartPending
	run.restartPending = false
	r.mu.Unlock()
	if run.ip == "" {
		waiting(reasonCreating, "localkube: no free pod address")
		return fmt.Errorf("no free pod address for %s/%s", pod.Namespace, pod.Name)
	}
	if !restart {
		if err := r.materialize(ctx, pod, main, run, imageRoot); err != nil {
			waiting(reasonCreating, err.Error())
			return err
		}
	}
	env, err := r.environment(ctx, pod, main, run)
	if err != nil {
		waiting("CreateContainerConfigError", err.Error())
		return err
	}
	argv := append(append([]string(nil), main.Command...), main.Args...)
	if len(main.Command) == 0 {
		argv = append(append([]string(nil), r.o.Entrypoint...), main.Args...)
	}
	argv = expandAll(argv, env)
	if len(argv) == 0 {
		r.terminated(run, 128, "StartError", "localkube: the container has no command and Options.Entrypoint is empty")
		return nil
	}
	bin := r.resolveCommand(argv[0], run)
	cwd := run.root
	if main.WorkingDir != "" {
		cwd = filepath.Join(run.root, main.WorkingDir)
		os.MkdirAll(cwd, 0o755)
	}
	f, err := openLog(filepath.Join(run.dir, "main.log"))
	if err != nil {
		return err
	}
	var out io.WriteCloser = f
	if r.o.PodOutput != nil {
		out = prefixed(f, r.o.PodOutput, pod.Namespace+"/"+pod.Name+": ")
	}
	p, err := r.c.spawner.start(pod.Namespace+"/"+pod.Name, bin, argv[1:], envList(env), cwd, out)
	if err != nil {
		r.terminated(run, 128, "StartError", err.Error())
		return nil
	}
	now := apiNow()
	r.mu.Lock()
	run.proc = p
	run.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	run.readyChanged = now
	r.mu.Unlock()
	r.log.Debug("localkube: started pod", "pod", pod.Namespace+"/"+pod.Name, "ip", run.ip, "pid", p.cmd.Process.Pid, "argv", argv)
	go r.watchExit(pod, run, p)
	return nil
}

// watchExit records the process's exit and restarts it per the pod's
// restart policy.
func (r *runner) watchExit(pod *corev1.Pod, run *podRun, p *proc) {
	<-p.done
	p.reap() // what the main process left behind in its group
	code := p.exitCode()
	r.mu.Lock()
	if run.proc != p {
		r.mu.Unlock()
		return
	}
	started := run.state.Running
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	st := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: reason, FinishedAt: apiNow(), ContainerID: containerID(p)}}
	if started != nil {
		st.Terminated.StartedAt = started.StartedAt
	}
	st.Terminated.Message = terminationMessage(mainContainer(pod), run, code)
	run.state = st
	run.readyChanged = apiNow()
	run.proc = nil
	policy := pod.Spec.RestartPolicy
	again := !run.deleting && (policy == corev1.RestartPolicyAlways || policy == "" || policy == corev1.RestartPolicyOnFailure && code != 0)
	run.final = !again
	restarts := run.restarts
	r.mu.Unlock()
	key := pod.Namespace + "/" + pod.Name
	if again {
		// The kubelet's crash-loop back-off: 1s, 2s, 4s, … at most 10s here.
		delay := min(time.Second<<min(restarts, 4), 10*time.Second)
		time.AfterFunc(delay, func() {
			r.mu.Lock()
			if !run.deleting && !r.mu.stopping {
				run.lastState = run.state
				run.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
				run.restarts++
				run.restartPending = true
			}
			r.mu.Unlock()
			r.queue.Add(key)
		})
	} else {
		r.releaseIP(run)
	}
	r.queue.Add(key)
}

// terminationMessage is what the kubelet reports as a terminated
// container's message: the file at its terminationMessagePath (under the
// pod's root), else, under FallbackToLogsOnError and a failure, the end of
// its output (80 lines, 2 KiB at most).
func terminationMessage(c *corev1.Container, run *podRun, code int) string {
	path := c.TerminationMessagePath
	if path == "" {
		path = corev1.TerminationMessagePathDefault
	}
	if b, err := os.ReadFile(filepath.Join(run.root, path)); err == nil && len(b) > 0 {
		if len(b) > 4096 {
			b = b[:4096]
		}
		return string(b)
	}
	if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError || code == 0 {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(run.dir, "main.log"))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	msg := strings.Join(lines, "\n")
	if len(msg) > 2048 {
		msg = msg[len(msg)-2048:]
	}
	return msg
}

func (r *runner) terminated(run *podRun, code int32, reason, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := apiNow()
	run.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg, StartedAt: now, FinishedAt: now}}
	run.final = true
}

func containerID(p *proc) string {
	return "localkube://" + strconv.Itoa(p.cmd.Process.Pid)
}

// kill stops the run's process (SIGTERM, SIGKILL after grace) and waits
// until none of its processes is left.
func (r *runner) kill(run *podRun, grace time.Duration) {
	r.mu.Lock()
	run.deleting = true
	p := run.proc
	r.mu.Unlock()
	if p != nil {
		p.stop(grace)
	}
	r.releaseIP(run)
}

// stopAll kills every pod's processes: the cluster is closing.
func (r *runner) stopAll() {
	r.mu.Lock()
	r.mu.stopping = true
	var runs []*podRun
	for _, run := range r.mu.runs {
		runs = append(runs, run)
	}
	proxies := r.mu.proxies
	r.mu.proxies = map[string]*svcProxy{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() { r.kill(run, 5*time.Second) })
	}
	wg.Wait()
	for _, p := range proxies {
		p.close()
	}
	r.dns.close()
}

func (r *runner) podDir(namespace, name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if run, ok := r.mu.runs[r.mu.byName[namespace+"/"+name]]; ok {
		return run.dir
	}
	return ""
}

// allocIPLocked hands out the next free pod address 127.X.0.2 … 127.X.254.254
// (127.X.255.0/24 is the Services'), not reusing one soon.
func (r *runner) allocIPLocked() string {
	const first, n = 2, 254*256 - 2
	for range n {
		i := first + r.mu.nextIP%n
		r.mu.nextIP++
		ip := fmt.Sprintf("127.%d.%d.%d", r.net, i/256, i%256)
		if i%256 == 0 || i%256 == 255 || r.mu.ipUsed[ip] {
			continue
		}
		r.mu.ipUsed[ip] = true
		return ip
	}
	return ""
}

func (r *runner) releaseIP(run *podRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if run.ip != "" && run.final || run.deleting {
		delete(r.mu.ipUsed, run.ip)
	}
}

// updateStatus writes the run's state as the pod's status, if it changed.
func (r *runner) updateStatus(ctx context.Context, pod *corev1.Pod, run *podRun) error {
	r.mu.Lock()
	st := r.statusLocked(pod, run)
	r.mu.Unlock()
	if apiequality.Semantic.DeepEqual(st, pod.Status) {
		return nil
	}
	r.statusWrites.Add(1)
	p := pod.DeepCopy()
	p.Status = st
	_, err := r.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// statusLocked is the pod status the run's state stands for.
func (r *runner) statusLocked(pod *corev1.Pod, run *podRun) corev1.PodStatus {
	st := corev1.PodStatus{
		HostIP: r.nodeIP, HostIPs: []corev1.HostIP{{IP: r.nodeIP}},
		StartTime: &run.startTime, QOSClass: pod.Status.QOSClass,
	}
	if run.ip != "" && !run.final {
		st.PodIP, st.PodIPs = run.ip, []corev1.PodIP{{IP: run.ip}}
	} else if run.ip != "" && run.final {
		st.PodIP, st.PodIPs = run.ip, []corev1.PodIP{{IP: run.ip}} // as the kubelet keeps it
	}
	running := run.state.Running != nil
	switch {
	case running:
		st.Phase = corev1.PodRunning
	case run.final && run.state.Terminated != nil && run.state.Terminated.ExitCode == 0:
		st.Phase = corev1.PodSucceeded
	case run.final:
		st.Phase = corev1.PodFailed
	case run.restarts > 0 || run.restartPending || run.state.Terminated != nil:
		st.Phase = corev1.PodRunning // between restarts
	default:
		st.Phase = corev1.PodPending
	}
	ready := corev1.ConditionFalse
	if running {
		ready = corev1.ConditionTrue
	}
	started := run.startTime
	st.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: started},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: started},
		{Type: corev1.PodReady, Status: ready, LastTransitionTime: run.readyChanged},
		{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: run.readyChanged},
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: started},
	}
	for _, c := range pod.Spec.Containers {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "localkube://" + c.Image}
		if c.Name == run.container {
			cs.State, cs.LastTerminationState, cs.RestartCount, cs.Ready = run.state, run.lastState, run.restarts, running
			cs.Started = &running
			if run.proc != nil {
				cs.ContainerID = containerID(run.proc)
			}
		} else {
			cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "NotRun",
				Message: "localkube runs only the main container " + run.container}}
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	if t := run.state.Terminated; run.final && t != nil && t.ExitCode != 0 {
		st.Message = fmt.Sprintf("container %s exited with code %d (%s)", run.container, t.ExitCode, t.Reason)
	}
	return st
}

func setCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// resolveCommand finds the program: an absolute path in the image (the
// pod's root) if it is there, else on the host.
func (r *runner) resolveCommand(cmd string, run *podRun) string {
	if filepath.IsAbs(cmd) {
		if _, err := os.Stat(filepath.Join(run.root, cmd)); err == nil {
			return filepath.Join(run.root, cmd)
		}
	}
	return cmd
}

// prefixed writes to f, and line by line with a prefix to w.
func prefixed(f io.WriteCloser, w io.Writer, prefix string) io.WriteCloser {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintf(w, "%s%s\n", prefix, sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	return &teeCloser{f: f, pw: pw, done: done}
}

type teeCloser struct {
	f    io.WriteCloser
	pw   *io.PipeWriter
	done chan struct{}
}

func (t *teeCloser) Write(p []byte) (int, error) {
	n, err := t.f.Write(p)
	t.pw.Write(p)
	return n, err
}

func (t *teeCloser) Close() error {
	t.pw.Close()
	<-t.done
	return t.f.Close()
}

// apiNow is the time as the API stores it (whole seconds), so that a
// status the runner computes again equals the one it wrote and no
// needless update is sent.
func apiNow() metav1.Time {
	return metav1.NewTime(time.Now().UTC().Truncate(time.Second))
}
