package kubernetes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/provider"
)

// LocalScheme prefixes the path of a program in the image, which an
// application cluster runs (Flink's local:///opt/flink/usrlib/job.jar).
const LocalScheme = "local://"

// KeyShutdownOnApplicationFinish is the JobManager's key that keeps an
// attached application's cluster after main, for its client to read the
// jobs' output before it deletes the cluster.
const keyShutdownOnApplicationFinish = "execution.shutdown-on-application-finish"

// Deployer creates and deletes clusters of pods: the client side of the
// Kubernetes provider.
type Deployer struct {
	// Client talks to the API server; nil reads the kubeconfig
	// (kubernetes.config.file of Config, $KUBECONFIG, ~/.kube/config, or
	// in-cluster).
	Client kubernetes.Interface
	// Config holds the kubernetes.* entries Kill and Sessions read
	// (namespace, kubeconfig); Deploy reads its spec's.
	Config map[string]string
	// StartTimeout bounds the wait for the JobManager's REST API when
	// Deploy's context has no deadline; 3 min if zero (an image pull).
	StartTimeout time.Duration
}

var _ provider.Deployer = Deployer{}

func (d Deployer) client(conf config.Config) (kubernetes.Interface, error) {
	if d.Client != nil {
		return d.Client, nil
	}
	return NewClient(conf.String(KeyKubeConfig, ""))
}

func configOf(entries map[string]string) config.Config {
	var c config.Config
	for k, v := range entries {
		c.Set(k, v)
	}
	return c
}

