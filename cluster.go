package spate

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/launcher"
	"github.com/spate-dev/spate/internal/network"
	"github.com/spate-dev/spate/internal/worker"
)

// Environment variables that choose where Execute runs a job. The spate
// CLI sets them when it runs a program; a program run plainly has none and
// uses the embedded local executor.
const (
	// TargetEnv names the execution target: "local" (the default),
	// "remote" (submit to the JobManager at JobManagerEnv) or "per-job"
	// (submit each job to a cluster of its own, which the spate CLI that
	// started the program deploys when asked through its launcher socket,
	// $SPATE_LAUNCHER).
	TargetEnv = "SPATE_TARGET"
	// JobManagerEnv is the REST address (host:port) of the JobManager jobs
	// are submitted to.
	JobManagerEnv = "SPATE_JOBMANAGER"
	// DetachedEnv, if "true", makes Execute return once the job is
	// submitted instead of following it to its end.
	DetachedEnv = "SPATE_DETACHED"
)

// Execution targets (TargetEnv).
const (
	targetRemote = "remote"
	targetPerJob = "per-job"
)

// executeCalls counts this process's Execute/ExecuteAsync calls, of every
// Env: a call's ordinal among them names its job within the program
// (v1.JobSubmitRequest.JobOrdinal). A worker runs the program again with
// the same arguments and runs the call with its job's ordinal, skipping
// the ones before it, so two jobs of one program run their own closures
// even when their dataflows are alike. The count is process-wide, not per
// Env, because a program may make a new Env for each job: every Env's
// calls then still get distinct ordinals. It requires of main what
// rebuilding the graphs already does: that, for the same arguments, it
// makes the same calls in the same order (Execute and ExecuteAsync from
// one goroutine, or in an order main controls).
var executeCalls atomic.Int64

// nextOrdinal takes the ordinal of an Execute/ExecuteAsync call.
func nextOrdinal() int { return int(executeCalls.Add(1) - 1) }

// clusterTarget tells whether TargetEnv sends jobs to a cluster rather
// than the embedded executor.
func clusterTarget() (bool, error) {
	switch t := os.Getenv(TargetEnv); t {
	case "", "local":
		return false, nil
	case targetRemote, targetPerJob:
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: unknown execution target; use local, remote or per-job (or run the program with `spate run --target ...`)", TargetEnv, t)
	}
}

// role tells how Execute runs the job it is given.
func (e *Env) execute(ctx context.Context, p *plan) (bool, error) {
	dep, err := worker.FromEnvironment()
	if err != nil {
		return true, err
	}
	if dep != nil {
		return true, e.runWorker(ctx, dep, p)
	}
	remote, err := clusterTarget()
	if err != nil || !remote {
		return err != nil, err
	}
	return true, e.submit(ctx, p)
}

