// Package taskmanager is Spate's worker host: a TaskManager registers with
// the JobManager, offers its slots, exchanges heartbeats with it, and for
// each job deployed on it fetches the program's binary once, starts a
// job-scoped worker process from it, supervises that process, and stops it
// and removes its files when the job is released.
//
// A worker's standard output and error reach the TaskManager's own output,
// each line tagged with the job and the worker (a line longer than 64 KiB
// in pieces of 64 KiB), and the last lines of its standard error explain
// an unexpected exit to the JobManager. The TaskManager keeps its last
// 1 MiB of output for the REST API, and says so when older output rotated
// out of it.
//
// Each worker runs in a process group of its own: stopping it signals the
// group (SIGTERM, then SIGKILL after StopGrace), and whatever the group
// still holds when the worker exits is killed, so a process a job started
// neither outlives the job nor, by holding the worker's output open, holds
// up the TaskManager. Each worker has a memory limit: its share of the
// TaskManager's memory (KeyProcessMemory) by slots, or KeyWorkerMemory.
//
// Lifecycle: Run registers and keeps one session with the JobManager; when
// the session ends (JobManager gone, heartbeat timeout) every worker is
// stopped, and Run registers again (or returns, with ExitOnJobManagerLoss).
// Run owns every goroutine and child process it starts; they are all gone
// when it returns.
package taskmanager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/blob"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/heartbeat"
	"github.com/spate-dev/spate/internal/metrics"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// Configuration keys the TaskManager reads, named as Flink's.
const (
	KeySlots = "taskmanager.numberOfTaskSlots"
	KeyHost  = "taskmanager.host"
	KeyID    = "taskmanager.resource-id"
	KeyDir   = "taskmanager.tmp.dirs"
	// KeyWorkerMemory limits the resident memory of each job's worker
	// process; a worker above it is killed and its job fails. Unset, a
	// worker's limit is its share of KeyProcessMemory.
	KeyWorkerMemory = "taskmanager.worker.memory-limit"
	// KeyProcessMemory is the memory of the whole TaskManager, shared by
	// its workers in proportion to their slots: a worker holding k of n
	// slots may use k/n of it (Flink's taskmanager.memory.process.size).
	KeyProcessMemory = "taskmanager.memory.process.size"
)

// DefaultProcessMemory is KeyProcessMemory's default, Flink's: 1728 MiB.
const DefaultProcessMemory = 1728 << 20

// Config configures a TaskManager.
type Config struct {
	// JobManager is the JobManager's RPC address (host:port).
	JobManager string
	// Slots is the number of task slots offered.
	Slots int
	// ResourceID names this TaskManager; host:pid if empty.
	ResourceID string
	// Host is the address workers' data-plane listeners bind and other
	// workers dial; 127.0.0.1 if empty.
	Host string
	// WorkDir holds cached artifacts and the jobs' directories; a new
	// temporary directory, removed when Run returns, if empty.
	WorkDir string
	// Output receives the workers' output lines; os.Stdout if nil.
	Output io.Writer
	// ExitOnJobManagerLoss makes Run return when the session with the
	// JobManager ends, instead of registering again.
	ExitOnJobManagerLoss bool
	// StopGrace is how long a released worker has to exit after SIGTERM
	// before it is killed; 5 s if zero.
	StopGrace time.Duration
	// WorkerMemory, if positive, is the most resident memory (bytes) a
	// worker may use before it is killed, whatever its slots.
	WorkerMemory int64
	// ProcessMemory is the TaskManager's memory (bytes): without
	// WorkerMemory, a worker holding k of the Slots may use
	// ProcessMemory*k/Slots; DefaultProcessMemory if zero.
	ProcessMemory int64
	// ArtifactGrace is how long a cached binary no worker runs is kept;
	// blob.DefaultCleanupInterval if zero.
	ArtifactGrace time.Duration
	Logger        *slog.Logger
	// Prometheus, if set, are the ports /metrics may listen on
	// (metrics.reporter.prom.port); nil for no /metrics.
	Prometheus *metrics.PortRange
	// WorkerUIDs, if set, are the uids workers run under when the
	// TaskManager runs as root, one per worker (users.go); nil runs them
	// as the TaskManager's user.
	WorkerUIDs *UIDRange
	// TLS, if set, makes the connection to the JobManager mutual TLS and
	// gives each worker a certificate naming its job (security.go); nil
	// speaks in the clear.
	TLS *pki.Material
}

