package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/provider"
)

// Provider creates the TaskManager pods of the cluster its JobManager
// runs in: the JobManager side of the Kubernetes provider. It watches the
// cluster's TaskManager pods and reports those that failed, were evicted,
// could not start or were deleted as ended TaskManagers.
//
//	StartTaskManager ──create pod──▶ Pending ──▶ Running ──▶ registers
//	   Failed | Succeeded | cannot start | deleted ──▶ Exits ──▶ pod deleted
//	StopTaskManager ──delete pod──▶ gone ──▶ Exits
type Provider struct {
	client  kubernetes.Interface
	opts    Options
	owner   metav1.OwnerReference
	attempt int
	log     *slog.Logger
	exits   chan provider.Exit
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      struct {
		sync.Mutex
		next   int
		pods   map[string]*tmPod // by TaskManager id
		byName map[string]*tmPod // by pod name
		closed bool
	}
}

// tmPod is a TaskManager pod the provider created.
type tmPod struct {
	id, name string
	// gone is closed once the pod is reported ended.
	gone     chan struct{}
	reported bool
	// pending says why the pod does not run yet, for diagnostics.
	pending string
}

var _ provider.Provider = (*Provider)(nil)

// NewProvider returns the provider of the cluster opts names, whose
// JobManager Deployment must exist (its pods are its dependents). The
// TaskManager pods a previous JobManager of the cluster left are deleted:
// they cannot be taken over, and this JobManager's attempt number, in its
// pods' names, is one above theirs.
func NewProvider(ctx context.Context, kc kubernetes.Interface, opts Options, log *slog.Logger) (*Provider, error) {
	if log == nil {
		log = slog.Default()
	}
	ns := opts.Namespace
	dep, err := kc.AppsV1().Deployments(ns).Get(ctx, opts.ClusterID, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("kubernetes provider: get the JobManager Deployment %s/%s, owner of the TaskManager pods: %w", ns, opts.ClusterID, explain(err))
	}
	p := &Provider{client: kc, opts: opts, owner: OwnerReference(dep), attempt: 1, log: log, exits: make(chan provider.Exit, 64)}
	p.mu.pods, p.mu.byName = map[string]*tmPod{}, map[string]*tmPod{}
	old, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: p.selector()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes provider: list the TaskManager pods of cluster %s: %w", opts.ClusterID, explain(err))
	}
	prefix := opts.ClusterID + "-taskmanager-"
	for _, pod := range old.Items {
		if a, _, ok := strings.Cut(strings.TrimPrefix(pod.Name, prefix), "-"); ok {
			if n, err := strconv.Atoi(a); err == nil && n >= p.attempt {
				p.attempt = n + 1
			}
		}
		log.Info("kubernetes provider: deleting a previous JobManager's TaskManager pod", "pod", pod.Name)
		if err := kc.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("kubernetes provider: delete the previous TaskManager pod %s/%s: %w", ns, pod.Name, explain(err))
		}
	}
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	rv := old.ResourceVersion
	p.wg.Add(1)
	go p.watch(rv)
	return p, nil
}

func (p *Provider) selector() string {
	return ClusterSelector(p.opts.ClusterID) + "," + LabelComponent + "=" + ComponentTaskManager
}

// Attempt is this JobManager's attempt number, in its pods' names.
func (p *Provider) Attempt() int { return p.attempt }

// PodName is the name of TaskManager id's pod, "" if it has none.
func (p *Provider) PodName(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.mu.pods[id]; t != nil {
		return t.name
	}
	return ""
}

