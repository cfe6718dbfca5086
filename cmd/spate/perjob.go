package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spate-dev/spate"
	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/launcher"
	"github.com/spate-dev/spate/internal/provider"
	"github.com/spate-dev/spate/internal/provider/process"
)

// runPerJob runs a program's jobs on per-job clusters of child processes,
// one cluster per Execute/ExecuteAsync call, as Flink's job-cluster
// executor deploys one per execute(). The CLI owns every cluster: at each
// call the program asks it, through the launcher socket, for a fresh
// cluster and submits its job there. A cluster is a JobManager that starts
// the TaskManagers its job needs and exits when the job has ended, taking
// them with it.
//
// Attached, the client streams each job's output, each line labelled with
// its job, cancels every job on Ctrl-C, and removes each cluster's
// directory when its job has ended. Detached, it returns once the program
// has submitted its jobs, and each cluster removes itself when its job
// ends. Either way a cluster the program never submitted to is removed
// when the program ends.
//
//	program's Execute ──ask──▶ CLI deploys cluster ──▶ program submits
//	  ──▶ job ends ──▶ JobManager exits (TaskManagers with it)
//	  ──▶ CLI removes the cluster's directory
func runPerJob(prog string, args []string, conf config.Config, detached, keepLogs, kube bool, pg *progress) error {
	srv, err := launcher.Listen()
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &perJobRun{conf: conf, detached: detached, keepLogs: keepLogs, kube: kube,
		out: &lineWriter{w: pg.output(os.Stdout)}, errOut: pg.output(os.Stderr), progress: pg, detach: make(chan struct{})}
	served := make(chan struct{})
	go func() { defer close(served); srv.Serve(ctx, r) }()
	stopServing := func() { cancel(); <-served }
	defer stopServing()

	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), config.PropertiesEnv+"="+properties(conf), spate.TargetEnv+"=per-job",
		launcher.Env+"="+srv.Path(), spate.DetachedEnv+"="+strconv.FormatBool(detached))
	// The REST credentials' files, for clusters whose REST API needs them.
	credEnv, err := restClientEnv(conf)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	cmd.Env = append(cmd.Env, credEnv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, pg.output(os.Stdout), r.errOut
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", prog, err)
	}
	progDone := make(chan error, 1)
	go func() { progDone <- cmd.Wait() }()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	var progErr error
	interrupted := false
	select {
	case progErr = <-progDone:
	case <-sigs:
		interrupted = true
		fmt.Fprintln(r.errOut, "Interrupted: cancelling the jobs and removing their clusters")
		r.close()
		r.cancelJobs()
		select {
		case progErr = <-progDone:
		case <-sigs:
			fmt.Fprintln(r.errOut, "Interrupted again: stopping the program")
			cmd.Process.Kill()
			progErr = <-progDone
		}
		if progErr == nil {
			progErr = errors.New("interrupted")
		}
	}
	// No cluster starts once the program has ended.
	stopServing()
	clusters := r.close()
	if r.removeUnused(clusters) == 0 && progErr == nil {
		close(r.detach)
		r.watchers.Wait()
		return noJobError(prog, "a per-job cluster")
	}
	if detached && !interrupted {
		// Each cluster ends by itself with its job.
		close(r.detach)
		r.watchers.Wait()
		return exitError(progErr)
	}
	if progErr != nil && !interrupted {
		// Nobody follows the jobs still running.
		r.cancelJobs()
	}
	r.waitClusters(clusters, sigs, progErr != nil)
	return exitError(progErr)
}

// exitError is a program's failure: its exit code if it ran.
func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitCode(ee.ExitCode())
	}
	return err
}

// noJobError is the error of a program that ended well without submitting
// any job to a cluster target.
func noJobError(prog, target string) error {
	return fmt.Errorf("run %s: the program ended without submitting a job to %s: a Spate program submits its jobs with Env.Execute or Env.ExecuteAsync; is %s a Spate program?", prog, target, prog)
}

// perJobRun is the CLI's side of one `spate run --target process-per-job`:
// the clusters it deployed for the program's jobs.
type perJobRun struct {
	conf               config.Config
	detached, keepLogs bool
	// kube makes the clusters pods (kubernetes-per-job, kubernetes.go).
	kube     bool
	out      *lineWriter
	errOut   io.Writer // the client's messages
	progress *progress // shows the jobs' progress, if not nil
	// detach is closed when the client returns before its clusters end:
	// their watchers stop.
	detach   chan struct{}
	watchers sync.WaitGroup
	mu       struct {
		sync.Mutex
		clusters []*jobCluster
		closed   bool
	}
}

// jobCluster is the cluster of one job of the program.
type jobCluster struct {
	id         string
	name       string
	ordinal    int
	dir        string
	cl         provider.Cluster
	rest       string
	jobID      string // set once the program has submitted (guarded by perJobRun.mu)
	released   bool   // guarded by perJobRun.mu
	stopFollow chan struct{}
	// gone is closed once the cluster has ended and its directory is
	// removed (or kept), or the client detached.
	gone chan struct{}
}