// ConfigFrom reads a TaskManager's configuration from c.
func ConfigFrom(c config.Config, jobManager string) (Config, error) {
	cfg := Config{JobManager: jobManager, Slots: 1, Host: "127.0.0.1"}
	if v, ok := c.Get(KeySlots); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return cfg, fmt.Errorf("configuration %s = %q: want a positive number of slots", KeySlots, v)
		}
		cfg.Slots = n
	}
	if v, ok := c.Get(KeyHost); ok && v != "" {
		cfg.Host = v
	}
	cfg.ResourceID, _ = c.Get(KeyID)
	mem, err := c.Bytes(KeyWorkerMemory, 0)
	if err != nil {
		return cfg, err
	}
	cfg.WorkerMemory = mem
	if cfg.ProcessMemory, err = c.Bytes(KeyProcessMemory, DefaultProcessMemory); err != nil {
		return cfg, err
	}
	if cfg.ProcessMemory <= 0 {
		v, _ := c.Get(KeyProcessMemory)
		return cfg, fmt.Errorf("configuration %s = %q: want a size above 0, such as \"4g\"", KeyProcessMemory, v)
	}
	cfg.WorkDir, _ = c.Get(KeyDir)
	if cfg.WorkerUIDs, err = ParseUIDRange(c.String(KeyWorkerUIDs, DefaultWorkerUIDs)); err != nil {
		return cfg, err
	}
	if cfg.ArtifactGrace, err = blob.CleanupInterval(c); err != nil {
		return cfg, err
	}
	if pr, on, err := metrics.PromPort(c.Get); err != nil {
		return cfg, err
	} else if on {
		cfg.Prometheus = &pr
	}
	return cfg, nil
}

// TaskManager hosts job workers.
type TaskManager struct {
	cfg     Config
	log     *slog.Logger
	workDir string
	ownDir  bool
	out     *lineWriter

	artifacts artifactCache // cached program binaries (artifacts.go)
	metrics   *tmMetrics    // workers' figures, /metrics (metrics.go)

	mu struct {
		sync.Mutex
		workers map[string]*workerProc // by job id
	}
	// usersMu and usersRoot serve the workers' own users (users.go).
	usersMu   sync.Mutex
	usersRoot string
	// events carries messages for the JobManager from worker supervisors to
	// the session loop.
	events chan *rpcpb.TaskManagerMessage
	wg     sync.WaitGroup
}