// StartTaskManager creates a TaskManager pod that registers with the
// JobManager as spec.ID.
func (p *Provider) StartTaskManager(ctx context.Context, spec provider.TaskManagerSpec) error {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return errors.New("kubernetes provider is closed")
	}
	if _, dup := p.mu.pods[spec.ID]; dup {
		p.mu.Unlock()
		return fmt.Errorf("kubernetes provider: taskmanager %s already has a pod", spec.ID)
	}
	p.mu.next++
	t := &tmPod{id: spec.ID, name: TaskManagerPodName(p.opts.ClusterID, p.attempt, p.mu.next), gone: make(chan struct{})}
	p.mu.pods[spec.ID], p.mu.byName[t.name] = t, t
	p.mu.Unlock()
	pod := p.opts.TaskManagerPod(t.name, TaskManagerArgs(spec), p.owner)
	created, err := p.client.CoreV1().Pods(p.opts.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		p.forget(t)
		return fmt.Errorf("create TaskManager pod %s/%s: %w", p.opts.Namespace, t.name, explain(err))
	}
	if err := p.podTLS(ctx, created, spec.ID); err != nil {
		// The pod waits for a Secret that will not come: it goes.
		p.forget(t)
		if derr := p.client.CoreV1().Pods(p.opts.Namespace).Delete(context.WithoutCancel(ctx), t.name, metav1.DeleteOptions{}); derr != nil && !apierrors.IsNotFound(derr) {
			err = errors.Join(err, fmt.Errorf("and deleting its pod: %w", explain(derr)))
		}
		return err
	}
	p.log.Info("kubernetes provider: created a TaskManager pod", "taskmanager", spec.ID, "pod", t.name)
	return nil
}

// podTLS gives TaskManager pod, of TaskManager id, its own certificate:
// issued by the cluster's CA for id, in the pod's Secret
// (TaskManagerTLSSecret), owned by the pod and so removed with it. The
// Secret comes after the pod, whose owner it needs; the kubelet mounts
// it once it exists. Nothing without the CA (no internal TLS).
func (p *Provider) podTLS(ctx context.Context, pod *corev1.Pod, id string) error {
	ca := p.opts.CA
	if ca == nil {
		return nil
	}
	kp, err := ca.Issue(pki.Identity{Role: pki.RoleTaskManager, Name: id}, nil)
	if err != nil {
		return fmt.Errorf("certificate of TaskManager pod %s: %w", pod.Name, err)
	}
	ks, err := kp.PEM()
	if err != nil {
		return fmt.Errorf("certificate of TaskManager pod %s: %w", pod.Name, err)
	}
	s := p.opts.TaskManagerTLSSecret(pod, ks, pki.CertPEM(ca.Cert.Raw))
	if _, err := p.client.CoreV1().Secrets(p.opts.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Secret %s/%s of TaskManager pod %s: %w", p.opts.Namespace, s.Name, pod.Name, explain(err))
	}
	return nil
}

// TaskManagerArgs is the command line of a TaskManager pod's main
// container: its configuration comes from the cluster's ConfigMap.
func TaskManagerArgs(spec provider.TaskManagerSpec) []string {
	return []string{"taskmanager", "--jobmanager", spec.JobManager, "--slots", strconv.Itoa(spec.Slots),
		"--exit-on-jobmanager-loss", "-D", "taskmanager.resource-id=" + spec.ID,
		// Until this provider mounts the configuration for the workers'
		// own users (docs/security.md).
		"-D", "taskmanager.worker.uid-range=none"}
}

func (p *Provider) forget(t *tmPod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.mu.pods, t.id)
	delete(p.mu.byName, t.name)
}

// StopTaskManager deletes TaskManager id's pod and waits until it is
// reported gone, or ctx ends.
func (p *Provider) StopTaskManager(ctx context.Context, id string) error {
	p.mu.Lock()
	t := p.mu.pods[id]
	p.mu.Unlock()
	if t == nil {
		return nil
	}
	if err := p.client.CoreV1().Pods(p.opts.Namespace).Delete(ctx, t.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete TaskManager pod %s/%s: %w", p.opts.Namespace, t.name, explain(err))
	}
	select {
	case <-t.gone:
	case <-ctx.Done():
	}
	return nil
}

// Exits reports ended TaskManagers.
func (p *Provider) Exits() <-chan provider.Exit { return p.exits }

// Pending tells why TaskManager id's pod does not run yet ("" if it runs
// or is unknown): unschedulable, its image still being pulled, ...
func (p *Provider) Pending(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.mu.pods[id]; t != nil {
		return t.pending
	}
	return ""
}