// Deploy creates a cluster's objects and returns once its JobManager's
// REST API answers. Its id is kubernetes.cluster-id, generated if unset.
// A cluster that cannot start (forbidden, invalid, quota, an image that
// cannot be pulled, a JobManager that exits) is deleted and the error
// names the object and the cause.
func (d Deployer) Deploy(ctx context.Context, spec provider.ClusterSpec) (provider.Cluster, error) {
	conf := configOf(spec.Config)
	opts, err := OptionsFrom(conf, true)
	if err != nil {
		return nil, fmt.Errorf("deploy a Kubernetes cluster: %w", err)
	}
	kc, err := d.client(conf)
	if err != nil {
		return nil, fmt.Errorf("deploy cluster %s: %w", opts.ClusterID, err)
	}
	entries := conf.ClusterEntries()
	var mode string
	var extra []string
	if spec.TaskManagers > 0 {
		extra = append(extra, "--taskmanagers", strconv.Itoa(spec.TaskManagers))
	}
	switch spec.Mode {
	case provider.Session:
		mode = ModeSession
	case provider.PerJob:
		mode = ModePerJob
		// The JobManager deletes the cluster after its job. Attached, it
		// waits first for two acknowledgements of the result (the
		// program's, and the client's once it has the job's output from
		// the TaskManagers), or ResultLinger.
		extra = append(extra, "--per-job")
		if spec.ResultLinger > 0 {
			extra = append(extra, "--result-linger", spec.ResultLinger.String())
			if !spec.RemoveWhenDone {
				extra = append(extra, "--result-acks", "2")
			}
		}
	case provider.Application:
		mode = ModeApplication
		path, ok := strings.CutPrefix(spec.Artifact, LocalScheme)
		if !ok || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("deploy application cluster %s: program %q: the kubernetes-application target runs a program already in the image: name it local:///path/in/image", opts.ClusterID, spec.Artifact)
		}
		if !spec.RemoveWhenDone {
			entries[keyShutdownOnApplicationFinish] = "false"
		}
		extra = append(append(extra, "--application", spec.Artifact, "--"), spec.Args...)
	default:
		return nil, fmt.Errorf("deploy cluster %s: unknown mode %d", opts.ClusterID, spec.Mode)
	}
	dep := opts.JobManagerDeployment(mode, JobManagerArgs(mode, extra...), spec.Env)
	if _, err := kc.AppsV1().Deployments(opts.Namespace).Get(ctx, dep.Name, metav1.GetOptions{}); err == nil {
		return nil, fmt.Errorf("deploy cluster %s: Deployment %s/%s already exists: stop that cluster (spate session stop %s) or choose another %s", opts.ClusterID, opts.Namespace, dep.Name, opts.ClusterID, KeyClusterID)
	}
	// The Secrets first, so that the JobManager's pod finds them; they
	// are owned by the Deployment once that exists.
	var secrets []*corev1.Secret
	if s := opts.EnvSecret(spec.Env); s != nil {
		secrets = append(secrets, s)
	}
	var restTLS *tls.Config
	if opts.InternalTLS {
		s, err := clusterTLSSecret(opts)
		if err != nil {
			return nil, fmt.Errorf("deploy cluster %s: %w", opts.ClusterID, err)
		}
		secrets = append(secrets, s)
		if opts.RESTTLS {
			pool, _, err := pki.ParsePool(s.Data[TLSSecretTruststore])
			if err != nil {
				return nil, fmt.Errorf("deploy cluster %s: %w", opts.ClusterID, err)
			}
			restTLS = pki.RESTClientConfig(nil, pool)
		}
	}
	removeSecrets := func() {
		for _, s := range secrets {
			kc.CoreV1().Secrets(opts.Namespace).Delete(context.WithoutCancel(ctx), s.Name, metav1.DeleteOptions{})
		}
	}
	for _, s := range secrets {
		if _, err := kc.CoreV1().Secrets(opts.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			removeSecrets()
			return nil, fmt.Errorf("deploy cluster %s: create Secret %s/%s: %w", opts.ClusterID, opts.Namespace, s.Name, explain(err))
		}
	}
	created, err := kc.AppsV1().Deployments(opts.Namespace).Create(ctx, dep, metav1.CreateOptions{})
	if err != nil {
		removeSecrets()
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("deploy cluster %s: Deployment %s/%s already exists: stop that cluster (spate session stop %s) or choose another %s", opts.ClusterID, opts.Namespace, dep.Name, opts.ClusterID, KeyClusterID)
		}
		return nil, fmt.Errorf("deploy cluster %s: create Deployment %s/%s: %w", opts.ClusterID, opts.Namespace, dep.Name, explain(err))
	}
	c := &cluster{client: kc, opts: opts, tls: restTLS, done: make(chan struct{}), stopWatch: make(chan struct{})}
	fail := func(err error) (provider.Cluster, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := deleteCluster(dctx, kc, opts.Namespace, opts.ClusterID); derr != nil {
			err = errors.Join(err, fmt.Errorf("and removing it: %w", derr))
		}
		return nil, err
	}
	owner := OwnerReference(created)
	for _, secret := range secrets {
		s, err := kc.CoreV1().Secrets(opts.Namespace).Get(ctx, secret.Name, metav1.GetOptions{})
		if err == nil {
			s.OwnerReferences = []metav1.OwnerReference{owner}
			_, err = kc.CoreV1().Secrets(opts.Namespace).Update(ctx, s, metav1.UpdateOptions{})
		}
		if err != nil {
			return fail(fmt.Errorf("deploy cluster %s: make Secret %s/%s the Deployment's: %w", opts.ClusterID, opts.Namespace, secret.Name, explain(err)))
		}
	}
	cm, err := opts.ConfigMap(entries, owner)
	if err != nil {
		return fail(err)
	}
	if _, err := kc.CoreV1().ConfigMaps(opts.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fail(fmt.Errorf("deploy cluster %s: create ConfigMap %s/%s: %w", opts.ClusterID, opts.Namespace, cm.Name, explain(err)))
	}
	headless, rest := opts.Services(owner)
	for _, svc := range []*corev1.Service{headless, rest} {
		if _, err := kc.CoreV1().Services(opts.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return fail(fmt.Errorf("deploy cluster %s: create Service %s/%s: %w", opts.ClusterID, opts.Namespace, svc.Name, explain(err)))
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		timeout := d.StartTimeout
		if timeout <= 0 {
			timeout = 3 * time.Minute
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if c.rest, err = waitReady(ctx, kc, opts, c.tls); err != nil {
		return fail(fmt.Errorf("deploy cluster %s: %w", opts.ClusterID, err))
	}
	go c.watch()
	return c, nil
}

// waitReady waits until the REST API of cluster opts answers (over TLS
// with tc, unless nil) and returns its address, or fails as soon as the
// JobManager cannot start.
func waitReady(ctx context.Context, kc kubernetes.Interface, opts Options, tc *tls.Config) (string, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	podState, state := "the JobManager pod is not created yet", ""
	for n := 0; ; n++ {
		if n%10 == 0 {
			// The JobManager's pod, and why it may never come.
			why, fatal, err := jobManagerState(ctx, kc, opts)
			if err != nil && ctx.Err() == nil {
				return "", err
			}
			if fatal {
				return "", errors.New(why)
			}
			if err == nil {
				podState = why
			}
		}
		if addr, err := RESTAddress(ctx, kc, opts.Namespace, opts.ClusterID); err == nil && addr != "" {
			if c, err := client.New(addr, client.WithTimeout(time.Second), client.WithTLS(tc)); err == nil {
				if _, err := c.Overview(ctx); err == nil {
					return addr, nil
				}
				state = fmt.Sprintf("the REST API at %s does not answer yet", addr)
			}
		} else if err != nil {
			state = err.Error()
		}
		select {
		case <-ctx.Done():
			if podState != "" {
				// Why its pod does not run says more than its REST API.
				state = podState
			}
			return "", fmt.Errorf("the JobManager did not start: %w: %s", ctx.Err(), state)
		case <-tick.C:
		}
	}
}

// jobManagerState tells how the JobManager's pod fares: fatal if it will
// not start, else what it waits for ("" once it runs).
func jobManagerState(ctx context.Context, kc kubernetes.Interface, opts Options) (why string, fatal bool, err error) {
	d, err := kc.AppsV1().Deployments(opts.Namespace).Get(ctx, opts.ClusterID, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("Deployment %s/%s was deleted while the cluster started", opts.Namespace, opts.ClusterID), true, nil
		}
		return "", false, fmt.Errorf("get Deployment %s/%s: %w", opts.Namespace, opts.ClusterID, explain(err))
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			return fmt.Sprintf("Deployment %s/%s cannot create the JobManager pod: %s: %s", opts.Namespace, d.Name, c.Reason, c.Message), true, nil
		}
	}
	pods, err := kc.CoreV1().Pods(opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: ClusterSelector(opts.ClusterID) + "," + LabelComponent + "=" + ComponentJobManager})
	if err != nil {
		return "", false, fmt.Errorf("list the JobManager pods of cluster %s: %w", opts.ClusterID, explain(err))
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if why := podEnded(p); why != "" && p.DeletionTimestamp == nil {
			return "the JobManager " + why, true, nil
		}
		if s := mainStatus(p); s != nil && s.RestartCount > 0 {
			why := fmt.Sprintf("the JobManager in pod %s exited at start (restarted %d times)", p.Name, s.RestartCount)
			if t := s.LastTerminationState.Terminated; t != nil {
				why += fmt.Sprintf(" with code %d", t.ExitCode)
				if m := strings.TrimSpace(t.Message); m != "" {
					why += ": " + m
				}
			}
			return why + fmt.Sprintf("; see kubectl logs -n %s %s", opts.Namespace, p.Name), true, nil
		}
		if why := podPending(p); why != "" {
			return "the JobManager " + why, false, nil
		}
	}
	return "", false, nil
}

