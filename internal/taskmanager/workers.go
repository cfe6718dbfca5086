package taskmanager

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/spate-dev/spate/internal/deployment"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// tailLines is how many lines of a worker's standard error explain its
// exit.
const tailLines = 20

// workerProc is one job's worker process on this TaskManager.
type workerProc struct {
	jobID, workerID string
	// attempt is the deployment's attempt (DeployWorker.attempt).
	attempt int64
	dir     string
	cmd     *exec.Cmd
	// exited is closed when the process has been waited for.
	exited chan struct{}
	// expected is set before the TaskManager stops the process itself.
	expected bool
	tail     tail
	// user is the worker's own user, if it has one (users.go).
	user *workerUser
}

// deploy starts a job's worker in the background: fetching the artifact
// may take a while and must not hold up heartbeats.
func (tm *TaskManager) deploy(ctx context.Context, js jmSession, d *rpcpb.DeployWorker) {
	tm.mu.Lock()
	if _, dup := tm.mu.workers[d.JobId]; dup {
		tm.mu.Unlock()
		tm.log.Warn("taskmanager: job deployed twice; ignoring", "job", d.JobId)
		return
	}
	w := &workerProc{jobID: d.JobId, workerID: d.WorkerId, attempt: d.Attempt, exited: make(chan struct{})}
	tm.mu.workers[d.JobId] = w
	tm.mu.Unlock()
	tm.wg.Add(1)
	go func() {
		defer tm.wg.Done()
		defer tm.useArtifact(d.Artifact)()
		if err := tm.start(ctx, js, d, w); err != nil {
			close(w.exited)
			tm.mu.Lock()
			expected := w.expected
			tm.mu.Unlock()
			if !expected {
				tm.post(ctx, exitedMsg(w, -1, false, err.Error()))
			}
		}
	}()
}

func exitedMsg(w *workerProc, code int, expected bool, reason string) *rpcpb.TaskManagerMessage {
	return &rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_WorkerExited{WorkerExited: &rpcpb.WorkerExited{
		JobId: w.jobID, WorkerId: w.workerID, ExitCode: int32(code), Expected: expected, Reason: reason, Attempt: w.attempt,
	}}}
}

// jmSession is what a TaskManager's session with the JobManager tells its
// workers.
type jmSession struct {
	// id is the TaskManager's id at the JobManager; rest the JobManager's
	// REST address.
	id, rest          string
	interval, timeout time.Duration
	// conn is the session's connection, for the ClusterSecurity calls.
	conn *grpc.ClientConn
}

// pipeGrace is how long a worker's output pipes may stay open after the
// worker exited (held by a process it started) before the TaskManager
// closes them and kills the worker's process group.
const pipeGrace = time.Second

