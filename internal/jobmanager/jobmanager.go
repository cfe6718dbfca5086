// Package jobmanager is Spate's coordinator process: the dispatcher that
// accepts jobs over the REST API, one job master per job that schedules its
// subtasks into TaskManager slots and follows their state, the resource
// manager that registers TaskManagers and tracks their slots and heartbeats,
// and the blob store that keeps the programs' binaries.
//
// Lifecycle: New opens the RPC and REST listeners (so their addresses are
// known at once), Run serves both until its context ends, then stops every
// goroutine it started. All cluster state is guarded by one mutex (mu);
// methods that need it held end in Locked. Messages to a TaskManager go
// through its session's outbound queue, drained by the goroutine serving
// that session, so no RPC is ever made while mu is held.
package jobmanager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/blob"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/provider"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// Configuration keys the JobManager reads, named as Flink's.
const (
	KeyRPCAddress         = "jobmanager.rpc.address"
	KeyRPCPort            = "jobmanager.rpc.port"
	KeyRESTAddress        = "rest.address"
	KeyRESTPort           = "rest.port"
	KeyHeartbeatInterval  = "heartbeat.interval"
	KeyHeartbeatTimeout   = "heartbeat.timeout"
	KeySlotRequestTimeout = "slot.request.timeout"
	KeyBlobDir            = "blob.storage.directory"
	KeyBlobMaxSize        = "blob.max-size"
	// KeyShutdownOnApplicationFinish, true by default, ends an
	// application cluster with its application; false keeps it, so that
	// its result stays readable through the REST API until it is stopped.
	KeyShutdownOnApplicationFinish = "execution.shutdown-on-application-finish"
)

// Config configures a JobManager.
type Config struct {
	// RPCAddress and RESTAddress are host:port to listen on; port 0 picks a
	// free one.
	RPCAddress  string
	RESTAddress string
	// HeartbeatInterval is how often both sides send heartbeats;
	// HeartbeatTimeout how long without one before the peer counts as lost.
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	// SlotRequestTimeout is how long a job waits for enough free slots
	// before it fails.
	SlotRequestTimeout time.Duration
	// BlobDir holds uploaded artifacts; a temporary directory, removed at
	// the end of Run, if empty.
	BlobDir string
	// MaxArtifactBytes limits an uploaded binary.
	MaxArtifactBytes int64
	// Settings is the effective configuration, shown by GET /v1/config.
	Settings config.Config
	Logger   *slog.Logger

	// Provider, if set, starts TaskManagers on demand when jobs wait for
	// slots, each with ProvidedSlots slots, and stops those idle for
	// IdleTimeout. Without it, TaskManagers are started by an operator.
	Provider      provider.Provider
	ProvidedSlots int
	IdleTimeout   time.Duration
	// MinTaskManagers is how many TaskManagers the provider starts at
	// once and keeps even when idle (a session cluster's).
	MinTaskManagers int
	// ExitAfterJob makes Run return once a job has ended and its workers
	// are gone: the JobManager of a per-job cluster.
	ExitAfterJob bool
	// ResultLinger is how long, with ExitAfterJob, the JobManager waits
	// after the job's end for a client to fetch its result (the terminal
	// status of a finished or cancelled job, the exceptions of a failed
	// one) before it exits; 0 exits at once.
	ResultLinger time.Duration
	// Application, if set, is run by the cluster, which ends when it has
	// returned and its jobs are over; Run then returns its failure.
	Application *Application
	// KeepAfterApplication keeps the cluster running after its
	// application has ended, until Run's context ends.
	KeepAfterApplication bool
}

