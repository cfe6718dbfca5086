package localkube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configures a local cluster. Only Dir is required.
type Options struct {
	// Dir holds everything the cluster writes: kubeconfig, certs/, etcd/,
	// logs/ (one file per control-plane process) and pods/ (one directory
	// per pod, see the package doc). It is created if missing.
	Dir string
	// BinDir holds etcd, kube-apiserver and kube-controller-manager;
	// default EnsureBinaries(ctx, Build).
	BinDir string
	// Build configures the build when BinDir is empty.
	Build BuildOptions
	// ImageRoot is the file system of the container image, for every
	// image not in Images: `local://` paths, the command and the files a
	// pod sees under $LOCALKUBE_ROOT resolve through it. Empty: the host's
	// file system, with nothing mirrored.
	ImageRoot string
	// Images maps image names to their roots. When it is non-nil, a pod
	// whose image is neither in it nor covered by ImageRoot does not start:
	// its container waits with reason ErrImagePull, as a real kubelet's
	// does for an image it cannot pull.
	Images map[string]string
	// Entrypoint is the image's ENTRYPOINT, run for a container without a
	// command (its args follow). Empty: such a container fails to start.
	Entrypoint []string
	// PodEnv is added to every pod's environment ("KEY=value"), before the
	// pod's own variables. PATH, HOME, TMPDIR and GOCOVERDIR are passed
	// from this process's environment as well.
	PodEnv []string
	// PodOutput, when set, receives every pod process's output, each line
	// prefixed with "namespace/pod: ". It is also in the pod's directory.
	PodOutput io.Writer
	// NodeName is the name of the runner's Node; default "localkube".
	NodeName string
	// NodeCPU and NodeMemory are the Node's allocatable resources (pods
	// whose requests do not fit stay Pending as Unschedulable); default
	// "64" and "256Gi".
	NodeCPU, NodeMemory string
	// PodNetwork is the second octet X of the pods' addresses 127.X.0.2,
	// 127.X.0.3, …; default: a free one chosen at random, so that clusters
	// running at once (tests of several packages) do not collide.
	PodNetwork int
	// StartTimeout bounds Start's wait for the cluster to be ready;
	// default 2 minutes.
	StartTimeout time.Duration
	// Log receives the cluster's own log; default slog.Default().
	Log *slog.Logger
}

// Cluster is a running local cluster. Its fields are read-only.
type Cluster struct {
	// Dir is Options.Dir.
	Dir string
	// Kubeconfig is the path of DIR/kubeconfig, the admin's configuration.
	Kubeconfig string
	// Host is the API server's URL, https://127.0.0.1:<port>.
	Host string
	// Token is the admin's bearer token (group system:masters).
	Token string
	// CAFile is the CA that signed the API server's certificate.
	CAFile string
	// Config is the admin's client configuration.
	Config *rest.Config
	// Client is a client with Config.
	Client kubernetes.Interface
	// NodeName is the name of the runner's Node.
	NodeName string
	// PodNetwork is the pods' /16: pods get 127.X.0.2, 127.X.0.3, …, the
	// Node is 127.X.0.1, Services' addresses are 127.X.255.N.
	PodNetwork string

	log      *slog.Logger
	procs    []*proc // etcd, kube-apiserver, kube-controller-manager
	runner   *runner
	netClaim io.Closer
	spawner  *spawner
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{} // closed when the runner stopped
}

// DefaultServiceAccountIssuer is the issuer of the cluster's service
// account tokens.
const DefaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

const (
	serviceCIDR    = "10.96.0.0/16"
	firstServiceIP = "10.96.0.1"
)

