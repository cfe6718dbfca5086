package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/network"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
	"github.com/spate-dev/spate/internal/snapshot"
)

// readyTimeout bounds the wait for the job's other workers to start.
const readyTimeout = 5 * time.Minute

// reportInterval is how often record counts reach the JobManager.
const reportInterval = time.Second

// Options tune a worker from its job's configuration.
type Options struct {
	// Credits is how many batches each incoming data-plane channel may
	// have in flight; 0 for network.DefaultCredits.
	Credits int
	// Checkpoints, if the job takes checkpoints, holds the subtasks'
	// state (checkpoints.go).
	Checkpoints *Checkpoints
}

// Run runs this worker's subtasks of the job g: tasks[v][s] is subtask s of
// vertex v, built so that edges to subtasks of other workers encode their
// batches; the inboxes of those other subtasks are where records for them
// queue for the data plane. Run reports states to the JobManager, and
// returns when ctx ends (the TaskManager stops the worker) with nil, or
// with an error if the worker could not take part in the job at all.
//
// Run also keeps a liveness link to the JobManager (WorkerHeartbeat). When
// the JobManager says the job no longer runs with this worker, or does not
// answer for heartbeat.timeout, or the TaskManager is gone, Run cancels
// the subtasks and returns an error of class ErrAbandoned: within a
// heartbeat interval (a second at most) if user code ignores the
// cancellation (leaving it
// running: the caller must end the process), or, when the subtasks had
// ended already, once the TaskManager has not stopped the worker for
// heartbeat.timeout. In those cases Run does not return: it ends the
// process itself, with status ExitJobOver when the JobManager said the job
// is over (the TaskManager then counts the exit as expected), 1 otherwise.
func Run(ctx context.Context, d *Deployment, g *jobgraph.JobGraph, tasks [][]*exec.Task, opts Options) error {
	log := setupLogging(d)
	conn, err := dialJobManager(d)
	if err != nil {
		return fmt.Errorf("worker %s: connect to JobManager %s: %w", d.WorkerID, d.JobManager, err)
	}
	defer conn.Close()
	jm := rpcpb.NewJobManagerClient(conn)

	// live ends with ctx, or when the liveness link says the worker must
	// stop (its cause is then the reason).
	lv := newLiveness(jm, d)
	live, abandon := context.WithCancelCause(ctx)
	var liveWG sync.WaitGroup
	defer liveWG.Wait()
	defer abandon(nil)
	liveWG.Add(1)
	go func() {
		defer liveWG.Done()
		if err := lv.watch(live); err != nil {
			abandon(err)
		}
	}()
	// abandoned returns why the worker must stop on its own, nil if it
	// may go on or the TaskManager stops it.
	abandoned := func() error {
		if ctx.Err() != nil || live.Err() == nil {
			return nil
		}
		return fmt.Errorf("worker %s of job %s stops itself: %w", d.WorkerID, d.JobID, context.Cause(live))
	}

	// The endpoint with the smaller id dials, also when it only receives:
	// it resolves its peers from the addresses WorkerReady returns.
	var addrs map[string]string
	resolve := func(id string) (string, error) {
		if a, ok := addrs[id]; ok {
			return a, nil
		}
		return "", fmt.Errorf("job %s has no worker %q", d.JobID, id)
	}
	ntls, err := networkTLS(d)
	if err != nil {
		return report(live, jm, d, nil, fmt.Errorf("open data plane: %w", err))
	}
	ep, err := network.Listen(net.JoinHostPort(d.DataHost, "0"), network.Config{ID: d.WorkerID, Logger: log, Resolve: resolve, Credits: opts.Credits, TLS: ntls, Attempt: uint64(d.Attempt)})
	if err != nil {
		return report(live, jm, d, nil, fmt.Errorf("open data plane: %w", err))
	}
	defer ep.Close()
	rctx, cancel := context.WithTimeout(live, readyTimeout)
	ready, err := jm.WorkerReady(rctx, &rpcpb.WorkerReadyRequest{
		JobId: d.JobID, WorkerId: d.WorkerID, DataAddress: ep.Addr(), Fingerprint: g.Fingerprint, Attempt: d.Attempt,
	}, grpc.WaitForReady(true))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if err := abandoned(); err != nil {
			endAbandoned(err, lv.grace())
		}
		return fmt.Errorf("worker %s: wait for the job's other workers: %w", d.WorkerID, err)
	}
	place := func(_, s int) string { return d.SlotWorkers[s] }
	for _, v := range g.Vertices {
		if v.Parallelism > len(d.SlotWorkers) {
			return report(live, jm, d, nil, fmt.Errorf("vertex %q has parallelism %d but the job got %d slots", v.Name, v.Parallelism, len(d.SlotWorkers)))
		}
	}
	addrs = ready.DataAddresses
	local, err := Wire(d.WorkerID, place, g, tasks, ep, addrs)
	if err != nil {
		return report(live, jm, d, nil, err)
	}

	stopMetrics := startMetrics(ctx, d, g, local, log)
	defer stopMetrics()
	r := &reporter{jm: jm, d: d, tasks: local, state: map[*exec.Task]taskState{}, changed: make(chan struct{}, 1)}
	for _, lt := range local {
		r.state[lt.Task] = taskState{state: v1.TaskRunning}
	}
	runCtx, stopRun := context.WithCancelCause(live)
	defer stopRun(nil)
	var wg sync.WaitGroup
	if ck := opts.Checkpoints; ck != nil {
		c := &checkpointing{cc: rpcpb.NewCheckpointCoordinatorClient(conn), d: d, ck: ck, log: log, ctx: live, fail: stopRun}
		ck.Runner.Bind(snapshot.InlineStore{}, c)
		if err := c.setup(live, local); err != nil {
			return report(live, jm, d, nil, err)
		}
		// Acknowledgements still being written go out before Run returns.
		defer ck.Runner.Close()
		wg.Add(1)
		go func() { defer wg.Done(); c.subscribe(runCtx) }()
	}
	wg.Add(2)
	repCtx, stopReports := context.WithCancel(ctx)
	defer stopReports()
	go func() { defer wg.Done(); r.loop(repCtx) }()
	netErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		if err := ep.Run(runCtx); err != nil && runCtx.Err() == nil {
			netErr <- err
			stopRun(err)
		}
	}()
	all := make([]*exec.Task, len(local))
	for i, lt := range local {
		all[i] = lt.Task
	}
	tasksDone := make(chan error, 1)
	go func() {
		tasksDone <- exec.RunGated(runCtx, all, func(t *exec.Task, err error) {
			switch {
			case err == nil:
				r.set(t, v1.TaskFinished, "")
			case live.Err() != nil:
				r.set(t, v1.TaskCanceled, "")
			case errors.Is(err, exec.ErrJobStopping) || errors.Is(err, context.Canceled) || runCtx.Err() != nil && !isSubtaskError(err):
				r.set(t, v1.TaskCanceled, "")
			default:
				r.setFailed(t, describe(err), errors.Is(err, network.ErrPeerLost))
			}
		}, func(ctx context.Context) error { return awaitPublish(ctx, jm, d) })
	}()
	var runErr error
	select {
	case runErr = <-tasksDone:
	case <-live.Done():
		if ctx.Err() != nil {
			// The TaskManager stops this worker, and kills it if user code
			// does not return.
			runErr = <-tasksDone
			break
		}
		// Abandoned: user code gets a moment to return.
		grace := time.NewTimer(lv.grace())
		select {
		case runErr = <-tasksDone:
			grace.Stop()
		case <-grace.C:
			endAbandoned(fmt.Errorf("%w; its user code did not return within %v of being cancelled", abandoned(), lv.grace()), lv.grace())
		}
	}
	select {
	case err := <-netErr:
		r.fail(fmt.Sprintf("data plane: %v", err), errors.Is(err, network.ErrPeerLost))
	default:
	}
	if runErr != nil && live.Err() == nil {
		log.Warn("subtasks failed", "err", runErr)
	}
	// The job's fate is the JobManager's: keep reporting until the
	// TaskManager stops this worker; if the job is over and the
	// TaskManager does not, stop after heartbeat.timeout.
	select {
	case <-ctx.Done():
	case <-live.Done():
		wait := time.NewTimer(lv.timeout)
		defer wait.Stop()
		select {
		case <-ctx.Done():
		case <-wait.C:
			stopRun(nil)
			stopReports()
			wg.Wait()
			endAbandoned(fmt.Errorf("%w; its TaskManager did not stop it within %v (heartbeat.timeout)", abandoned(), lv.timeout), lv.grace())
		}
	}
	stopRun(nil)
	stopReports()
	wg.Wait()
	return nil
}