// RESTAddress is the address, host:port, a client reaches the REST
// Service of cluster id at: a LoadBalancer's ingress, a node's address
// and the NodePort, or the ClusterIP (reachable inside the cluster). It
// is "" while a LoadBalancer has no ingress yet.
func RESTAddress(ctx context.Context, kc kubernetes.Interface, namespace, id string) (string, error) {
	svc, err := kc.CoreV1().Services(namespace).Get(ctx, RESTServiceName(id), metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get Service %s/%s: %w", namespace, RESTServiceName(id), explain(err))
	}
	if len(svc.Spec.Ports) == 0 {
		return "", fmt.Errorf("Service %s/%s has no port", namespace, svc.Name)
	}
	port := svc.Spec.Ports[0]
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer:
		for _, in := range svc.Status.LoadBalancer.Ingress {
			host := in.IP
			if host == "" {
				host = in.Hostname
			}
			if host != "" {
				return net.JoinHostPort(host, strconv.Itoa(int(port.Port))), nil
			}
		}
		return "", nil
	case corev1.ServiceTypeNodePort:
		nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", fmt.Errorf("list the nodes for NodePort Service %s/%s: %w", namespace, svc.Name, explain(err))
		}
		for _, want := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP} {
			for _, n := range nodes.Items {
				for _, a := range n.Status.Addresses {
					if a.Type == want && a.Address != "" {
						return net.JoinHostPort(a.Address, strconv.Itoa(int(port.NodePort))), nil
					}
				}
			}
		}
		return "", fmt.Errorf("no node has an address for NodePort Service %s/%s", namespace, svc.Name)
	}
	return net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port.Port))), nil
}