func (tm *TaskManager) start(ctx context.Context, js jmSession, d *rpcpb.DeployWorker, w *workerProc) error {
	bin, err := tm.artifact(ctx, js.conn, d.Artifact)
	if err != nil {
		return err
	}
	base := filepath.Join(tm.workDir, "jobs")
	var owner *workerUser
	if tm.ownUsers() {
		if owner, err = tm.takeUser(d.JobId); err != nil {
			return err
		}
		if base, err = tm.workersRoot(); err != nil {
			owner.release()
			return err
		}
	}
	dir := filepath.Join(base, d.JobId+"-"+d.WorkerId)
	// The directory is recorded before anything can fail, so that
	// stopWorker removes it, and only then frees its user.
	tm.mu.Lock()
	w.dir, w.user = dir, owner
	tm.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create job directory: %w", err)
	}
	if err := owner.own(dir); err != nil {
		return err
	}
	if owner != nil {
		// Its own copy: the cache is not the worker's to read.
		prog := filepath.Join(dir, "program")
		if err := verifiedCopy(bin, prog, d.Artifact); err != nil {
			return err
		}
		bin = prog
	} else if err := verifyFile(bin, d.Artifact); err != nil {
		return err
	}
	tlsFiles, err := tm.workerTLS(ctx, js, d, dir, owner)
	if err != nil {
		return err
	}
	dep := &deployment.Deployment{
		TLS:   tlsFiles,
		JobID: d.JobId, JobName: d.JobName, JobOrdinal: int(d.JobOrdinal), WorkerID: d.WorkerId, Fingerprint: d.Fingerprint,
		JobManager: tm.cfg.JobManager, DataHost: tm.cfg.Host, SlotWorkers: d.SlotWorkers,
		TaskManager:       fmt.Sprintf("%s (%s)", js.id, tm.cfg.ResourceID),
		HeartbeatInterval: js.interval, HeartbeatTimeout: js.timeout,
		Attempt: d.Attempt,
	}
	if d.Checkpointing != nil {
		dep.CheckpointMode = d.Checkpointing.Mode.String()
		dep.CheckpointAlignmentMaxSize = d.Checkpointing.MaxAlignedBytes
	}
	if restore := d.Restore; restore != nil {
		if owner != nil {
			if restore, err = inlineFileStates(restore); err != nil {
				return err
			}
		}
		if dep.Restore, err = proto.Marshal(restore); err != nil {
			return fmt.Errorf("encode restore checkpoint: %w", err)
		}
	}
	depPath := filepath.Join(dir, "deployment.json")
	if err := dep.Write(depPath); err != nil {
		return fmt.Errorf("write deployment: %w", err)
	}
	if err := owner.own(depPath); err != nil {
		return err
	}
	cmd := exec.Command(bin, d.Args...)
	// The job sees the TaskManager's environment plus its own entries,
	// never another job's.
	cmd.Env = append(os.Environ(), deployment.EnvDeployment+"="+depPath, deployment.EnvJobDir+"="+dir, "TMPDIR="+dir)
	limit, limitKey := tm.workerMemory(int(d.Slots))
	// The collector works harder as the worker nears its limit.
	cmd.Env = append(cmd.Env, fmt.Sprintf("GOMEMLIMIT=%d", limit*9/10))
	for k, v := range d.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	setProcAttr(cmd)
	if owner != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(owner.uid), Gid: uint32(owner.gid), Groups: []uint32{}}
	}
	tag := fmt.Sprintf("[job %s %s]", shortID(d.JobId), d.WorkerId)
	stdout := &lineSplitter{emit: func(line string) { tm.out.line(tag, line) }}
	stderr := &lineSplitter{emit: func(line string) { tm.out.line(tag, line); w.tail.add(line) }}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A process the worker started may hold its output open: it does not
	// hold up the TaskManager (and is killed with the group below).
	cmd.WaitDelay = pipeGrace
	mp, err := tm.openMetricsPipe(cmd, d.JobId, d.WorkerId)
	if err != nil {
		return err
	}
	tm.mu.Lock()
	if w.expected {
		// Released while the artifact was being fetched.
		tm.mu.Unlock()
		mp.started(false)
		return errors.New("released before start")
	}
	if err := cmd.Start(); err != nil {
		tm.mu.Unlock()
		mp.started(false)
		return fmt.Errorf("start worker: %w", err)
	}
	w.cmd = cmd
	tm.mu.Unlock()
	mp.started(true)
	watchDone := make(chan struct{})
	var overLimit string
	go func() {
		defer close(watchDone)
		overLimit = tm.watchMemory(cmd, w.exited, limit, limitKey)
	}()
	err = cmd.Wait()
	// What the worker's group left behind goes with it.
	signalGroup(cmd, syscall.SIGKILL)
	mp.stop()
	stdout.flush()
	stderr.flush()
	if n := stdout.split + stderr.split; n > 0 {
		tm.log.Info("taskmanager: a worker printed lines longer than the longest forwarded whole; they were split", "job", d.JobId, "worker", d.WorkerId, "lines", n, "bytes", maxLineBytes)
	}
	tm.mu.Lock()
	expected := w.expected
	tm.mu.Unlock()
	close(w.exited)
	<-watchDone
	code := cmd.ProcessState.ExitCode()
	if code == deployment.ExitJobOver && overLimit == "" && !expected {
		// It stopped itself: the JobManager said its job is over. Not a
		// cause of the job's end.
		tm.log.Info("taskmanager: a worker stopped itself, its job being over at the JobManager", "job", d.JobId, "worker", d.WorkerId)
		expected = true
	}
	if !expected {
		reason := describeExit(cmd.ProcessState, err)
		if overLimit != "" {
			reason = overLimit
		}
		if t := w.tail.String(); t != "" {
			reason += "; its last output:\n" + t
		}
		tm.post(ctx, exitedMsg(w, code, false, reason))
	}
	return nil
}