var _ launcher.Handler = (*perJobRun)(nil)

// DeployCluster starts a per-job cluster for the job req names.
func (r *perJobRun) DeployCluster(ctx context.Context, req launcher.ClusterRequest) (launcher.Cluster, error) {
	r.mu.Lock()
	closed := r.mu.closed
	r.mu.Unlock()
	if closed {
		return launcher.Cluster{}, errors.New("the client is ending: no more clusters")
	}
	label := fmt.Sprintf("job %q (Execute call #%d)", req.JobName, req.JobOrdinal)
	if r.kube {
		cl, err := kubeDeployPerJob(ctx, r.conf, r.detached)
		if err != nil {
			return launcher.Cluster{}, fmt.Errorf("per-job cluster for %s: %w", label, err)
		}
		fmt.Fprintf(r.errOut, "Per-job cluster %s for %s: REST API at http://%s\n", cl.ID(), label, cl.REST())
		return r.add(&jobCluster{name: req.JobName, ordinal: req.JobOrdinal, cl: cl, rest: cl.REST(),
			stopFollow: make(chan struct{}), gone: make(chan struct{})})
	}
	dir, err := os.MkdirTemp("", "spate-perjob-")
	if err != nil {
		return launcher.Cluster{}, fmt.Errorf("per-job cluster for %s: %w", label, err)
	}
	fmt.Fprintf(r.errOut, "Per-job cluster in %s for %s\n", dir, label)
	spec := provider.ClusterSpec{Mode: provider.PerJob, Dir: dir, Config: r.conf.ClusterEntries(),
		RemoveWhenDone: r.detached && !r.keepLogs}
	if !r.detached {
		// The attached client fetches the job's result before the
		// cluster goes.
		spec.ResultLinger = 30 * time.Second
	}
	cl, err := process.Deployer{}.Deploy(ctx, spec)
	if err != nil {
		os.RemoveAll(dir)
		return launcher.Cluster{}, fmt.Errorf("per-job cluster for %s: %w", label, err)
	}
	fmt.Fprintf(r.errOut, "Per-job cluster's REST API at http://%s for %s\n", cl.REST(), label)
	return r.add(&jobCluster{name: req.JobName, ordinal: req.JobOrdinal, dir: dir, cl: cl, rest: cl.REST(),
		stopFollow: make(chan struct{}), gone: make(chan struct{})})
}

// add records a deployed cluster and starts following it, or removes it
// if the client is ending.
func (r *perJobRun) add(jc *jobCluster) (launcher.Cluster, error) {
	r.mu.Lock()
	if r.mu.closed {
		// Interrupted while it started.
		r.mu.Unlock()
		stopCluster(jc.cl)
		if jc.dir != "" {
			os.RemoveAll(jc.dir)
		}
		return launcher.Cluster{}, errors.New("the client is ending: no more clusters")
	}
	r.mu.clusters = append(r.mu.clusters, jc)
	jc.id = strconv.Itoa(len(r.mu.clusters))
	r.watchers.Add(1)
	r.mu.Unlock()
	if r.kube {
		go r.watchKube(jc)
	} else {
		go r.watch(jc)
	}
	return launcher.Cluster{ID: jc.id, REST: jc.rest}, nil
}

// watch follows a cluster's output until it ends, then removes its
// directory.
func (r *perJobRun) watch(jc *jobCluster) {
	defer r.watchers.Done()
	defer close(jc.gone)
	var follow sync.WaitGroup
	if !r.detached {
		follow.Add(1)
		go func() {
			defer follow.Done()
			followOutputs(filepath.Join(jc.dir, "log"), &jobLines{name: jc.name, w: r.out}, jc.stopFollow, "taskmanager-*.out")
		}()
	}
	select {
	case <-jc.cl.Done():
	case <-r.detach:
		close(jc.stopFollow)
		follow.Wait()
		return
	}
	close(jc.stopFollow)
	follow.Wait()
	if r.keepLogs {
		fmt.Fprintf(r.errOut, "Per-job cluster of job %q ended; its logs are in %s\n", jc.name, filepath.Join(jc.dir, "log"))
		return
	}
	os.RemoveAll(jc.dir)
}

// ReleaseCluster removes a cluster the program will not submit to.
func (r *perJobRun) ReleaseCluster(ctx context.Context, id string) error {
	jc := r.cluster(id)
	if jc == nil {
		return fmt.Errorf("no cluster %q", id)
	}
	r.mu.Lock()
	jc.released = true
	r.mu.Unlock()
	stopCluster(jc.cl)
	select {
	case <-jc.gone:
	case <-ctx.Done():
	}
	return nil
}

// Submitted records which job a cluster runs.
func (r *perJobRun) Submitted(s launcher.Submission) {
	if jc := r.cluster(s.Cluster); jc != nil {
		r.mu.Lock()
		jc.jobID = s.JobID
		r.mu.Unlock()
		r.progress.follow(jc.rest, s.JobID, s.JobName)
		where := "in " + jc.dir
		if r.kube {
			where = jc.cl.ID()
		}
		fmt.Fprintf(r.errOut, "Per-job cluster %s runs job %q (%s)\n", where, s.JobName, s.JobID)
	}
}