// cluster is a cluster a Deployer created.
type cluster struct {
	client    kubernetes.Interface
	opts      Options
	rest      string
	tls       *tls.Config // the REST API's client TLS, nil for HTTP
	done      chan struct{}
	stopWatch chan struct{}
	stopOnce  sync.Once
	err       error // set before done closes
}

var _ provider.Cluster = (*cluster)(nil)

func (c *cluster) ID() string   { return c.opts.ClusterID }
func (c *cluster) REST() string { return c.rest }

// RESTTLS is the TLS configuration a REST client of the cluster uses,
// verifying its JobManager with the cluster's CA; nil if its REST API
// speaks HTTP (Options.RESTTLS).
func (c *cluster) RESTTLS() *tls.Config  { return c.tls }
func (c *cluster) Done() <-chan struct{} { return c.done }

func (c *cluster) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return errors.New("the cluster is still running")
	}
}

// watch closes done once the cluster's Deployment and every object with
// its label are gone (the JobManager deleted it, or someone else did).
func (c *cluster) watch() {
	defer close(c.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stopWatch:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		// One call while the Deployment is there; all the cluster's kinds
		// once it is gone, until the garbage collector is through.
		_, err := c.client.AppsV1().Deployments(c.opts.Namespace).Get(ctx, c.opts.ClusterID, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if left, err := Remaining(ctx, c.client, c.opts.Namespace, c.opts.ClusterID); err == nil && len(left) == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			c.err = errors.New("no longer watched")
			return
		case <-tick.C:
		}
	}
}

// Stop deletes the cluster and waits until nothing with its label is left.
func (c *cluster) Stop(ctx context.Context) error {
	err := deleteCluster(ctx, c.client, c.opts.Namespace, c.opts.ClusterID)
	if err != nil {
		c.stopOnce.Do(func() { close(c.stopWatch) })
		<-c.done
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.stopOnce.Do(func() { close(c.stopWatch) })
		<-c.done
		return fmt.Errorf("stop cluster %s: %w", c.opts.ClusterID, ctx.Err())
	}
}

// Kill deletes cluster id of the namespace Config names and waits until
// nothing with its label is left. A cluster already gone is no error.
func (d Deployer) Kill(ctx context.Context, id string) error {
	conf := configOf(d.Config)
	if err := ValidateClusterID(id); err != nil {
		return fmt.Errorf("kill cluster: %w", err)
	}
	kc, err := d.client(conf)
	if err != nil {
		return fmt.Errorf("kill cluster %s: %w", id, err)
	}
	return deleteCluster(ctx, kc, conf.String(KeyNamespace, DefaultNamespace), id)
}