// ConfigFrom reads a JobManager's configuration from c, with Flink's
// defaults where Flink has the key (ports 6123 and 8081, heartbeats every
// 10 s with a 50 s timeout, slots awaited for 5 min).
func ConfigFrom(c config.Config) (Config, error) {
	cfg := Config{Settings: c}
	host := get(c, KeyRPCAddress, "localhost")
	cfg.RPCAddress = net.JoinHostPort(host, get(c, KeyRPCPort, "6123"))
	cfg.RESTAddress = net.JoinHostPort(get(c, KeyRESTAddress, host), get(c, KeyRESTPort, "8081"))
	var err error
	if cfg.HeartbeatInterval, err = c.Duration(KeyHeartbeatInterval, 10*time.Second); err != nil {
		return cfg, err
	}
	if cfg.HeartbeatTimeout, err = c.Duration(KeyHeartbeatTimeout, 50*time.Second); err != nil {
		return cfg, err
	}
	if cfg.SlotRequestTimeout, err = c.Duration(KeySlotRequestTimeout, 5*time.Minute); err != nil {
		return cfg, err
	}
	if cfg.HeartbeatTimeout <= cfg.HeartbeatInterval {
		return cfg, fmt.Errorf("%s (%v) must be longer than %s (%v)", KeyHeartbeatTimeout, cfg.HeartbeatTimeout, KeyHeartbeatInterval, cfg.HeartbeatInterval)
	}
	if v, ok := c.Get(KeyShutdownOnApplicationFinish); ok {
		shut, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return cfg, fmt.Errorf("%s: %q is not true or false", KeyShutdownOnApplicationFinish, v)
		}
		cfg.KeepAfterApplication = !shut
	}
	cfg.BlobDir, _ = c.Get(KeyBlobDir)
	if n, err := c.Bytes(KeyBlobMaxSize, 512<<20); err != nil {
		return cfg, err
	} else {
		cfg.MaxArtifactBytes = n
	}
	return cfg, nil
}

func get(c config.Config, key, def string) string {
	if v, ok := c.Get(key); ok && v != "" {
		return v
	}
	return def
}

// JobManager is the coordinator of a Spate cluster.
type JobManager struct {
	cfg     Config
	log     *slog.Logger
	rpcLn   net.Listener
	restLn  net.Listener
	blobs   *blob.Store
	blobDir string
	ownBlob bool
	started time.Time

	mu struct {
		sync.Mutex
		tms     map[string]*taskManager
		tmOrder []string
		jobs    map[JobID]*job
		order   []JobID // submission order
		nextTM  int
		closed  bool
		// stdout holds the pending requests for TaskManagers' output.
		stdout    map[uint64]chan string
		nextReqID uint64
		// pending holds the slots of TaskManagers asked of the provider
		// that have not registered yet, by resource id.
		pending      map[string]int
		nextProvided int
		// jobEnded is closed when a job has ended with all its workers
		// gone (for ExitAfterJob).
		jobEnded chan struct{}
		// resultServed is closed when a client fetched the ended job's
		// result.
		resultServed chan struct{}
		app          v1.Application
	}
	// collect relays the records of jobs' Collect sinks to their clients
	// (collect.go).
	collect collectRelay
	// wake is signalled when a slot-timeout or heartbeat check is due.
	stop chan struct{}
	wg   sync.WaitGroup

	rpcpb.UnimplementedJobManagerServer
}