func (r *perJobRun) cluster(id string) *jobCluster {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, jc := range r.mu.clusters {
		if jc.id == id {
			return jc
		}
	}
	return nil
}

// close refuses further clusters and returns those deployed.
func (r *perJobRun) close() []*jobCluster {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.closed = true
	return append([]*jobCluster(nil), r.mu.clusters...)
}

// removeUnused stops the clusters that run no job once the program has
// ended, since nothing else would end them, and returns how many run one.
func (r *perJobRun) removeUnused(clusters []*jobCluster) int {
	jobs := 0
	for _, jc := range clusters {
		r.mu.Lock()
		submitted, released := jc.jobID != "", jc.released
		r.mu.Unlock()
		ended := false
		select {
		case <-jc.cl.Done():
			// A per-job JobManager ends by itself only after a job.
			ended = true
		default:
		}
		switch {
		case released:
		case submitted || ended || hasJob(jc.rest, r.conf):
			jobs++
		default:
			stopCluster(jc.cl)
			<-jc.gone
		}
	}
	return jobs
}

// cancelJobs cancels the jobs still running on every cluster.
func (r *perJobRun) cancelJobs() {
	r.mu.Lock()
	clusters := append([]*jobCluster(nil), r.mu.clusters...)
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, jc := range clusters {
		wg.Add(1)
		go func() { defer wg.Done(); cancelAll(jc.rest, r.conf) }()
	}
	wg.Wait()
}

// waitClusters waits until every cluster has ended and is removed. After
// their jobs were cancelled (cancelled), or on a further Ctrl-C, a cluster
// still there after 30 s is stopped.
func (r *perJobRun) waitClusters(clusters []*jobCluster, sigs <-chan os.Signal, cancelled bool) {
	all := make(chan struct{})
	go func() { r.watchers.Wait(); close(all) }()
	var deadline <-chan time.Time
	if cancelled {
		deadline = time.After(30 * time.Second)
	}
	for {
		select {
		case <-all:
			return
		case <-sigs:
			if cancelled {
				fmt.Fprintln(r.errOut, "Interrupted again: stopping the clusters")
				deadline = time.After(0)
				continue
			}
			fmt.Fprintln(r.errOut, "Interrupted: cancelling the jobs and removing their clusters")
			cancelled = true
			r.cancelJobs()
			deadline = time.After(30 * time.Second)
		case <-deadline:
			for _, jc := range clusters {
				stopCluster(jc.cl)
			}
			<-all
			return
		}
	}
}

// lineWriter serialises writes of whole lines from several followers.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// jobLines labels the output lines of a per-job cluster's TaskManagers,
// "[job ID WORKER] text", with the job's name: "[job ID WORKER NAME] text".
type jobLines struct {
	name string
	w    io.Writer
}

func (j *jobLines) Write(b []byte) (int, error) {
	name := j.name
	if strings.ContainsAny(name, " \t]") || name == "" {
		name = strconv.Quote(name)
	}
	var out bytes.Buffer
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("[job ")); ok {
			if tag, text, ok := bytes.Cut(rest, []byte("] ")); ok {
				fmt.Fprintf(&out, "[job %s %s] %s", tag, name, text)
				continue
			}
		}
		out.Write(line)
	}
	if _, err := j.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// stopCluster tears a cluster down, killing it if it takes more than 30 s.
func stopCluster(cl provider.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl.Stop(ctx)
}

func cancelAll(rest string, conf config.Config) {
	c, err := newClient(rest, conf)
	if err != nil {
		return
	}
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	ov, err := c.JobsOverview(ctx)
	if err != nil {
		return
	}
	for _, j := range ov.Jobs {
		if !v1.TerminalJobStatus(j.State) {
			c.CancelJob(ctx, j.JID)
		}
	}
}

func hasJob(rest string, conf config.Config) bool {
	c, err := newClient(rest, conf)
	if err != nil {
		return false
	}
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	ov, err := c.JobsOverview(ctx)
	return err == nil && len(ov.Jobs) > 0
}

// followOutputs copies the lines appended to the files in dir matching
// patterns to w until stop is closed, then copies what is left.
func followOutputs(dir string, w io.Writer, stop <-chan struct{}, patterns ...string) {
	offsets := map[string]int64{}
	partial := map[string]string{}
	drain := func() {
		var paths []string
		for _, pat := range patterns {
			m, _ := filepath.Glob(filepath.Join(dir, pat))
			paths = append(paths, m...)
		}
		sort.Strings(paths)
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				continue
			}
			f.Seek(offsets[p], io.SeekStart)
			b, _ := io.ReadAll(f)
			f.Close()
			offsets[p] += int64(len(b))
			text := partial[p] + string(b)
			i := strings.LastIndexByte(text, '\n')
			if i < 0 {
				partial[p] = text
				continue
			}
			io.WriteString(w, text[:i+1])
			partial[p] = text[i+1:]
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			drain()
			return
		case <-tick.C:
			drain()
		}
	}
}