// Start starts etcd, kube-apiserver, kube-controller-manager and the pod
// runner, writes DIR/kubeconfig, and returns once the API server is ready
// and the controllers have created the default namespace's service account
// and kube-root-ca.crt ConfigMap. On error, nothing it started is left.
// The caller must Close the cluster.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if o.Dir == "" {
		return nil, errors.New("localkube: Options.Dir is required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 2 * time.Minute
	}
	if o.NodeName == "" {
		o.NodeName = "localkube"
	}
	if o.NodeCPU == "" {
		o.NodeCPU = "64"
	}
	if o.NodeMemory == "" {
		o.NodeMemory = "256Gi"
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if o.BinDir == "" {
		if o.BinDir, err = EnsureBinaries(ctx, o.Build); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"logs", "pods", "etcd"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("localkube: create %s: %w", d, err)
		}
	}
	becomeSubreaper()
	c := &Cluster{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), NodeName: o.NodeName, log: o.Log,
		done: make(chan struct{}), spawner: newSpawner()}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	x, claim, err := claimPodNetwork(o.PodNetwork)
	if err != nil {
		return nil, err
	}
	c.netClaim = claim
	c.PodNetwork = fmt.Sprintf("127.%d", x)

	certs, err := writeCerts(filepath.Join(dir, "certs"))
	if err != nil {
		return nil, err
	}
	c.CAFile = certs.caCert
	c.Token = randomHex(16)
	tokens := filepath.Join(dir, "certs", "tokens.csv")
	if err := os.WriteFile(tokens, []byte(c.Token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return nil, fmt.Errorf("localkube: write the token file: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	if err := c.start("etcd", filepath.Join(o.BinDir, "etcd"),
		"--name=localkube",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=localkube="+peerURL,
		"--listen-metrics-urls=",
		"--log-level=warn",
		"--quota-backend-bytes=1073741824",
		"--unsafe-no-fsync",
	); err != nil {
		return nil, err
	}

	c.Host = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	if err := c.start("kube-apiserver", filepath.Join(o.BinDir, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--tls-cert-file="+certs.servingCert, "--tls-private-key-file="+certs.servingKey,
		"--service-account-key-file="+certs.saKey,
		"--service-account-signing-key-file="+certs.saKey,
		"--service-account-issuer="+DefaultServiceAccountIssuer,
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range="+serviceCIDR,
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=0",
	); err != nil {
		return nil, err
	}

	c.Config = &rest.Config{
		Host:            c.Host,
		BearerToken:     c.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: certs.caPEM},
		QPS:             100,
		Burst:           200,
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, fmt.Errorf("localkube: client: %w", err)
	}
	if err := writeKubeconfig(c.Kubeconfig, c.Host, certs.caPEM, c.Token); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}

	if err := c.start("kube-controller-manager", filepath.Join(o.BinDir, "kube-controller-manager"),
		"--kubeconfig="+c.Kubeconfig,
		"--controllers=deployment-controller,replicaset-controller,garbage-collector-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,namespace-controller,resourcequota-controller",
		"--root-ca-file="+certs.caCert,
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-deployment-syncs=5", "--concurrent-replicaset-syncs=5",
		"--v=0",
	); err != nil {
		return nil, err
	}

	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = rcancel
	c.runner, err = newRunner(c, o, x)
	if err != nil {
		return nil, err
	}
	if err := c.runner.registerNode(ctx); err != nil {
		return nil, err
	}
	go func() {
		defer close(c.done)
		c.runner.run(rctx)
	}()
	if err := c.waitControllers(ctx); err != nil {
		return nil, err
	}
	o.Log.Info("localkube: cluster ready", "kubeconfig", c.Kubeconfig, "apiserver", c.Host, "podNetwork", c.PodNetwork+".0.0/16")
	return c, nil
}

// start starts one control-plane process, its output in DIR/logs/NAME.log.
func (c *Cluster) start(name, bin string, args ...string) error {
	logPath := filepath.Join(c.Dir, "logs", name+".log")
	f, err := openLog(logPath)
	if err != nil {
		return err
	}
	p, err := c.spawner.start(name, bin, args, os.Environ(), c.Dir, f)
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}

// checkProcs returns an error when a control-plane process has exited.
func (c *Cluster) checkProcs() error {
	for _, p := range c.procs {
		if p.exited() {
			lp := filepath.Join(c.Dir, "logs", p.name+".log")
			return fmt.Errorf("localkube: %s exited (%v); the end of %s:\n%s", p.name, p.err, lp, logTail(lp))
		}
	}
	return nil
}

// waitReady polls the API server's /readyz until it answers ok.
func (c *Cluster) waitReady(ctx context.Context) error {
	var last error
	err := poll(ctx, 100*time.Millisecond, func() (bool, error) {
		if err := c.checkProcs(); err != nil {
			return false, err
		}
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			last = fmt.Errorf("%w: %s", err, body)
			return false, nil
		}
		return string(body) == "ok", nil
	})
	if err != nil {
		return fmt.Errorf("localkube: wait for kube-apiserver at %s to be ready (last: %v; log %s): %w",
			c.Host, last, filepath.Join(c.Dir, "logs", "kube-apiserver.log"), err)
	}
	return nil
}