// New opens the JobManager's listeners and blob store.
func New(cfg Config) (*JobManager, error) {
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 5 * cfg.HeartbeatInterval
	}
	if cfg.SlotRequestTimeout <= 0 {
		cfg.SlotRequestTimeout = 5 * time.Minute
	}
	if cfg.MaxArtifactBytes <= 0 {
		cfg.MaxArtifactBytes = 512 << 20
	}
	jm := &JobManager{cfg: cfg, log: cfg.Logger, started: time.Now(), stop: make(chan struct{})}
	if jm.log == nil {
		jm.log = slog.Default()
	}
	jm.mu.tms = map[string]*taskManager{}
	jm.mu.jobs = map[JobID]*job{}
	jm.mu.stdout = map[uint64]chan string{}
	jm.mu.pending = map[string]int{}
	jm.mu.jobEnded = make(chan struct{})
	jm.mu.resultServed = make(chan struct{})
	if cfg.ProvidedSlots <= 0 {
		cfg.ProvidedSlots = 1
		jm.cfg.ProvidedSlots = 1
	}
	if cfg.IdleTimeout <= 0 {
		jm.cfg.IdleTimeout = 30 * time.Second
	}
	jm.blobDir = cfg.BlobDir
	if jm.blobDir == "" {
		d, err := os.MkdirTemp("", "spate-blobs-")
		if err != nil {
			return nil, fmt.Errorf("jobmanager: create blob directory: %w", err)
		}
		jm.blobDir, jm.ownBlob = d, true
	}
	var err error
	if jm.blobs, err = blob.Open(filepath.Clean(jm.blobDir), cfg.MaxArtifactBytes); err != nil {
		return nil, fmt.Errorf("jobmanager: %w", err)
	}
	if jm.rpcLn, err = net.Listen("tcp", cfg.RPCAddress); err != nil {
		jm.cleanup()
		return nil, fmt.Errorf("jobmanager: listen for RPC on %s: %w (set %s or %s)", cfg.RPCAddress, err, KeyRPCAddress, KeyRPCPort)
	}
	if jm.restLn, err = net.Listen("tcp", cfg.RESTAddress); err != nil {
		jm.rpcLn.Close()
		jm.cleanup()
		return nil, fmt.Errorf("jobmanager: listen for REST on %s: %w (set %s)", cfg.RESTAddress, err, KeyRESTPort)
	}
	return jm, nil
}

// RPCAddr is the address TaskManagers and workers connect to.
func (jm *JobManager) RPCAddr() string { return jm.rpcLn.Addr().String() }

// RESTAddr is the address of the REST API.
func (jm *JobManager) RESTAddr() string { return jm.restLn.Addr().String() }

func (jm *JobManager) cleanup() {
	if jm.ownBlob {
		os.RemoveAll(jm.blobDir)
	}
}

// Run serves RPC and REST until ctx ends, then cancels running jobs' workers
// (TaskManagers see their sessions end) and returns.
func (jm *JobManager) Run(ctx context.Context) error {
	defer jm.cleanup()
	srv := grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
	)
	rpcpb.RegisterJobManagerServer(srv, jm)
	rpcpb.RegisterCollectRelayServer(srv, collectServer{jm: jm})
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(jm.rpcLn) }()
	restCtx, stopREST := context.WithCancel(context.Background())
	defer stopREST()
	go func() {
		errc <- rest.Serve(restCtx, jm.restLn, rest.NewHandler(jm, rest.Options{MaxArtifactBytes: jm.cfg.MaxArtifactBytes, Logger: jm.log}))
	}()
	jm.wg.Add(1)
	go jm.checkLoop()
	jm.log.Info("jobmanager started", "rpc", jm.RPCAddr(), "rest", jm.RESTAddr())

	if p := jm.cfg.Provider; p != nil {
		jm.wg.Add(1)
		go jm.watchProvider(p)
		jm.mu.Lock()
		for range jm.cfg.MinTaskManagers {
			jm.startProvidedLocked()
		}
		jm.mu.Unlock()
	}
	var ended <-chan struct{}
	if jm.cfg.ExitAfterJob {
		ended = jm.mu.jobEnded
	}
	appCtx, cancelApp := context.WithCancel(ctx)
	defer cancelApp()
	var appEnded chan error
	if app := jm.cfg.Application; app != nil {
		appEnded = make(chan error, 1)
		jm.wg.Add(1)
		go jm.runApplication(appCtx, app, appEnded)
	}
	var err error
	select {
	case err = <-appEnded:
		if jm.cfg.KeepAfterApplication {
			jm.log.Info("jobmanager: the application ended; the cluster stays until stopped ("+KeyShutdownOnApplicationFinish+" is false)", "err", err)
			select {
			case <-ctx.Done():
			case serr := <-errc:
				err = errors.Join(err, fmt.Errorf("jobmanager: server stopped: %w", serr))
			}
		} else {
			jm.log.Info("jobmanager: the application ended; shutting down")
		}
		jm.shutdownTaskManagers("the application ended")
	case <-ctx.Done():
	case <-ended:
		if jm.cfg.ResultLinger > 0 {
			select {
			case <-jm.mu.resultServed:
			case <-time.After(jm.cfg.ResultLinger):
			case <-ctx.Done():
			}
		}
		jm.log.Info("jobmanager: the cluster's job ended; shutting down")
	case err = <-errc:
		err = fmt.Errorf("jobmanager: server stopped: %w", err)
	}
	jm.mu.Lock()
	jm.mu.closed = true
	for _, tm := range jm.mu.tms {
		tm.closeLocked()
	}
	jm.mu.Unlock()
	close(jm.stop)
	cancelApp()
	stopREST()
	// Sessions end when their TaskManager streams are cancelled; Stop
	// closes them at once rather than waiting for clients.
	srv.Stop()
	if p := jm.cfg.Provider; p != nil {
		p.Close()
	}
	jm.wg.Wait()
	return err
}