// New prepares a TaskManager.
func New(cfg Config) (*TaskManager, error) {
	if cfg.JobManager == "" {
		return nil, errors.New("taskmanager: no JobManager address: pass --jobmanager host:port (the JobManager's RPC port, jobmanager.rpc.port)")
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ResourceID == "" {
		h, _ := os.Hostname()
		cfg.ResourceID = fmt.Sprintf("%s:%d", h, os.Getpid())
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 5 * time.Second
	}
	if cfg.ArtifactGrace <= 0 {
		cfg.ArtifactGrace = blob.DefaultCleanupInterval
	}
	if cfg.ProcessMemory <= 0 {
		cfg.ProcessMemory = DefaultProcessMemory
	}
	out := &lineWriter{w: cfg.Output}
	if cfg.Output == nil {
		out.w, out.file = os.Stdout, outputFile(os.Stdout)
	}
	tm := &TaskManager{cfg: cfg, log: cfg.Logger, out: out, events: make(chan *rpcpb.TaskManagerMessage, 256)}
	if tm.log == nil {
		tm.log = slog.Default()
	}
	tm.mu.workers = map[string]*workerProc{}
	tm.workDir = cfg.WorkDir
	if tm.workDir == "" {
		d, err := os.MkdirTemp("", "spate-tm-")
		if err != nil {
			return nil, fmt.Errorf("taskmanager: create work directory: %w", err)
		}
		tm.workDir, tm.ownDir = d, true
	} else if err := os.MkdirAll(tm.workDir, 0o755); err != nil {
		return nil, fmt.Errorf("taskmanager: create work directory: %w", err)
	}
	var err error
	if tm.metrics, err = newTMMetrics(cfg.Host, cfg.Prometheus); err != nil {
		if tm.ownDir {
			os.RemoveAll(tm.workDir)
		}
		return nil, fmt.Errorf("taskmanager: %w", err)
	}
	return tm, nil
}

// workerMemory returns the memory limit of a worker holding slots of the
// TaskManager's slots, and the key that sets it.
func (tm *TaskManager) workerMemory(slots int) (int64, string) {
	if tm.cfg.WorkerMemory > 0 {
		return tm.cfg.WorkerMemory, KeyWorkerMemory
	}
	slots = min(max(slots, 1), tm.cfg.Slots)
	return tm.cfg.ProcessMemory / int64(tm.cfg.Slots) * int64(slots), KeyProcessMemory
}

// WorkDir is where the TaskManager keeps artifacts and job directories.
func (tm *TaskManager) WorkDir() string { return tm.workDir }

// Run serves the JobManager until ctx ends.
func (tm *TaskManager) Run(ctx context.Context) error {
	defer func() {
		tm.stopAll("taskmanager stopping")
		tm.wg.Wait()
		tm.removeWorkersRoot()
		if tm.ownDir {
			os.RemoveAll(tm.workDir)
		}
	}()
	tm.logUsers()
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep() // before the wait above
	tm.wg.Add(1)
	go tm.sweepArtifacts(sweepCtx)
	if tm.metrics.promLn != nil {
		tm.wg.Add(1)
		go tm.serveMetrics(sweepCtx)
	}
	backoff := 100 * time.Millisecond
	for {
		registered, err := tm.session(ctx)
		tm.stopAll("session with the JobManager ended")
		if ctx.Err() != nil || errors.Is(err, errShutdown) {
			return nil
		}
		if tm.cfg.ExitOnJobManagerLoss && registered {
			return fmt.Errorf("taskmanager: lost the JobManager at %s: %w", tm.cfg.JobManager, err)
		}
		if registered {
			backoff = 100 * time.Millisecond
		}
		tm.log.Warn("taskmanager: no session with the JobManager; retrying", "jobmanager", tm.cfg.JobManager, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// maxDeployBytes bounds a message from the JobManager. A DeployWorker
// carries the restore handles of the worker's subtasks, small states
// inline (up to 64 KiB each, storage.InlineLimit); restoring at another
// parallelism hands every subtask every old subtask's handle of its
// vertex, which goes past gRPC's default 4 MiB with a few dozen of them.
const maxDeployBytes = 256 << 20

// session registers and serves one session; registered tells whether
// registration succeeded.
func (tm *TaskManager) session(ctx context.Context) (registered bool, err error) {
	conn, err := grpc.NewClient(tm.cfg.JobManager, tm.dialOption(), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxDeployBytes)))
	if err != nil {
		return false, fmt.Errorf("connect to JobManager %s: %w", tm.cfg.JobManager, err)
	}
	defer conn.Close()
	client := rpcpb.NewJobManagerClient(conn)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	reg, err := client.RegisterTaskManager(rctx, &rpcpb.RegisterTaskManagerRequest{
		ResourceId: tm.cfg.ResourceID, Slots: int32(tm.cfg.Slots), Host: tm.cfg.Host,
		CpuCores: int32(runtime.NumCPU()), PhysicalMemory: physicalMemory(),
	}, grpc.WaitForReady(true))
	cancel()
	if err != nil {
		return false, fmt.Errorf("register with JobManager %s: %w", tm.cfg.JobManager, err)
	}
	id := reg.TaskmanagerId
	interval := time.Duration(reg.HeartbeatIntervalMs) * time.Millisecond
	timeout := time.Duration(reg.HeartbeatTimeoutMs) * time.Millisecond
	tm.log.Info("taskmanager registered", "id", id, "jobmanager", tm.cfg.JobManager, "slots", tm.cfg.Slots, "prometheus", tm.PrometheusAddr())

	sctx, stop := context.WithCancel(ctx)
	var reporting sync.WaitGroup
	// One deferred call: the reporter ends only once sctx is cancelled, so
	// the wait must come after stop (two defers would run in the other
	// order and wait for ever: the TaskManager never registered again).
	defer func() {
		stop()
		reporting.Wait()
	}()
	reporting.Go(func() { tm.reportMetrics(sctx, conn, id) })
	stream, err := client.Connect(sctx)
	if err != nil {
		return true, fmt.Errorf("open session: %w", err)
	}
	if err := stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_Hello{Hello: &rpcpb.Hello{TaskmanagerId: id}}}); err != nil {
		return true, fmt.Errorf("open session: %w", err)
	}
	in := make(chan *rpcpb.JobManagerMessage)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case in <- m:
			case <-sctx.Done():
				recvErr <- sctx.Err()
				return
			}
		}
	}()
	// The JobManager's heartbeats are watched as it watches ours: any
	// message counts as one.
	beats, err := newJMWatch(interval, timeout)
	if err != nil {
		return true, fmt.Errorf("registered with JobManager %s: %w", tm.cfg.JobManager, err)
	}
	const jmPeer = "jobmanager"
	beats.Add(time.Now(), jmPeer)
	tick := time.NewTimer(interval)
	defer tick.Stop()
	send := func(m *rpcpb.TaskManagerMessage) error {
		if err := stream.Send(m); err != nil {
			return fmt.Errorf("session with JobManager %s broken: %w", tm.cfg.JobManager, err)
		}
		return nil
	}
	js := jmSession{id: id, rest: reg.RestAddress, interval: interval, timeout: timeout, conn: conn}
	for {
		select {
		case <-ctx.Done():
			stream.CloseSend()
			return true, ctx.Err()
		case err := <-recvErr:
			return true, fmt.Errorf("session with JobManager %s ended: %w", tm.cfg.JobManager, err)
		case now := <-tick.C:
			e := beats.Tick(now)
			if len(e.Lost) > 0 {
				return true, fmt.Errorf("JobManager %s lost: %s", tm.cfg.JobManager, e.Lost[0].Cause(timeout))
			}
			if e.Send {
				if err := send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_Heartbeat{Heartbeat: &rpcpb.Heartbeat{SentUnixMs: now.UnixMilli()}}}); err != nil {
					return true, err
				}
			}
			tick.Reset(max(time.Until(beats.Next()), time.Millisecond))
		case m := <-tm.events:
			if err := send(m); err != nil {
				return true, err
			}
		case m := <-in:
			beats.Heard(time.Now(), jmPeer)
			switch k := m.Kind.(type) {
			case *rpcpb.JobManagerMessage_Deploy:
				tm.deploy(sctx, js, k.Deploy)
			case *rpcpb.JobManagerMessage_Release:
				tm.release(k.Release.JobId, k.Release.Reason, k.Release.Attempt)
			case *rpcpb.JobManagerMessage_Shutdown:
				tm.log.Info("taskmanager: the cluster ends", "reason", k.Shutdown.Reason)
				// Acknowledged once the workers are gone: the JobManager
				// waits for it (or for this session's end) before it exits.
				tm.stopAll("the cluster ends")
				send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_ShutdownAck{ShutdownAck: &rpcpb.ShutdownAck{}}})
				stream.CloseSend()
				return true, errShutdown
			case *rpcpb.JobManagerMessage_StdoutRequest:
				if err := send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_Stdout{Stdout: &rpcpb.StdoutResponse{
					RequestId: k.StdoutRequest.RequestId, Text: tm.out.recent(),
				}}}); err != nil {
					return true, err
				}
			}
		}
	}
}