// waitControllers waits for the controller manager's first work: the
// default namespace's service account and root CA ConfigMap, which pods
// need to be admitted and to mount their service account's token.
func (c *Cluster) waitControllers(ctx context.Context) error {
	err := poll(ctx, 100*time.Millisecond, func() (bool, error) {
		if err := c.checkProcs(); err != nil {
			return false, err
		}
		if _, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, err
		}
		if _, err := c.Client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, err
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("localkube: wait for kube-controller-manager to create the default service account (log %s): %w",
			filepath.Join(c.Dir, "logs", "kube-controller-manager.log"), err)
	}
	return nil
}

// Close stops the pod runner (killing every pod's processes), then
// kube-controller-manager, kube-apiserver and etcd, and returns once no
// process the cluster started is left; it returns an error naming any
// process that still refers to the cluster's directory. It is idempotent.
func (c *Cluster) Close() error {
	var err error
	c.stopOnce.Do(func() {
		defer func() {
			if left := ProcessesIn(c.Dir); len(left) > 0 {
				err = fmt.Errorf("localkube: processes left after closing the cluster in %s: %s", c.Dir, strings.Join(left, "; "))
			}
		}()
		if c.cancel != nil {
			c.cancel()
			<-c.done
		}
		if c.runner != nil {
			c.runner.stopAll()
		}
		for i := len(c.procs) - 1; i >= 0; i-- {
			c.procs[i].stop(10 * time.Second)
		}
		if c.netClaim != nil {
			c.netClaim.Close()
		}
		c.spawner.close()
	})
	return err
}

// PodDir is the directory of the pod namespace/name's current (or last)
// incarnation on the runner: its root/ and its output main.log. It is
// empty if the runner has not run such a pod.
func (c *Cluster) PodDir(namespace, name string) string {
	if c.runner == nil {
		return ""
	}
	return c.runner.podDir(namespace, name)
}

// writeKubeconfig writes an admin kubeconfig for the cluster.
func writeKubeconfig(path, host string, ca []byte, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["localkube"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["localkube"] = &clientcmdapi.Context{Cluster: "localkube", AuthInfo: "admin", Namespace: corev1.NamespaceDefault}
	cfg.CurrentContext = "localkube"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("localkube: write %s: %w", path, err)
	}
	return nil
}

// claimPodNetwork picks the second octet of the pods' loopback network and
// holds it (an abstract Unix socket, released when this process ends) so
// that another cluster on this host picks another.
func claimPodNetwork(want int) (int, io.Closer, error) {
	try := func(x int) (io.Closer, error) {
		return net.Listen("unix", fmt.Sprintf("@spate-localkube-podnet-%d", x))
	}
	if want != 0 {
		if want < 1 || want > 254 {
			return 0, nil, fmt.Errorf("localkube: Options.PodNetwork %d: want 1..254", want)
		}
		l, err := try(want)
		if err != nil {
			return 0, nil, fmt.Errorf("localkube: pod network 127.%d.0.0/16 is taken by another cluster on this host: %w", want, err)
		}
		return want, l, nil
	}
	start := int(randomByte())
	for i := range 254 {
		x := 1 + (start+i)%254
		if l, err := try(x); err == nil {
			return x, l, nil
		}
	}
	return 0, nil, errors.New("localkube: no free pod network 127.X.0.0/16 on this host (254 clusters running?)")
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("localkube: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomByte() byte {
	b := make([]byte, 1)
	rand.Read(b)
	return b[0]
}

// poll calls cond every interval until it returns true or an error, or ctx
// ends.
func poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// CreateNamespace creates the namespace and waits until the controllers
// gave it its default service account and kube-root-ca.crt ConfigMap:
// until then the API server refuses pods in it (ServiceAccount admission),
// which a test would otherwise race with. A namespace of that name still
// terminating (a test's, deleted at its end, run again by go test -count)
// is waited for and created again.
func (c *Cluster) CreateNamespace(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err == nil || !apierrors.IsAlreadyExists(err) {
			return err == nil, err
		}
		ns, err := c.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, client404(err)
		}
		return ns.Status.Phase != corev1.NamespaceTerminating, nil
	})
	if err != nil {
		return fmt.Errorf("localkube: create namespace %s: %w", name, err)
	}
	err = poll(ctx, 50*time.Millisecond, func() (bool, error) {
		if _, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return false, client404(err)
		}
		if _, err := c.Client.CoreV1().ConfigMaps(name).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
			return false, client404(err)
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("localkube: wait for the default service account of namespace %s: %w", name, err)
	}
	return nil
}

// client404 is nil for a NotFound error (keep polling), else the error.
func client404(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