// checkLoop fails jobs that waited too long for slots and TaskManagers
// whose heartbeats stopped.
func (jm *JobManager) checkLoop() {
	defer jm.wg.Done()
	tick := time.NewTicker(min(jm.cfg.HeartbeatInterval, 100*time.Millisecond))
	defer tick.Stop()
	lastBeat := time.Now()
	for {
		select {
		case <-jm.stop:
			return
		case now := <-tick.C:
			jm.mu.Lock()
			if now.Sub(lastBeat) >= jm.cfg.HeartbeatInterval {
				lastBeat = now
				for _, tm := range jm.mu.tms {
					tm.sendLocked(&rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Heartbeat{Heartbeat: &rpcpb.Heartbeat{SentUnixMs: now.UnixMilli()}}})
				}
			}
			for _, tm := range jm.mu.tms {
				if since := now.Sub(tm.lastHeartbeat); since > jm.cfg.HeartbeatTimeout {
					jm.loseTMLocked(tm, fmt.Sprintf("no heartbeat for %v (heartbeat.timeout is %v)", since.Round(time.Millisecond), jm.cfg.HeartbeatTimeout))
				}
			}
			jm.releaseIdleLocked(now)
			for _, id := range jm.mu.order {
				j := jm.mu.jobs[id]
				if j.status == statusCreated && now.Sub(j.submitted) > jm.cfg.SlotRequestTimeout {
					jm.failLocked(j, fmt.Errorf("could not get %d slots within %v (slot.request.timeout): the cluster has %d free of %d; start more TaskManagers, give them more slots (taskmanager.numberOfTaskSlots) or lower the job's parallelism",
						j.slotsNeeded, jm.cfg.SlotRequestTimeout, jm.freeSlotsLocked(), jm.totalSlotsLocked()), "")
				}
			}
			jm.mu.Unlock()
		}
	}
}

// JobID identifies a job: 32 lowercase hex digits, as Flink's.
type JobID string

func newJobID() JobID {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return JobID(hex.EncodeToString(b[:]))
}

var errClosed = errors.New("jobmanager is shutting down")

// shutdownTaskManagers tells every TaskManager that the cluster ends, and
// waits briefly for the messages to go out.
func (jm *JobManager) shutdownTaskManagers(reason string) {
	jm.mu.Lock()
	tms := make([]*taskManager, 0, len(jm.mu.tms))
	for _, tm := range jm.mu.tms {
		tm.sendLocked(&rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Shutdown{Shutdown: &rpcpb.Shutdown{Reason: reason}}})
		tms = append(tms, tm)
	}
	jm.mu.Unlock()
	deadline := time.Now().Add(2 * time.Second)
	for _, tm := range tms {
		for len(tm.out) > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	// Taken from the queue is not yet on the wire.
	time.Sleep(100 * time.Millisecond)
}
