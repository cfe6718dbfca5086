// Package role decides what a user's program does when main calls
// Execute, by the role the environment gives its process, and does it:
//
//   - worker (a TaskManager started the binary with a deployment,
//     deployment.EnvDeployment): run the job's share of subtasks whose
//     ordinal and fingerprint match the deployment, then end the process;
//     the calls before it are skipped;
//   - cluster client (TargetEnv is "remote" or "per-job"): upload the
//     binary, submit the job to a JobManager (on per-job, to a cluster the
//     launching CLI deploys for it), and follow it to its end, fetching
//     the results of its Collect sinks, unless detached;
//   - local (no target, or "local"): nothing here; package spate runs the
//     job on the embedded executor.
//
// Package spate plans the job and hands it over as a Job: its graph, and
// functions that build its subtasks and read its configuration. The
// process-wide ordinal of Execute calls stays in package spate.
package role

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spate-dev/spate/internal/deployment"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/snapshot"
	"github.com/spate-dev/spate/internal/worker"
)

// Environment variables that choose where Execute runs a job (re-exported
// by package spate). The spate CLI sets them when it runs a program; a
// program run plainly has none and uses the embedded local executor.
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

// Job is a planned job of the program, as the roles need it.
type Job struct {
	Name string
	// Ordinal is the Execute/ExecuteAsync call that made the job, among
	// all of the process's.
	Ordinal int
	Graph   *jobgraph.JobGraph
	// Build makes every subtask of the job, indexed by vertex and
	// subtask; local tells which subtasks run in this process.
	Build func(local func(vertex, subtask int) bool) ([][]*exec.Task, error)
	// BuildCheckpointed is Build for a job that takes checkpoints: the
	// subtasks of attempt register their state with r, and it returns it
	// by (vertex, subtask).
	BuildCheckpointed func(local func(vertex, subtask int) bool, r *snapshot.Runner, attempt int64) ([][]*exec.Task, map[[2]int]*snapshot.TaskState, error)
	// Credits is the configured credit per data-plane channel, 0 for the
	// data plane's default, or the error of a malformed value.
	Credits func() (int, error)
	// WorkerEnv is the job's own environment variables, which reach its
	// workers only.
	WorkerEnv func() (map[string]string, error)
	// WorkerProperties is the configuration workers must see to rebuild
	// the same graph, encoded for config.PropertiesEnv.
	WorkerProperties func() string
	// Collects are the job's Collect sinks by operator id.
	Collects map[int]CollectSink
}

// CollectSink is a Collect sink of a job.
type CollectSink struct {
	Name     string
	Target   CollectTarget
	Subtasks int
}

// CollectTarget is where a Collect sink's records from a cluster go.
type CollectTarget interface {
	// AddBatch decodes a batch sent by a subtask on a cluster and adds
	// its records.
	AddBatch(records []byte) error
	// Check tells whether the records can cross from the cluster.
	Check() error
}

// ClusterTarget tells whether TargetEnv sends jobs to a cluster rather
// than the embedded executor.
func ClusterTarget() (bool, error) {
	switch t := os.Getenv(TargetEnv); t {
	case "", "local":
		return false, nil
	case targetRemote, targetPerJob:
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: unknown execution target; use local, remote or per-job (or run the program with `spate run --target ...`)", TargetEnv, t)
	}
}

// IsWorker tells whether this process was started as a worker.
func IsWorker() bool { return os.Getenv(deployment.EnvDeployment) != "" }

// Execute runs job in this process's role: as a worker, or as a cluster's
// client. It returns false if the role is local, so that the caller runs
// the job on the embedded executor; a worker's process ends at its job.
func Execute(ctx context.Context, job *Job) (bool, error) {
	dep, err := deployment.FromEnvironment()
	if err != nil {
		return true, err
	}
	if dep != nil {
		return true, runWorker(ctx, dep, job)
	}
	remote, err := ClusterTarget()
	if err != nil || !remote {
		return err != nil, err
	}
	return true, submit(ctx, job)
}

// runWorker runs this process's share of the job if job is the one the
// worker was started for, and then ends the process: a worker never
// returns to main after its job. Jobs of the program that come before it
// are skipped without running; their own workers run them.
func runWorker(ctx context.Context, dep *deployment.Deployment, job *Job) error {
	if job.Ordinal < dep.JobOrdinal {
		return nil
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx = withCollectPusher(ctx, dep)
	var err error
	// The process ends at its job's call, so a later one is never
	// reached: this is that call, and it must have built the job.
	if job.Graph.Fingerprint == dep.Fingerprint {
		var tasks [][]*exec.Task
		var berr error
		var ck *worker.Checkpoints
		if dep.CheckpointMode != "" && job.BuildCheckpointed != nil {
			r := snapshot.NewRunner(ctx, nil, nil, nil)
			var states map[[2]int]*snapshot.TaskState
			tasks, states, berr = job.BuildCheckpointed(dep.Local, r, max(dep.Attempt, 1))
			ck = &worker.Checkpoints{Runner: r, States: states}
		} else {
			tasks, berr = job.Build(dep.Local)
		}
		if berr != nil {
			err = worker.Fail(ctx, dep, berr)
		} else {
			credits, cerr := job.Credits()
			if cerr != nil {
				err = worker.Fail(ctx, dep, cerr)
			} else {
				err = worker.Run(ctx, dep, job.Graph, tasks, worker.Options{Credits: credits, Checkpoints: ck})
			}
		}
	} else {
		err = worker.Refuse(ctx, dep, &worker.MismatchError{
			JobName: dep.JobName, JobOrdinal: dep.JobOrdinal,
			Built: job.Graph.Fingerprint, BuiltName: job.Name, Submitted: dep.Fingerprint,
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "spate worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return nil
}

type collectPusherKey struct{}

// withCollectPusher makes the Collect sinks of the worker's job, opened
// under the returned context, send their records to the JobManager.
func withCollectPusher(ctx context.Context, dep *deployment.Deployment) context.Context {
	return context.WithValue(ctx, collectPusherKey{}, worker.NewCollectPusher(dep))
}

// CollectPusher returns what the Collect sinks of a worker's job send
// their records to the JobManager with, or nil outside a worker's job:
// the context is the one their Open gets.
func CollectPusher(ctx context.Context) *worker.CollectPusher {
	p, _ := ctx.Value(collectPusherKey{}).(*worker.CollectPusher)
	return p
}
