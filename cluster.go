package spate

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/network"
	"github.com/spate-dev/spate/internal/role"
	"github.com/spate-dev/spate/internal/snapshot"
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
	TargetEnv = role.TargetEnv
	// JobManagerEnv is the REST address (host:port) of the JobManager jobs
	// are submitted to.
	JobManagerEnv = role.JobManagerEnv
	// DetachedEnv, if "true", makes Execute return once the job is
	// submitted instead of following it to its end.
	DetachedEnv = role.DetachedEnv
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

// execute runs a planned job in the role the environment gives this
// process (worker, cluster client); false means the local role.
func (e *Env) execute(ctx context.Context, p *plan) (bool, error) {
	return role.Execute(ctx, e.job(p))
}

// job is the planned job as package role needs it.
func (e *Env) job(p *plan) *role.Job {
	return &role.Job{
		Name: p.name, Ordinal: p.ordinal, Graph: p.graph,
		Build: func(local func(vertex, subtask int) bool) ([][]*exec.Task, error) { return p.build(e, local) },
		BuildCheckpointed: func(local func(vertex, subtask int) bool, r *snapshot.Runner, attempt int64) ([][]*exec.Task, map[[2]int]*snapshot.TaskState, error) {
			return p.buildCheckpointed(e, local, r, attempt)
		},
		Credits:          e.networkCredits,
		WorkerEnv:        func() (map[string]string, error) { return e.conf.WorkerEnv() },
		WorkerProperties: e.workerProperties,
		Collects:         p.collectSinks(),
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
	if os.Getenv(InfoEnv) != "" || role.IsWorker() {
		// Printing plans, and workers, handle jobs one at a time.
		finish(e.run(ctx, p))
		return j, nil
	}
	remote, err := role.ClusterTarget()
	if err != nil {
		return nil, err
	}
	if remote {
		job := e.job(p)
		c, id, err := role.SubmitOnly(ctx, job)
		if err != nil {
			return nil, err
		}
		go func() {
			if b, _ := strconv.ParseBool(os.Getenv(DetachedEnv)); b {
				finish(nil)
				return
			}
			finish(role.Follow(ctx, c, id, job))
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