func isSubtaskError(err error) bool {
	var se *exec.SubtaskError
	return errors.As(err, &se)
}

func describe(err error) string {
	var se *exec.SubtaskError
	if errors.As(err, &se) && se.Stack != "" {
		return err.Error() + "\n" + se.Stack
	}
	return err.Error()
}

// report sends a worker-level failure, returning err for the caller.
func report(ctx context.Context, jm rpcpb.JobManagerClient, d *Deployment, _ []*exec.Task, err error) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	jm.ReportTasks(rctx, &rpcpb.ReportTasksRequest{JobId: d.JobID, WorkerId: d.WorkerID, Failure: err.Error(), Attempt: d.Attempt})
	return err
}

// LocalTask is a subtask that runs in this process.
type LocalTask struct {
	Task    *exec.Task
	Vertex  int
	Subtask int
}

// Wire registers on ep the data-plane streams of worker me, where place
// tells which worker runs each subtask and addrs where each worker's
// endpoint listens, and returns the subtasks me runs. Stream (v<<16 | s)
// carries every batch for subtask s of vertex v from one worker to the
// worker running it. tasks must have been built with the same placement:
// edges to subtasks elsewhere encode their batches, and those subtasks'
// inboxes are where records for them queue.
func Wire(me string, place func(vertex, subtask int) string, g *jobgraph.JobGraph, tasks [][]*exec.Task, ep *network.Endpoint, addrs map[string]string) ([]LocalTask, error) {
	vertexOf := map[int]int{}
	for vi, v := range g.Vertices {
		for _, op := range v.Operators {
			vertexOf[op.ID] = vi
		}
	}
	var local []LocalTask
	for tv, v := range g.Vertices {
		if len(tasks[tv]) != v.Parallelism {
			return nil, fmt.Errorf("vertex %q has %d subtasks, want %d", v.Name, len(tasks[tv]), v.Parallelism)
		}
		for s := range v.Parallelism {
			stream := uint32(tv)<<16 | uint32(s)
			at := place(tv, s)
			if at == me {
				local = append(local, LocalTask{Task: tasks[tv][s], Vertex: tv, Subtask: s})
			}
			// ends counts, per worker, the producer subtasks there that
			// send into this consumer subtask.
			ends := map[string]int{}
			for _, e := range g.Edges {
				if vertexOf[e.ToNode] != tv {
					continue
				}
				fv := vertexOf[e.FromNode]
				if e.Partitioning == jobgraph.Forward {
					ends[place(fv, s)]++
					continue
				}
				for ps := range g.Vertices[fv].Parallelism {
					ends[place(fv, ps)]++
				}
			}
			if at == me {
				for w, n := range ends {
					if w != me {
						ep.Receive(w, stream, tasks[tv][s].Inbox, n)
					}
				}
			} else if n := ends[me]; n > 0 {
				addr, ok := addrs[at]
				if !ok {
					return nil, fmt.Errorf("no data address for worker %s", at)
				}
				ep.Send(at, addr, stream, tasks[tv][s].Inbox, n)
			}
		}
	}
	return local, nil
}

