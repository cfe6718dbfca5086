package spate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/localexec"
	"github.com/spate-dev/spate/internal/operator"
	"github.com/spate-dev/spate/internal/restart"
	"github.com/spate-dev/spate/internal/savepoint"
	"github.com/spate-dev/spate/internal/snapshot"
)

// checkpointBuild is the checkpointing side of one build of a plan's
// subtasks: the attempt they run in, and the state of each.
type checkpointBuild struct {
	runner  *snapshot.Runner
	attempt int64
	maxPar  int
	states  map[[2]int]*snapshot.TaskState
}

// instance tells an operator instance of subtask s of vertex v about
// checkpoints; nothing when b is nil (no checkpoints).
func (b *checkpointBuild) instance(in *operator.Instance, v, s, parallelism int) {
	if b == nil {
		return
	}
	in.Checkpointing, in.Attempt = true, b.attempt
	k := [2]int{v, s}
	if b.states[k] == nil {
		b.states[k] = b.runner.KeyedTask(v, s, parallelism, b.maxPar)
	}
}

// add registers the state of operator id in subtask s of vertex v.
func (b *checkpointBuild) add(v, s, id int, st snapshot.Operator) {
	if b == nil || st == nil {
		return
	}
	b.states[[2]int{v, s}].Add(int32(id), st)
}

// buildCheckpointed makes the subtasks of attempt with their state
// registered with r; local is as for build.
func (p *plan) buildCheckpointed(e *Env, local func(vertex, subtask int) bool, r *snapshot.Runner, attempt int64) ([][]*exec.Task, map[[2]int]*snapshot.TaskState, error) {
	p.ck = &checkpointBuild{runner: r, attempt: attempt, maxPar: p.maxPar, states: map[[2]int]*snapshot.TaskState{}}
	defer func() { p.ck = nil }()
	byVertex, err := p.build(e, local)
	if err != nil {
		return nil, nil, err
	}
	return byVertex, p.ck.states, nil
}

// checkpointVertices describes the job's vertices to the checkpoint
// coordinator: parallelism and inputs.
func (p *plan) checkpointVertices() []checkpoint.Vertex {
	g := p.graph
	vertexOf := map[int]int{}
	vs := make([]checkpoint.Vertex, len(g.Vertices))
	for vi, v := range g.Vertices {
		vs[vi].Name, vs[vi].Parallelism, vs[vi].MaxParallelism = v.Name, v.Parallelism, v.MaxParallelism
		for _, op := range v.Operators {
			vertexOf[op.ID] = vi
		}
	}
	for _, ed := range g.Edges {
		from, to := vertexOf[ed.FromNode], vertexOf[ed.ToNode]
		fwd := ed.Partitioning == jobgraph.Forward && vs[from].Parallelism == vs[to].Parallelism
		vs[to].Inputs = append(vs[to].Inputs, checkpoint.Input{From: from, Forward: fwd})
	}
	return vs
}

// runLocal runs the job in this process: as it is when it takes no
// checkpoints; else with checkpoints and in-process restarts from them.
func (e *Env) runLocal(ctx context.Context, p *plan) error {
	cfg, err := checkpoint.ConfigFrom(e.conf)
	if err != nil {
		return err
	}
	if path := e.conf.String(savepoint.KeyPath, ""); path != "" && cfg.Interval <= 0 {
		return fmt.Errorf("job %q: starting from %s (%s) needs checkpoints: set %s", p.name, path, savepoint.KeyPath, checkpoint.KeyInterval)
	}
	if cfg.Interval <= 0 {
		tasks, err := p.tasks(e)
		if err != nil {
			return err
		}
		return exec.Run(ctx, tasks)
	}
	strategy, err := restart.FromConfig(e.conf, true, rand.Float64)
	if err != nil {
		return err
	}
	restore, err := savepointRestore(ctx, e, p)
	if err != nil {
		return err
	}
	if restore == nil {
		restore = e.local.restore // a test's checkpoint (export_test.go)
	}
	opts, err := storage.OptionsFrom(e.conf)
	if err != nil {
		return fmt.Errorf("job %q: %w", p.name, err)
	}
	job := localexec.Job{
		Name: p.name, Checkpoints: cfg, Vertices: p.checkpointVertices(), Restore: restore, RestoreStore: snapshot.ReadStore{Opts: opts},
		Restart: func(int, error) (time.Duration, bool) {
			d := strategy.Failed(time.Now())
			return d.Delay, d.Restart
		},
		Build: func(attempt int64, r *snapshot.Runner) ([]localexec.Subtask, error) {
			byVertex, states, err := p.buildCheckpointed(e, nil, r, attempt)
			if err != nil {
				return nil, err
			}
			var subs []localexec.Subtask
			for v, ts := range byVertex {
				for s, t := range ts {
					subs = append(subs, localexec.Subtask{Task: t, Vertex: v, Subtask: s, State: states[[2]int{v, s}]})
				}
			}
			return subs, nil
		},
	}
	if e.local.completed != nil {
		job.Completed = e.local.completed
	}
	st, err := localexec.Run(ctx, job)
	if e.local.ran != nil {
		e.local.ran(st)
	}
	return err
}

// localRestore is how a local run starts from a checkpoint and tells
// about its checkpoints (tests set it; see export_test.go).
type localRestore struct {
	// restore is the checkpoint the run starts from, possibly taken at
	// other parallelisms; nil starts empty.
	restore *checkpoint.Metadata
	// completed hears of every completed checkpoint, ran of the run's end.
	completed func(id int64)
	ran       func(localexec.Stats)
}

// savepointRestore is what a local job restores at its start: the savepoint or
// retained checkpoint of execution.savepoint.path (spate run -s), if set.
func savepointRestore(ctx context.Context, e *Env, p *plan) (*checkpoint.Metadata, error) {
	path := e.conf.String(savepoint.KeyPath, "")
	if path == "" {
		return nil, nil
	}
	allow, err := e.conf.Bool(savepoint.KeyAllowNonRestored, false)
	if err != nil {
		return nil, err
	}
	opts, err := storage.OptionsFrom(e.conf)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", p.name, err)
	}
	snap, err := savepoint.Load(ctx, path, opts)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", p.name, err)
	}
	m, err := savepoint.Assign(p.graph, snap, allow)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", p.name, err)
	}
	return &m, nil
}