// runWorker runs this process's share of the job if p is the job the
// worker was started for, and then ends the process: a worker never returns
// to main after its job. Jobs of the program that come before it are
// skipped without running; their own workers run them.
func (e *Env) runWorker(ctx context.Context, dep *worker.Deployment, p *plan) error {
	if p.ordinal < dep.JobOrdinal {
		return nil
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx = withCollectPusher(ctx, dep)
	var err error
	// The process ends at its job's call, so a later one is never
	// reached: this is that call, and it must have built the job.
	if p.graph.Fingerprint == dep.Fingerprint {
		tasks, berr := p.build(e, dep.Local)
		if berr != nil {
			err = worker.Fail(ctx, dep, berr)
		} else {
			credits, cerr := e.networkCredits()
			if cerr != nil {
				err = worker.Fail(ctx, dep, cerr)
			} else {
				err = worker.Run(ctx, dep, p.graph, tasks, worker.Options{Credits: credits})
			}
		}
	} else {
		err = worker.Refuse(ctx, dep, &worker.MismatchError{
			JobName: dep.JobName, JobOrdinal: dep.JobOrdinal,
			Built: p.graph.Fingerprint, BuiltName: p.name, Submitted: dep.Fingerprint,
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "spate worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return nil
}

// submit sends the job to a JobManager with this program's binary, then
// follows it to its end unless detached.
func (e *Env) submit(ctx context.Context, p *plan) error {
	c, id, err := e.submitOnly(ctx, p)
	if err != nil {
		return err
	}
	if b, _ := strconv.ParseBool(os.Getenv(DetachedEnv)); b {
		return nil
	}
	return followCollect(ctx, c, id, p)
}

// submitOnly uploads the binary and submits the job: to the JobManager at
// JobManagerEnv, or on the per-job target to a cluster the launching CLI
// deploys for it. It tells the CLI, if one started the program, what it
// submitted.
func (e *Env) submitOnly(ctx context.Context, p *plan) (_ *client.Client, _ string, err error) {
	detached, _ := strconv.ParseBool(os.Getenv(DetachedEnv))
	if err := p.checkRemoteCollect(detached); err != nil {
		return nil, "", err
	}
	// The job's own environment variables and configuration reach its
	// workers only: the TaskManager adds them to those processes alone.
	env, err := e.conf.WorkerEnv()
	if err != nil {
		return nil, "", fmt.Errorf("job %q: %w", p.name, err)
	}
	if _, err := e.networkCredits(); err != nil {
		return nil, "", fmt.Errorf("job %q: %w", p.name, err)
	}
	cli := launcher.FromEnvironment()
	addr, cluster := os.Getenv(JobManagerEnv), ""
	switch {
	case os.Getenv(TargetEnv) == targetPerJob:
		if cli == nil {
			return nil, "", fmt.Errorf("job %q: %s=%s needs the spate CLI that deploys the job's cluster (%s): run the program with spate run --target process-per-job", p.name, TargetEnv, targetPerJob, launcher.Env)
		}
		cl, err := cli.DeployCluster(ctx, launcher.ClusterRequest{JobName: p.name, JobOrdinal: p.ordinal})
		if err != nil {
			return nil, "", fmt.Errorf("job %q: %w", p.name, err)
		}
		addr, cluster = cl.REST, cl.ID
		defer func() {
			if err != nil {
				// Nothing will run on it: the CLI removes it now.
				if rerr := cli.ReleaseCluster(context.WithoutCancel(ctx), cluster); rerr != nil {
					fmt.Fprintf(os.Stderr, "spate: job %q: %v\n", p.name, rerr)
				}
			}
		}()
	case addr == "":
		return nil, "", fmt.Errorf("job %q: %s=remote needs %s=host:port, the JobManager's REST address", p.name, TargetEnv, JobManagerEnv)
	}
	c, err := client.New(addr)
	if err != nil {
		return nil, "", fmt.Errorf("job %q: %w", p.name, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("job %q: find this program's binary to upload: %w", p.name, err)
	}
	up, err := c.EnsureArtifact(ctx, exe)
	if err != nil {
		return nil, "", fmt.Errorf("job %q: upload %s: %w", p.name, exe, err)
	}
	graph, err := p.graph.Marshal()
	if err != nil {
		return nil, "", fmt.Errorf("job %q: %w", p.name, err)
	}
	env[config.PropertiesEnv] = e.workerProperties()
	id, err := c.SubmitJob(ctx, v1.JobSubmitRequest{
		JobGraph: graph, Artifact: up.ID, Args: os.Args[1:], Env: env, Program: filepath.Base(exe), JobOrdinal: p.ordinal,
	})
	if err != nil {
		return nil, "", fmt.Errorf("job %q: submit: %w", p.name, err)
	}
	fmt.Printf("Job has been submitted with JobID %s\n", id)
	if cli != nil {
		// The job runs whatever the CLI hears; it only counts and labels.
		if err := cli.Submitted(ctx, launcher.Submission{JobID: id, JobName: p.name, JobOrdinal: p.ordinal, REST: addr, Cluster: cluster}); err != nil {
			fmt.Fprintf(os.Stderr, "spate: job %q (%s): %v\n", p.name, id, err)
		}
	}
	return c, id, nil
}

// follow waits for a submitted job's end, printing its status changes, and
// returns its failure.
func follow(ctx context.Context, c *client.Client, id, name string) error {
	d, err := c.WaitJob(ctx, id, 100*time.Millisecond, func(status string) {
		fmt.Printf("Job %s (%s) is %s\n", id, name, status)
	})
	if err != nil {
		return fmt.Errorf("job %q (%s): %w", name, id, err)
	}
	// Read what the result needs, then say so: a per-job cluster waits
	// for it before it goes.
	defer c.AcknowledgeResult(ctx, id)
	switch d.State {
	case v1.JobFinished:
		return nil
	case v1.JobFailed:
		cause := "see GET /v1/jobs/" + id + "/exceptions"
		if ex, err := c.JobExceptions(ctx, id); err == nil && ex.RootException != "" {
			cause = ex.RootException
		}
		return fmt.Errorf("job %q (%s) failed: %s", name, id, cause)
	default:
		return fmt.Errorf("job %q (%s) ended %s", name, id, d.State)
	}
}

// networkCredits is the configured credit per data-plane channel, 0 for
// the data plane's default.
func (e *Env) networkCredits() (int, error) {
	v, ok := e.conf.Get(config.NetworkCredits)
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s: %q is not a positive number of batches (default %d)", config.NetworkCredits, v, network.DefaultCredits)
	}
	return n, nil
}

// workerProperties is the configuration workers must see to rebuild the
// same graph: every entry of the client's, and the resolved default
// parallelism, since a worker's host may have another number of CPUs.
func (e *Env) workerProperties() string {
	entries := e.conf.Entries()
	entries[config.ParallelismDefault] = strconv.Itoa(e.Parallelism())
	return config.EncodeProperties(entries)
}

// JobClient is a job started by ExecuteAsync.
type JobClient struct {
	done chan struct{}
	err  error
}

// Wait blocks until the job has ended and returns its failure.
func (j *JobClient) Wait() error {
	<-j.done
	return j.err
}

// ExecuteAsync starts the job declared since the previous Execute and
// returns at once; Wait on the result for its end. Several jobs may run at
// once this way, locally or on a cluster.
func (e *Env) ExecuteAsync(name string) (*JobClient, error) {
	return e.ExecuteAsyncContext(context.Background(), name)
}

// ExecuteAsyncContext is ExecuteAsync with a context that stops the job
// (locally) or stops following it (on a cluster).
func (e *Env) ExecuteAsyncContext(ctx context.Context, name string) (*JobClient, error) {
	ordinal := nextOrdinal()
	nodes := e.nodes
	e.nodes = nil
	p, err := e.plan(name, nodes)
	if err != nil {
		return nil, err
	}
	p.ordinal = ordinal
	j := &JobClient{done: make(chan struct{})}
	finish := func(err error) { j.err = err; close(j.done) }
	if os.Getenv(InfoEnv) != "" || os.Getenv(worker.EnvDeployment) != "" {
		// Printing plans, and workers, handle jobs one at a time.
		finish(e.run(ctx, p))
		return j, nil
	}
	remote, err := clusterTarget()
	if err != nil {
		return nil, err
	}
	if remote {
		c, id, err := e.submitOnly(ctx, p)
		if err != nil {
			return nil, err
		}
		go func() {
			if b, _ := strconv.ParseBool(os.Getenv(DetachedEnv)); b {
				finish(nil)
				return
			}
			finish(followCollect(ctx, c, id, p))
		}()
		return j, nil
	}
	tasks, err := p.tasks(e)
	if err != nil {
		return nil, err
	}
	go func() {
		if err := exec.Run(ctx, tasks); err != nil {
			finish(fmt.Errorf("job %q: %w", name, err))
			return
		}
		finish(nil)
	}()
	return j, nil
}