type taskState struct {
	state string
	err   string
	// peerLost marks err as a lost data connection to another worker.
	peerLost bool
}

// reporter sends subtask states at once when they change, and record
// counts every reportInterval.
type reporter struct {
	jm      rpcpb.JobManagerClient
	d       *Deployment
	tasks   []LocalTask
	mu      sync.Mutex
	state   map[*exec.Task]taskState
	failure string
	changed chan struct{}

	// peerLost marks failure as a lost data connection to another worker.
	peerLost bool
}

func (r *reporter) set(t *exec.Task, state, err string) {
	r.mu.Lock()
	r.state[t] = taskState{state: state, err: err}
	r.mu.Unlock()
	r.poke()
}

// setFailed records a subtask's failure; peerLost marks it as a lost data
// connection to another worker, a consequence of another failure.
func (r *reporter) setFailed(t *exec.Task, err string, peerLost bool) {
	r.mu.Lock()
	r.state[t] = taskState{state: v1.TaskFailed, err: err, peerLost: peerLost}
	r.mu.Unlock()
	r.poke()
}

// fail records a worker-level failure; peerLost marks it as a lost
// connection to another worker, a consequence of another failure.
func (r *reporter) fail(msg string, peerLost bool) {
	r.mu.Lock()
	r.failure, r.peerLost = msg, peerLost
	r.mu.Unlock()
	r.poke()
}