// signalGroup sends sig to the worker's process group: the worker and
// every process it started (unless one left the group).
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	syscall.Kill(-cmd.Process.Pid, sig)
}

func describeExit(ps *os.ProcessState, err error) string {
	if ps == nil {
		return err.Error()
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + ws.Signal().String()
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return fmt.Sprintf("exit status %d (a process it started held its output open past the exit)", ps.ExitCode())
	}
	return fmt.Sprintf("exit status %d", ps.ExitCode())
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// release stops a job's worker, removes its files and confirms to the
// JobManager. A non-zero attempt spares a worker of a newer attempt.
func (tm *TaskManager) release(jobID, reason string, attempt int64) {
	tm.mu.Lock()
	w, ok := tm.mu.workers[jobID]
	if ok && attempt != 0 && w.attempt > attempt {
		ok = false
	}
	if ok {
		w.expected = true
	}
	tm.mu.Unlock()
	tm.wg.Add(1)
	go func() {
		defer tm.wg.Done()
		if ok {
			tm.stopWorker(w)
			tm.mu.Lock()
			if tm.mu.workers[jobID] == w {
				delete(tm.mu.workers, jobID)
			}
			tm.mu.Unlock()
		}
		tm.log.Info("taskmanager: job released", "job", jobID, "reason", reason)
		select {
		case tm.events <- &rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_JobReleased{JobReleased: &rpcpb.JobReleased{JobId: jobID, Attempt: attempt}}}:
		case <-time.After(10 * time.Second):
		}
	}()
}

// stopWorker ends a worker process, gently first, and removes its
// directory.
func (tm *TaskManager) stopWorker(w *workerProc) {
	tm.mu.Lock()
	cmd := w.cmd
	tm.mu.Unlock()
	if cmd != nil {
		// The whole group: a process the worker started stops with it.
		signalGroup(cmd, syscall.SIGTERM)
		grace := time.NewTimer(tm.cfg.StopGrace)
		select {
		case <-w.exited:
			grace.Stop()
		case <-grace.C:
			signalGroup(cmd, syscall.SIGKILL)
			<-w.exited
		}
	} else {
		<-w.exited
	}
	tm.mu.Lock()
	dir, user := w.dir, w.user
	w.user = nil
	tm.mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
	// Its files are gone: its uid may serve another worker.
	user.release()
}

// stopAll stops every worker, as when the JobManager is lost.
func (tm *TaskManager) stopAll(reason string) {
	tm.mu.Lock()
	var all []*workerProc
	for id, w := range tm.mu.workers {
		w.expected = true
		all = append(all, w)
		delete(tm.mu.workers, id)
	}
	tm.mu.Unlock()
	for _, w := range all {
		tm.log.Info("taskmanager: stopping worker", "job", w.jobID, "reason", reason)
		tm.stopWorker(w)
	}
}

// tail keeps the last lines written to it.
type tail struct {
	mu    sync.Mutex
	lines []string
}

// tailLineBytes bounds each line a tail keeps.
const tailLineBytes = 1 << 10

func (t *tail) add(line string) {
	if len(line) > tailLineBytes {
		line = line[:tailLineBytes] + " [...]"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		t.lines = append(t.lines[:0], t.lines[1:]...)
	}
	t.lines = append(t.lines, line)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// watchMemory kills the worker if its resident memory exceeds limit (set
// by key), and returns why it did, or "" once the worker exited by itself.
func (tm *TaskManager) watchMemory(cmd *exec.Cmd, exited <-chan struct{}, limit int64, key string) string {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return ""
		case <-tick.C:
			rss := residentBytes(cmd.Process.Pid)
			if rss > limit {
				signalGroup(cmd, syscall.SIGKILL)
				return fmt.Sprintf("killed: its resident memory reached %d MiB, over the limit of %d MiB (%s)",
					rss>>20, limit>>20, key)
			}
		}
	}
}

// residentBytes returns a process's resident memory, 0 if unknown.
func residentBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}
