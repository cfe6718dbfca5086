package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/jobmanager"
	"github.com/spate-dev/spate/internal/localkube/inpod"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/provider"
	"github.com/spate-dev/spate/internal/provider/kubernetes"
)

// The Kubernetes targets (internal/provider/kubernetes): the CLI's side of
// kubernetes-session, kubernetes-per-job and kubernetes-application, and
// the daemons' side of --provider kubernetes.

// kubeDeployer is the Deployer of the cluster conf names
// (kubernetes.namespace, kubernetes.config.file).
func kubeDeployer(conf config.Config) kubernetes.Deployer {
	return kubernetes.Deployer{Config: conf.ClusterEntries()}
}

// kubeSessionStart creates a session cluster of pods and waits for its
// first TaskManagers to register.
func kubeSessionStart(conf config.Config, tms int) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	spec := provider.ClusterSpec{Mode: provider.Session, Config: conf.ClusterEntries(), TaskManagers: tms}
	if _, ok := conf.Get(kubernetes.KeyClusterID); !ok {
		spec.Config[kubernetes.KeyClusterID] = kubernetes.GenerateClusterID()
	}
	cl, err := kubeDeployer(conf).Deploy(ctx, spec)
	if err != nil {
		return fmt.Errorf("session start: %w", err)
	}
	// With security.ssl.rest.enabled the REST API speaks HTTPS with a
	// certificate of the cluster's CA, which the deploy made.
	var tc *tls.Config
	if t, ok := cl.(interface{ RESTTLS() *tls.Config }); ok {
		tc = t.RESTTLS()
	}
	c, err := client.New(cl.REST(), client.WithTLS(tc))
	if err != nil {
		return err
	}
	wait, stop := context.WithTimeout(ctx, 2*time.Minute)
	defer stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ov, err := c.Overview(wait)
		if err == nil && ov.TaskManagers >= tms {
			break
		}
		select {
		case <-wait.Done():
			stopCluster(cl)
			return fmt.Errorf("session start: cluster %s started but its %d TaskManager pods did not register: %w (kubectl get pods -l app=%s)", cl.ID(), tms, wait.Err(), cl.ID())
		case <-tick.C:
		}
	}
	ns := conf.String(kubernetes.KeyNamespace, kubernetes.DefaultNamespace)
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	fmt.Printf("Session %s started in namespace %s: REST %s://%s\n", cl.ID(), ns, scheme, cl.REST())
	fmt.Printf("Submit with: spate run --target kubernetes-session -D %s=%s ./prog\n", kubernetes.KeyClusterID, cl.ID())
	return nil
}

// kubeAvailable tells whether a Kubernetes configuration is at hand, so
// that session list and stop look for Kubernetes sessions too.
func kubeAvailable(conf config.Config) bool {
	if conf.String(kubernetes.KeyKubeConfig, "") != "" || os.Getenv("KUBECONFIG") != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		return true
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(home, ".kube", "config"))
	return err == nil
}