func (r *reporter) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *reporter) loop(ctx context.Context) {
	tick := time.NewTicker(reportInterval)
	defer tick.Stop()
	r.send(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.changed:
		}
		r.send(ctx)
	}
}

func (r *reporter) send(ctx context.Context) {
	req := &rpcpb.ReportTasksRequest{JobId: r.d.JobID, WorkerId: r.d.WorkerID, Attempt: r.d.Attempt}
	r.mu.Lock()
	for _, lt := range r.tasks {
		st := r.state[lt.Task]
		req.Tasks = append(req.Tasks, &rpcpb.TaskStatus{
			Vertex: int32(lt.Vertex), Subtask: int32(lt.Subtask), State: st.state, Error: st.err,
			RecordsIn: lt.Task.In.Load(), RecordsOut: lt.Task.Out.Load(), PeerLost: st.peerLost,
		})
	}
	req.Failure, req.PeerLost = r.failure, r.peerLost
	r.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.jm.ReportTasks(rctx, req); err != nil && ctx.Err() == nil {
		slog.Warn("worker: report to JobManager failed", "err", err)
	}
}

// Fail reports that the worker could not build its subtasks.
func Fail(ctx context.Context, d *Deployment, err error) error {
	conn, cerr := dialJobManager(d)
	if cerr != nil {
		return err
	}
	defer conn.Close()
	return report(ctx, rpcpb.NewJobManagerClient(conn), d, nil, fmt.Errorf("build subtasks: %w", err))
}

// publishPoll bounds one AwaitPublish call; the worker asks again while
// the job's other subtasks run.
const publishPoll = 30 * time.Second

// awaitPublish waits until the JobManager says the whole job finished, so
// that this worker's sinks may publish; an error (wrapping
// exec.ErrJobStopping) when the job ends otherwise or ctx ends first.
func awaitPublish(ctx context.Context, jm rpcpb.JobManagerClient, d *Deployment) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, publishPoll)
		resp, err := jm.AwaitPublish(cctx, &rpcpb.AwaitPublishRequest{JobId: d.JobID, WorkerId: d.WorkerID, Attempt: d.Attempt}, grpc.WaitForReady(true))
		cancel()
		switch {
		case err == nil && resp.Publish:
			return nil
		case err == nil:
			return fmt.Errorf("%w: sinks not published: %s", exec.ErrJobStopping, resp.Reason)
		case ctx.Err() != nil:
			return fmt.Errorf("%w: sinks not published: %v", exec.ErrJobStopping, context.Cause(ctx))
		case status.Code(err) == codes.DeadlineExceeded:
			// Ask again: the liveness link ends ctx if the JobManager
			// stays away.
		default:
			return fmt.Errorf("%w: sinks not published: ask the JobManager: %v", exec.ErrJobStopping, err)
		}
	}
}