// errShutdown ends Run: the JobManager said the cluster ends.
var errShutdown = errors.New("the cluster ends")

// post queues a message for the JobManager; it is dropped if the
// TaskManager is shutting down.
func (tm *TaskManager) post(ctx context.Context, m *rpcpb.TaskManagerMessage) {
	select {
	case tm.events <- m:
	case <-ctx.Done():
	}
}

// keptOutput is how much of its workers' recent output a TaskManager
// keeps for the REST API.
const keptOutput = 1 << 20

// lineWriter serialises tagged lines from many workers and keeps the most
// recent ones.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
	// file is the path of the file w writes to, if known: it keeps all of
	// the output, also what rotated out of kept.
	file string
	kept []byte
	// dropped counts the bytes that rotated out of kept.
	dropped int64
}

func (l *lineWriter) line(tag, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := len(l.kept)
	l.kept = fmt.Appendf(l.kept, "%s %s\n", tag, text)
	l.w.Write(l.kept[start:])
	if len(l.kept) > keptOutput {
		// Drop the oldest half, at a line boundary.
		cut := len(l.kept) - keptOutput/2
		if i := bytes.IndexByte(l.kept[cut:], '\n'); i >= 0 {
			cut += i + 1
		}
		l.dropped += int64(cut)
		l.kept = append(l.kept[:0], l.kept[cut:]...)
	}
}

// recent returns the kept output, after a first line that says so (see
// v1.OutputRotated) if older output rotated out of it.
func (l *lineWriter) recent() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped == 0 {
		return string(l.kept)
	}
	marker := fmt.Sprintf("%s %d bytes of older output are no longer in this TaskManager's memory, which keeps the last %d bytes", v1.OutputRotated, l.dropped, keptOutput)
	if l.file != "" {
		marker += v1.OutputFileMarker + l.file
	}
	return marker + "\n" + string(l.kept)
}

func physicalMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb int64
	if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err != nil {
		return 0
	}
	return kb << 10
}

// newJMWatch returns the Monitor of a TaskManager's session, with the
// durations the JobManager sent at registration.
func newJMWatch(interval, timeout time.Duration) (*heartbeat.Monitor[string], error) {
	cfg := heartbeat.Config{Interval: interval, Timeout: timeout}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("the JobManager's heartbeat settings: %w", err)
	}
	return heartbeat.New[string](cfg), nil
}