// Close deletes every TaskManager pod still there, waits a little for
// them to go, and stops watching.
func (p *Provider) Close() error {
	p.mu.Lock()
	already := p.mu.closed
	p.mu.closed = true
	var left []*tmPod
	for _, t := range p.mu.pods {
		left = append(left, t)
	}
	p.mu.Unlock()
	if already {
		return nil
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	var errs []error
	for _, t := range left {
		if err := p.client.CoreV1().Pods(p.opts.Namespace).Delete(ctx, t.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete TaskManager pod %s: %w", t.name, explain(err)))
		}
	}
	for _, t := range left {
		select {
		case <-t.gone:
		case <-ctx.Done():
		}
	}
	p.cancel()
	p.wg.Wait()
	return errors.Join(errs...)
}

// watch follows the cluster's TaskManager pods from resource version rv,
// watching again (after a list) when the watch ends, until Close.
func (p *Provider) watch(rv string) {
	defer p.wg.Done()
	pods := p.client.CoreV1().Pods(p.opts.Namespace)
	for p.ctx.Err() == nil {
		w, err := pods.Watch(p.ctx, metav1.ListOptions{LabelSelector: p.selector(), ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.log.Warn("kubernetes provider: watch the TaskManager pods", "err", err)
			rv = p.resync()
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		expired := false
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				// Most often 410 Gone: the resource version is too old.
				expired = true
				break
			}
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			rv = pod.ResourceVersion
			switch ev.Type {
			case watch.Deleted:
				p.ended(pod.Name, fmt.Sprintf("pod %s was deleted", pod.Name), false)
			case watch.Added, watch.Modified:
				p.observe(pod)
			}
		}
		w.Stop()
		if expired {
			rv = p.resync()
		}
	}
}

// resync lists the pods, reports those of ours that are gone or ended,
// and returns the list's resource version to watch from.
func (p *Provider) resync() string {
	list, err := p.client.CoreV1().Pods(p.opts.Namespace).List(p.ctx, metav1.ListOptions{LabelSelector: p.selector()})
	if err != nil {
		return ""
	}
	seen := map[string]bool{}
	for i := range list.Items {
		seen[list.Items[i].Name] = true
		p.observe(&list.Items[i])
	}
	p.mu.Lock()
	var missing []string
	for name := range p.mu.byName {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	p.mu.Unlock()
	for _, name := range missing {
		p.ended(name, fmt.Sprintf("pod %s was deleted", name), false)
	}
	return list.ResourceVersion
}

// observe reports a pod of ours that ended or cannot start, and notes
// why one waits.
func (p *Provider) observe(pod *corev1.Pod) {
	if why := podEnded(pod); why != "" {
		if pod.DeletionTimestamp != nil {
			return // reported when it is gone
		}
		p.ended(pod.Name, why, true)
		return
	}
	p.mu.Lock()
	if t := p.mu.byName[pod.Name]; t != nil {
		t.pending = podPending(pod)
	}
	p.mu.Unlock()
}

// ended reports pod name's TaskManager as ended, once; remove deletes the
// pod (a failed pod stays until deleted).
func (p *Provider) ended(name, reason string, remove bool) {
	p.mu.Lock()
	t := p.mu.byName[name]
	if t == nil || t.reported {
		p.mu.Unlock()
		return
	}
	t.reported = true
	delete(p.mu.pods, t.id)
	delete(p.mu.byName, t.name)
	close(t.gone)
	p.mu.Unlock()
	p.log.Warn("kubernetes provider: TaskManager pod ended", "taskmanager", t.id, "pod", name, "reason", reason)
	// The resource manager says "its process " and the reason.
	reason = "ended: " + reason
	if remove {
		if err := p.client.CoreV1().Pods(p.opts.Namespace).Delete(p.ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) && p.ctx.Err() == nil {
			p.log.Warn("kubernetes provider: delete an ended TaskManager pod", "pod", name, "err", err)
		}
	}
	select {
	case p.exits <- provider.Exit{ID: t.id, Reason: reason}:
	default:
		p.log.Warn("kubernetes provider: exit not reported, the queue is full", "taskmanager", t.id)
	}
}