// deleteCluster deletes cluster id's Deployment, the garbage collector
// then its dependents, and waits until nothing with its label is left.
// What the garbage collector would remove is deleted too, so that a
// cluster whose owner references are broken leaves nothing either.
func deleteCluster(ctx context.Context, kc kubernetes.Interface, ns, id string) error {
	bg := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{PropagationPolicy: &bg}
	var errs []error
	ignore := func(what string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", what, explain(err)))
		}
	}
	ignore("Deployment "+ns+"/"+id, kc.AppsV1().Deployments(ns).Delete(ctx, id, del))
	ignore("ConfigMap "+ns+"/"+ConfigMapName(id), kc.CoreV1().ConfigMaps(ns).Delete(ctx, ConfigMapName(id), del))
	ignore("Secret "+ns+"/"+EnvSecretName(id), kc.CoreV1().Secrets(ns).Delete(ctx, EnvSecretName(id), del))
	ignore("Secret "+ns+"/"+TLSSecretName(id), kc.CoreV1().Secrets(ns).Delete(ctx, TLSSecretName(id), del))
	// The TaskManager pods' own TLS Secrets go with their pods; those of
	// pods already gone, too.
	ignore("the Secrets of cluster "+id, kc.CoreV1().Secrets(ns).DeleteCollection(ctx, del, metav1.ListOptions{LabelSelector: ClusterSelector(id)}))
	ignore("Service "+ns+"/"+id, kc.CoreV1().Services(ns).Delete(ctx, id, del))
	ignore("Service "+ns+"/"+RESTServiceName(id), kc.CoreV1().Services(ns).Delete(ctx, RESTServiceName(id), del))
	sel := metav1.ListOptions{LabelSelector: ClusterSelector(id)}
	ignore("the ReplicaSets of cluster "+id, kc.AppsV1().ReplicaSets(ns).DeleteCollection(ctx, del, sel))
	ignore("the pods of cluster "+id, kc.CoreV1().Pods(ns).DeleteCollection(ctx, del, sel))
	if len(errs) > 0 {
		return fmt.Errorf("delete cluster %s: %w", id, errors.Join(errs...))
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		left, err := Remaining(ctx, kc, ns, id)
		if err == nil && len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("delete cluster %s: %w", id, err)
			}
			return fmt.Errorf("delete cluster %s: %w; still there: %s", id, ctx.Err(), strings.Join(left, ", "))
		case <-tick.C:
		}
	}
}

// Remaining lists the objects with cluster id's label, kind/name.
func Remaining(ctx context.Context, kc kubernetes.Interface, ns, id string) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: ClusterSelector(id)}
	var left []string
	deps, err := kc.AppsV1().Deployments(ns).List(ctx, sel)
	if err != nil {
		return nil, explain(err)
	}
	for _, o := range deps.Items {
		left = append(left, "deployment/"+o.Name)
	}
	rss, err := kc.AppsV1().ReplicaSets(ns).List(ctx, sel)
	if err != nil {
		return nil, explain(err)
	}
	for _, o := range rss.Items {
		left = append(left, "replicaset/"+o.Name)
	}
	pods, err := kc.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		return nil, explain(err)
	}
	for _, o := range pods.Items {
		left = append(left, "pod/"+o.Name)
	}
	svcs, err := kc.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		return nil, explain(err)
	}
	for _, o := range svcs.Items {
		left = append(left, "service/"+o.Name)
	}
	cms, err := kc.CoreV1().ConfigMaps(ns).List(ctx, sel)
	if err != nil {
		return nil, explain(err)
	}
	for _, o := range cms.Items {
		left = append(left, "configmap/"+o.Name)
	}
	secrets, err := kc.CoreV1().Secrets(ns).List(ctx, sel)
	if err != nil {
		return nil, explain(err)
	}
	for _, o := range secrets.Items {
		left = append(left, "secret/"+o.Name)
	}
	return left, nil
}

// Session is a cluster spate session list shows.
type Session struct {
	ID      string
	Mode    string
	REST    string
	Created time.Time
	// Ready tells whether the JobManager's pod is ready.
	Ready bool
}

// Sessions lists the clusters of the namespace Config names, found by
// their Deployments' labels; mode "" lists all modes.
func (d Deployer) Sessions(ctx context.Context, mode string) ([]Session, error) {
	conf := configOf(d.Config)
	kc, err := d.client(conf)
	if err != nil {
		return nil, err
	}
	ns := conf.String(KeyNamespace, DefaultNamespace)
	deps, err := kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelType + "=" + TypeValue + "," + LabelComponent + "=" + ComponentJobManager})
	if err != nil {
		return nil, fmt.Errorf("list the Spate clusters of namespace %s: %w", ns, explain(err))
	}
	var out []Session
	for _, dep := range deps.Items {
		m := dep.Annotations[AnnotationMode]
		if mode != "" && m != mode {
			continue
		}
		s := Session{ID: dep.Name, Mode: m, Created: dep.CreationTimestamp.Time, Ready: dep.Status.ReadyReplicas > 0}
		s.REST, _ = RESTAddress(ctx, kc, ns, dep.Name)
		out = append(out, s)
	}
	return out, nil
}