// kubeSessions lists the namespace's Kubernetes session clusters as
// session records; a failure to ask is a note, not an error, since the
// local sessions are listed anyway.
func kubeSessions(conf config.Config) ([]sessionInfo, error) {
	if !kubeAvailable(conf) {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all, err := kubeDeployer(conf).Sessions(ctx, kubernetes.ModeSession)
	if err != nil {
		return nil, err
	}
	ns := conf.String(kubernetes.KeyNamespace, kubernetes.DefaultNamespace)
	var out []sessionInfo
	for _, s := range all {
		status := sessionUnreachable
		if s.Ready {
			status = sessionRunning
		}
		out = append(out, sessionInfo{ID: s.ID, REST: s.REST, Started: s.Created, Dir: "kubectl logs -n " + ns + " -l app=" + s.ID, Status: status})
	}
	return out, nil
}

// kubeSessionStop deletes Kubernetes cluster id.
func kubeSessionStop(conf config.Config, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := kubeDeployer(conf)
	if _, err := d.Session(ctx, id); err != nil {
		return err
	}
	return d.Kill(ctx, id)
}

// kubeSessionREST is the REST address of the session cluster
// kubernetes.cluster-id names, for spate run --target kubernetes-session.
func kubeSessionREST(conf config.Config) (string, error) {
	id, ok := conf.Get(kubernetes.KeyClusterID)
	if !ok || id == "" {
		return "", fmt.Errorf("--target kubernetes-session needs the session's id: -D %s=ID (spate session list shows them)", kubernetes.KeyClusterID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return kubeDeployer(conf).Session(ctx, id)
}

// kubeDeployPerJob creates the per-job cluster of one job. Attached, its
// JobManager waits, after the job, for two acknowledgements of the result:
// the program's, and this client's once it has the job's output.
func kubeDeployPerJob(ctx context.Context, conf config.Config, detached bool) (provider.Cluster, error) {
	entries := conf.ClusterEntries()
	// One cluster per job: a configured id names the first, the next get
	// fresh ones.
	entries[kubernetes.KeyClusterID] = kubernetes.GenerateClusterID()
	spec := provider.ClusterSpec{Mode: provider.PerJob, Config: entries, RemoveWhenDone: detached}
	if !detached {
		spec.ResultLinger = 30 * time.Second
	}
	return kubeDeployer(conf).Deploy(ctx, spec)
}

// restFollower copies the lines a cluster's TaskManagers print (their
// stdout, kept by each and served through the JobManager's REST API) to
// w as they come.
type restFollower struct {
	base    string
	w       io.Writer
	offsets map[string]int
}

func newRESTFollower(rest string, w io.Writer) *restFollower {
	return &restFollower{base: rest, w: w, offsets: map[string]int{}}
}

// drain copies the whole lines printed since the last drain.
func (f *restFollower) drain(ctx context.Context) {
	c, err := client.New(f.base, client.WithTimeout(5*time.Second))
	if err != nil {
		return
	}
	tms, err := c.TaskManagers(ctx)
	if err != nil {
		return
	}
	for _, tm := range tms.TaskManagers {
		text, err := tmStdout(ctx, f.base, tm.ID)
		if err != nil {
			continue
		}
		off := f.offsets[tm.ID]
		if off > len(text) {
			off = 0 // rotated: what is kept starts anew
		}
		i := strings.LastIndexByte(text[off:], '\n')
		if i < 0 {
			continue
		}
		io.WriteString(f.w, text[off:off+i+1])
		f.offsets[tm.ID] = off + i + 1
	}
}

// watchKube follows a Kubernetes per-job cluster: attached, it copies its
// job's output and, once the job has ended and the output is read,
// acknowledges the result so that the JobManager deletes the cluster.
func (r *perJobRun) watchKube(jc *jobCluster) {
	defer r.watchers.Done()
	defer close(jc.gone)
	if r.detached {
		select {
		case <-jc.cl.Done():
		case <-r.detach:
		}
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newRESTFollower(jc.rest, &jobLines{name: jc.name, w: r.out})
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	acked := false
	for {
		select {
		case <-jc.cl.Done():
			return
		case <-r.detach:
			return
		case <-tick.C:
		}
		r.mu.Lock()
		jobID := jc.jobID
		r.mu.Unlock()
		if acked {
			continue
		}
		f.drain(ctx)
		if jobID == "" {
			continue
		}
		c, err := client.New(jc.rest, client.WithTimeout(5*time.Second))
		if err != nil {
			continue
		}
		if d, err := c.Job(ctx, jobID); err == nil && v1.TerminalJobStatus(d.State) {
			f.drain(ctx)
			if c.AcknowledgeResult(ctx, jobID) == nil {
				acked = true
			}
		}
	}
}

// runKubeApplication runs an application cluster whose program is in the
// image (local:///path). Attached, it copies the jobs' output until the
// application has ended, then deletes the cluster; detached, the
// JobManager deletes it at the end.
func runKubeApplication(conf config.Config, program string, args []string, detached bool) error {
	entries := conf.ClusterEntries()
	if _, ok := entries[kubernetes.KeyClusterID]; !ok {
		entries[kubernetes.KeyClusterID] = kubernetes.GenerateClusterID()
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	cl, err := kubeDeployer(conf).Deploy(ctx, provider.ClusterSpec{
		Mode: provider.Application, Config: entries, Artifact: program, Args: args, RemoveWhenDone: detached,
		Env: map[string]string{applicationPropertiesEnv: properties(conf)},
	})
	if err != nil {
		return fmt.Errorf("run-application: %w", err)
	}
	fmt.Fprintf(os.Stderr, "Application cluster %s's REST API at http://%s\n", cl.ID(), cl.REST())
	if detached {
		fmt.Printf("Application cluster %s started; it deletes itself when the application ends.\n", cl.ID())
		return nil
	}
	f := newRESTFollower(cl.REST(), os.Stdout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var app v1.Application
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "Interrupted: deleting the application's cluster")
			stopCluster(cl)
			return errors.New("run-application: interrupted")
		case <-cl.Done():
			return fmt.Errorf("run-application: cluster %s was deleted before the application ended", cl.ID())
		case <-tick.C:
		}
		f.drain(ctx)
		a, err := application(ctx, cl.REST())
		if err != nil || a.Status == v1.JobRunning || a.Status == "" {
			continue
		}
		app = a
		// main returned; the cluster stays until its jobs are over.
		if over(ctx, cl.REST()) {
			break
		}
	}
	f.drain(ctx)
	stopCluster(cl)
	if app.Status != v1.JobFinished {
		return fmt.Errorf("run-application: the application failed: %s", app.Error)
	}
	return nil
}

// over tells whether every job of the cluster at rest has ended.
func over(ctx context.Context, rest string) bool {
	c, err := client.New(rest, client.WithTimeout(5*time.Second))
	if err != nil {
		return false
	}
	ov, err := c.JobsOverview(ctx)
	if err != nil {
		return false
	}
	for _, j := range ov.Jobs {
		if !v1.TerminalJobStatus(j.State) {
			return false
		}
	}
	return true
}

// application fetches GET /v1/application.
func application(ctx context.Context, rest string) (v1.Application, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+rest+"/v1/application", nil)
	if err != nil {
		return v1.Application{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return v1.Application{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v1.Application{}, fmt.Errorf("GET /v1/application: %s", resp.Status)
	}
	var a v1.Application
	return a, json.NewDecoder(resp.Body).Decode(&a)
}

// kubeJobManager sets up a JobManager running in a cluster's pod: it binds
// its pod's IP and starts TaskManagers as pods. It returns what to do once
// the JobManager has ended by itself (a per-job or application cluster):
// delete its own Deployment, the garbage collector then the rest.
func kubeJobManager(conf config.Config, cfg *jobmanager.Config, log *slog.Logger) (ended func(), err error) {
	if t, ok := conf.Get(kubernetes.KeyTaskManagerTemplate); ok && t != "" {
		conf.Set(kubernetes.KeyTaskManagerTemplate, inpod.Path(t))
	}
	opts, err := kubernetes.OptionsFrom(conf, false)
	if err != nil {
		return nil, fmt.Errorf("jobmanager: %w", err)
	}
	if opts.InternalTLS {
		// The CA the client made, to issue each TaskManager pod its own
		// certificate.
		path := inpod.Path(kubernetes.TLSDir + "/" + kubernetes.TLSCAFile)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("jobmanager: the cluster's CA, from its TLS Secret: %w", err)
		}
		if opts.CA, err = pki.ParseCA(data); err != nil {
			return nil, fmt.Errorf("jobmanager: the cluster's CA at %s: %w", path, err)
		}
	}
	kc, err := kubernetes.NewClient(conf.String(kubernetes.KeyKubeConfig, ""))
	if err != nil {
		return nil, fmt.Errorf("jobmanager: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := kubernetes.NewProvider(ctx, kc, opts, log)
	if err != nil {
		return nil, fmt.Errorf("jobmanager: %w", err)
	}
	slots, err := positiveInt(conf, "taskmanager.numberOfTaskSlots", 1)
	if err != nil {
		return nil, fmt.Errorf("jobmanager: %w", err)
	}
	idle, err := conf.Duration("resourcemanager.taskmanager-timeout", 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("jobmanager: %w", err)
	}
	cfg.Provider, cfg.ProvidedSlots, cfg.IdleTimeout = p, slots, idle
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		log.Info("jobmanager: the cluster's work is over; deleting its Deployment", "deployment", opts.ClusterID)
		if err := kubernetes.DeleteOwnDeployment(ctx, kc, opts); err != nil {
			log.Error("jobmanager: delete the cluster's Deployment", "err", err)
			return
		}
		// The pod is deleted with the Deployment: exiting first would
		// have the Deployment's pod restarted, main run again.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		select {
		case <-sigs:
		case <-ctx.Done():
		}
	}, nil
}

// podHost is the address a daemon in a pod binds: its pod's IP.
func podHost() string { return os.Getenv(kubernetes.EnvPodIP) }

// localPath is the path in the image of a program named local:///path
// (an application cluster's), else the name as it is.
func localPath(program string) string {
	return inpod.LocalPath(program)
}

// inPod maps the container paths a daemon in a pod is given (its
// configuration directory) to where they are: themselves on a real node,
// under $LOCALKUBE_ROOT on localkube's pod runner (inpod).
func inPod() {
	if dir := os.Getenv(config.ConfDirEnv); dir != "" && podHost() != "" {
		os.Setenv(config.ConfDirEnv, inpod.Path(dir))
	}
}