// Session returns the REST address of cluster id of the namespace Config
// names, an error naming it if there is none.
func (d Deployer) Session(ctx context.Context, id string) (string, error) {
	conf := configOf(d.Config)
	if err := ValidateClusterID(id); err != nil {
		return "", err
	}
	kc, err := d.client(conf)
	if err != nil {
		return "", err
	}
	ns := conf.String(KeyNamespace, DefaultNamespace)
	if _, err := kc.AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("no cluster %s in namespace %s (no Deployment %s): spate session list shows them", id, ns, id)
		}
		return "", fmt.Errorf("get Deployment %s/%s: %w", ns, id, explain(err))
	}
	addr, err := RESTAddress(ctx, kc, ns, id)
	if err != nil {
		return "", err
	}
	if addr == "" {
		return "", fmt.Errorf("cluster %s: LoadBalancer Service %s/%s has no ingress address yet", id, ns, RESTServiceName(id))
	}
	return addr, nil
}

// DeleteOwnDeployment deletes the JobManager Deployment of cluster opts,
// from the JobManager itself once its cluster's work is over (a per-job
// cluster's job, an application); the garbage collector deletes the rest,
// this pod included. Its service account needs delete on deployments.
func DeleteOwnDeployment(ctx context.Context, kc kubernetes.Interface, opts Options) error {
	bg := metav1.DeletePropagationBackground
	err := kc.AppsV1().Deployments(opts.Namespace).Delete(ctx, opts.ClusterID, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Deployment %s/%s: %w", opts.Namespace, opts.ClusterID, explain(err))
	}
	return nil
}

// clusterTLSSecret makes a cluster's CA and its JobManager's certificate
// and, with RESTTLS, its REST API's, and returns them as its TLS Secret.
// The CA (its key too) goes in the Secret for the JobManager, which
// issues each TaskManager pod its own certificate as it creates it
// (Provider.StartTaskManager).
func clusterTLSSecret(opts Options) (*corev1.Secret, error) {
	ca, err := pki.NewCA("spate cluster CA " + opts.ClusterID)
	if err != nil {
		return nil, err
	}
	// Members are told apart by certificates, not host names (pki).
	jm, err := ca.Issue(pki.Identity{Role: pki.RoleJobManager}, nil)
	if err != nil {
		return nil, err
	}
	jmPEM, err := jm.PEM()
	if err != nil {
		return nil, err
	}
	caPEM, err := ca.PEM()
	if err != nil {
		return nil, err
	}
	var restPEM []byte
	if opts.RESTTLS {
		rest, err := ca.Issue(pki.Identity{Role: pki.RoleJobManager}, RESTHosts(opts.ClusterID, opts.Namespace))
		if err != nil {
			return nil, err
		}
		if restPEM, err = rest.PEM(); err != nil {
			return nil, err
		}
	}
	return opts.TLSSecret(jmPEM, caPEM, pki.CertPEM(ca.Cert.Raw), restPEM), nil
}

// RESTHosts are the names the REST certificate of cluster id in
// namespace ns is for: its REST Service's and its JobManager Service's
// DNS names, short to fully qualified, and the loopback (kubectl
// port-forward).
func RESTHosts(id, ns string) []string {
	var hosts []string
	for _, svc := range []string{RESTServiceName(id), id} {
		hosts = append(hosts, svc, svc+"."+ns, svc+"."+ns+".svc", svc+"."+ns+".svc.cluster.local")
	}
	return append(hosts, "localhost", "127.0.0.1")
}

// RESTTrust returns the CA certificates of cluster id's TLS Secret, which
// a REST client of the cluster verifies its JobManager with: the client
// picks the CA up from the API server, where it put it at deploy.
func (d Deployer) RESTTrust(ctx context.Context, id string) (*x509.CertPool, error) {
	conf := configOf(d.Config)
	kc, err := d.client(conf)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", id, err)
	}
	ns := conf.String(KeyNamespace, DefaultNamespace)
	s, err := kc.CoreV1().Secrets(ns).Get(ctx, TLSSecretName(id), metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: read the CA of Secret %s/%s: %w", id, ns, TLSSecretName(id), explain(err))
	}
	pool, _, err := pki.ParsePool(s.Data[TLSSecretTruststore])
	if err != nil {
		return nil, fmt.Errorf("cluster %s: Secret %s/%s, key %s: %w", id, ns, TLSSecretName(id), TLSSecretTruststore, err)
	}
	return pool, nil
}
