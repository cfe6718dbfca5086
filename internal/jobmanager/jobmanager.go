// Package jobmanager is Spate's coordinator process: the dispatcher that
// accepts jobs over the REST API, one job master per job that follows its
// subtasks' state, the resource manager that registers TaskManagers,
// tracks their heartbeats and schedules jobs into their slots, and the
// blob store that keeps the programs' binaries. The decisions are made by
// pure packages it feeds and whose effects it carries out:
// internal/scheduler (slots), internal/jobmaster (failover),
// internal/checkpoint (checkpoints).
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
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/blob"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/heartbeat"
	"github.com/spate-dev/spate/internal/metrics"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
	"github.com/spate-dev/spate/internal/scheduler"
)

// Configuration keys the JobManager reads, named as Flink's.
const (
	KeyRPCAddress         = "jobmanager.rpc.address"
	KeyRPCPort            = "jobmanager.rpc.port"
	KeyRESTAddress        = "rest.address"
	KeyRESTPort           = "rest.port"
	KeyHeartbeatInterval  = "heartbeat.interval"
	KeyHeartbeatTimeout   = "heartbeat.timeout"
	KeySlotRequestTimeout = scheduler.KeySlotRequestTimeout
	KeyBlobDir            = "blob.storage.directory"
	KeyBlobMaxSize        = "blob.max-size"
	// KeyBlobCleanupInterval is how long an artifact no running job
	// references is kept (see artifacts.go).
	KeyBlobCleanupInterval = blob.KeyCleanupInterval
	// KeyShutdownOnApplicationFinish, true by default, ends an
	// application cluster with its application; false keeps it, so that
	// its result stays readable through the REST API until it is stopped.
	KeyShutdownOnApplicationFinish = "execution.shutdown-on-application-finish"
	// KeySlotsMax (Flink's) is the most slots the cluster allocates: a
	// provider starts no TaskManager beyond it, and a job that needs more
	// slots is refused at submission. Default DefaultSlotsMax.
	KeySlotsMax = "slotmanager.number-of-slots.max"
	// KeyDeploymentTimeout is how long a job's workers have, from their
	// deployment, to report ready (artifact fetched, process started,
	// graph rebuilt): a worker that has not fails its job and frees its
	// slots. Default DefaultDeploymentTimeout.
	KeyDeploymentTimeout = "jobmanager.worker.deployment-timeout"
	// KeyJobStoreCapacity (Flink's) is how many ended jobs the JobManager
	// keeps for the REST API; the oldest is forgotten beyond it. Default
	// DefaultJobStoreCapacity.
	KeyJobStoreCapacity = "jobstore.max-capacity"
	// KeyJobStoreExpiration (Flink's) is how long an ended job is kept; a
	// bare number is seconds, as Flink's. Default DefaultJobStoreExpiration.
	KeyJobStoreExpiration = "jobstore.expiration-time"
)

// Defaults of the keys above that Flink leaves unbounded.
const (
	DefaultSlotsMax           = 32
	DefaultDeploymentTimeout  = 2 * time.Minute
	DefaultJobStoreCapacity   = 100
	DefaultJobStoreExpiration = time.Hour
	// DefaultRootCauseWindow is how long a job whose first failure is a
	// consequence (a lost connection to a peer worker) waits for the cause
	// (that worker's exit, its TaskManager's loss) before failing with
	// what it has.
	DefaultRootCauseWindow = 2 * time.Second
	// maxParallelism is the most key groups a job may have, as Flink's.
	maxParallelism = 1 << 15
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
	// SlotsMax is the most slots the cluster allocates (KeySlotsMax);
	// DefaultSlotsMax if zero.
	SlotsMax int
	// DeploymentTimeout is how long workers have to report ready
	// (KeyDeploymentTimeout); DefaultDeploymentTimeout if zero.
	DeploymentTimeout time.Duration
	// JobStoreCapacity and JobStoreExpiration bound the ended jobs kept
	// (KeyJobStoreCapacity, KeyJobStoreExpiration); the defaults if zero.
	JobStoreCapacity   int
	JobStoreExpiration time.Duration
	// RootCauseWindow is how long a secondary failure waits for its cause;
	// DefaultRootCauseWindow if zero.
	RootCauseWindow time.Duration
	// Clock tells the time to the JobManager's decisions; the wall clock
	// if nil.
	Clock Clock
	// BlobDir holds uploaded artifacts; a temporary directory, removed at
	// the end of Run, if empty.
	BlobDir string
	// MaxArtifactBytes limits an uploaded binary.
	MaxArtifactBytes int64
	// ArtifactGrace is how long an artifact no running job references is
	// kept after its last use; blob.DefaultCleanupInterval if zero.
	ArtifactGrace time.Duration
	// Settings is the effective configuration, shown by GET /v1/config.
	Settings config.Config
	Logger   *slog.Logger

	// Provider, if set, starts TaskManagers on demand when jobs wait for
	// slots, each with ProvidedSlots slots, and stops those idle for
	// IdleTimeout. Without it, TaskManagers are started by an operator.
	Provider      Provider
	ProvidedSlots int
	IdleTimeout   time.Duration
	// MinTaskManagers is how many TaskManagers the provider starts at
	// once and keeps even when idle (a session cluster's).
	MinTaskManagers int
	// ExitAfterJob makes Run return once a job has ended and its workers
	// are gone: the JobManager of a per-job cluster.
	ExitAfterJob bool
	// ResultLinger is how long, with ExitAfterJob, the JobManager waits
	// after the job's end for a client to acknowledge its result
	// (POST /v1/jobs/{id}/acknowledge-result, after reading the terminal
	// status or the exceptions) before it exits; 0 exits at once.
	ResultLinger time.Duration
	// ResultAcks is how many acknowledgements of the result end the
	// ResultLinger wait; 1 if zero. A Kubernetes per-job cluster's
	// attached client acknowledges too, once it has read the job's
	// output from the TaskManagers, so it waits for two.
	ResultAcks int
	// Application, if set, is run by the cluster, which ends when it has
	// returned and its jobs are over; Run then returns its failure.
	Application *Application
	// KeepAfterApplication keeps the cluster running after its
	// application has ended, until Run's context ends.
	KeepAfterApplication bool
	// Prometheus, if set, are the ports /metrics may listen on
	// (metrics.reporter.prom.port); nil for no /metrics.
	Prometheus *metrics.PortRange
	// TLS, if set, makes the RPC port mutual TLS 1.3 (security.go); nil
	// serves it in the clear.
	TLS *pki.Material
	// RPCHandshakeTimeout bounds a new RPC connection's handshakes;
	// DefaultRPCHandshakeTimeout if zero.
	RPCHandshakeTimeout time.Duration
	// RESTToken, if set, is the bearer token the REST API requires
	// (rest.authentication.token-file).
	RESTToken []byte
	// RESTTokenFile is the file RESTToken was read from, for an
	// application's main.
	RESTTokenFile string
	// RESTUnauthenticated lets a REST API on a non-loopback address go
	// without a token (rest.authentication.enabled: false).
	RESTUnauthenticated bool
	// MaxUploadsPerClient bounds one client's uploads in flight
	// (rest.upload.max-concurrent).
	MaxUploadsPerClient int
	// RESTTLS, if set, makes the REST API serve HTTPS
	// (security.ssl.rest.enabled); RESTMutualTLS says it requires a
	// client certificate (security.ssl.rest.authentication-enabled).
	RESTTLS       *tls.Config
	RESTMutualTLS bool
	// RESTKeystore and RESTTruststore are the files of RESTTLS, which an
	// application's main uses as a client.
	RESTKeystore, RESTTruststore string
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
	if err := (heartbeat.Config{Interval: cfg.HeartbeatInterval, Timeout: cfg.HeartbeatTimeout}).Validate(); err != nil {
		return cfg, err
	}
	if v, ok := c.Get(KeyShutdownOnApplicationFinish); ok {
		shut, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return cfg, fmt.Errorf("%s: %q is not true or false", KeyShutdownOnApplicationFinish, v)
		}
		cfg.KeepAfterApplication = !shut
	}
	if cfg.SlotsMax, err = positiveInt(c, KeySlotsMax, DefaultSlotsMax, "a number of slots"); err != nil {
		return cfg, err
	}
	if cfg.DeploymentTimeout, err = positiveDuration(c, KeyDeploymentTimeout, DefaultDeploymentTimeout); err != nil {
		return cfg, err
	}
	if cfg.JobStoreCapacity, err = positiveInt(c, KeyJobStoreCapacity, DefaultJobStoreCapacity, "a number of jobs"); err != nil {
		return cfg, err
	}
	if v, ok := c.Get(KeyJobStoreExpiration); ok && strings.TrimSpace(v) != "" {
		// Flink's value is a number of seconds; a unit is welcome too.
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n > 0 {
			cfg.JobStoreExpiration = time.Duration(n) * time.Second
		} else if d, err := config.ParseDuration(v); err == nil && d > 0 {
			cfg.JobStoreExpiration = d
		} else {
			return cfg, fmt.Errorf("configuration %s = %q: want a positive number of seconds or a duration with a unit (1 h)", KeyJobStoreExpiration, v)
		}
	} else {
		cfg.JobStoreExpiration = DefaultJobStoreExpiration
	}
	cfg.BlobDir, _ = c.Get(KeyBlobDir)
	if n, err := c.Bytes(KeyBlobMaxSize, 512<<20); err != nil {
		return cfg, err
	} else {
		cfg.MaxArtifactBytes = n
	}
	if cfg.ArtifactGrace, err = blob.CleanupInterval(c); err != nil {
		return cfg, err
	}
	if pr, on, err := metrics.PromPort(c.Get); err != nil {
		return cfg, err
	} else if on {
		cfg.Prometheus = &pr
	}
	if err := restSecurityFrom(c, &cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// positiveInt reads key as a positive integer, def if unset.
func positiveInt(c config.Config, key string, def int, what string) (int, error) {
	v, ok := c.Get(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("configuration %s = %q: want a positive integer (%s; default %d)", key, v, what, def)
	}
	return n, nil
}

// positiveDuration reads key as a positive duration, def if unset.
func positiveDuration(c config.Config, key string, def time.Duration) (time.Duration, error) {
	d, err := c.Duration(key, def)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		v, _ := c.Get(key)
		return 0, fmt.Errorf("configuration %s = %q: want a positive duration such as 2 min (default %v)", key, v, def)
	}
	return d, nil
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
	clock   Clock
	rpcLn   net.Listener
	restLn  net.Listener
	blobs   *blob.Store
	blobDir string
	ownBlob bool
	// ckptDir is the default checkpoint directory (failover.go), made
	// once; ownCkptDir when it is a temporary one of the JobManager's.
	ckptDirOnce sync.Once
	ckptDir     string
	ckptDirErr  error
	ownCkptDir  bool
	started     time.Time
	// runCtx ends when Run begins to shut down; provider calls take it.
	runCtx context.Context

	mu struct {
		sync.Mutex
		tms     map[string]*taskManager
		tmOrder []string
		// jobs holds every job the JobManager knows: active ones and the
		// ended ones the job store keeps (jobstore.*).
		jobs map[JobID]*job
		// active holds the jobs not yet ended with their workers gone
		// (their masters time their deployments out); suspects those
		// whose first failure is secondary and that wait for its cause.
		// The periodic check walks these, the scheduler's queue and the
		// TaskManagers, never the history.
		active   map[JobID]*job
		suspects map[JobID]*job
		// archive holds the ended jobs, oldest first.
		archive []*job
		// submitted counts the jobs ever accepted (an application's main
		// that submits none has failed).
		submitted int
		nextTM    int
		closed    bool
		// stdout holds the pending requests for TaskManagers' output.
		stdout    map[uint64]chan string
		nextReqID uint64
		// sched decides which slots each job gets, and which
		// TaskManagers to ask the provider for (resources.go).
		sched *scheduler.Scheduler
		// beats watches the TaskManagers' heartbeats and says when to
		// send ours.
		beats *heartbeat.Monitor[string]
		// jobEnded is closed when a job has ended with all its workers
		// gone (for ExitAfterJob).
		jobEnded chan struct{}
		// resultServed is closed when a client acknowledged the result of
		// an ended job.
		resultServed chan struct{}
		resultAcks   int
		app          v1.Application
		// unservedStops counts the stop-with-savepoint triggers whose
		// result no client has fetched yet; stopServed is signalled
		// when one is (an application cluster waits for them before it
		// goes: awaitStopResults).
		unservedStops int
		stopServed    chan struct{}
	}
	// sec is the RPC port's TLS state; nil without Config.TLS.
	sec *rpcSecurity
	// collect relays the records of jobs' Collect sinks to their clients
	// (collect.go).
	collect collectRelay
	// metrics holds the TaskManagers' figures and serves /metrics
	// (metrics.go).
	metrics *jmMetrics
	// stop is closed when Run shuts down.
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
	hb := heartbeat.Config{Interval: cfg.HeartbeatInterval, Timeout: cfg.HeartbeatTimeout}
	if err := hb.Validate(); err != nil {
		return nil, fmt.Errorf("jobmanager: %w", err)
	}
	if cfg.SlotRequestTimeout <= 0 {
		cfg.SlotRequestTimeout = 5 * time.Minute
	}
	if cfg.MaxArtifactBytes <= 0 {
		cfg.MaxArtifactBytes = 512 << 20
	}
	if cfg.SlotsMax <= 0 {
		cfg.SlotsMax = DefaultSlotsMax
	}
	if cfg.DeploymentTimeout <= 0 {
		cfg.DeploymentTimeout = DefaultDeploymentTimeout
	}
	if cfg.JobStoreCapacity <= 0 {
		cfg.JobStoreCapacity = DefaultJobStoreCapacity
	}
	if cfg.JobStoreExpiration <= 0 {
		cfg.JobStoreExpiration = DefaultJobStoreExpiration
	}
	if cfg.RootCauseWindow <= 0 {
		cfg.RootCauseWindow = DefaultRootCauseWindow
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.ProvidedSlots <= 0 {
		cfg.ProvidedSlots = 1
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.Provider != nil {
		if cfg.ProvidedSlots > cfg.SlotsMax {
			return nil, fmt.Errorf("jobmanager: a TaskManager's %d slots (taskmanager.numberOfTaskSlots) exceed %s (%d): raise %s or give TaskManagers fewer slots", cfg.ProvidedSlots, KeySlotsMax, cfg.SlotsMax, KeySlotsMax)
		}
		if n := cfg.MinTaskManagers * cfg.ProvidedSlots; n > cfg.SlotsMax {
			return nil, fmt.Errorf("jobmanager: %d TaskManagers of %d slots (%d slots) exceed %s (%d): raise %s or start fewer TaskManagers", cfg.MinTaskManagers, cfg.ProvidedSlots, n, KeySlotsMax, cfg.SlotsMax, KeySlotsMax)
		}
	}
	if cfg.ArtifactGrace <= 0 {
		cfg.ArtifactGrace = blob.DefaultCleanupInterval
	}
	if cfg.RPCHandshakeTimeout <= 0 {
		cfg.RPCHandshakeTimeout = DefaultRPCHandshakeTimeout
	}
	jm := &JobManager{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, started: cfg.Clock.Now(), stop: make(chan struct{}), runCtx: context.Background()}
	if jm.log == nil {
		jm.log = slog.Default()
	}
	jm.mu.tms = map[string]*taskManager{}
	jm.mu.jobs = map[JobID]*job{}
	jm.mu.active = map[JobID]*job{}
	jm.mu.suspects = map[JobID]*job{}
	jm.mu.stdout = map[uint64]chan string{}
	jm.mu.sched = scheduler.New(jm.schedulerConfig())
	jm.mu.beats = heartbeat.New[string](hb)
	jm.mu.jobEnded = make(chan struct{})
	jm.mu.resultServed = make(chan struct{})
	jm.mu.stopServed = make(chan struct{}, 1)
	if cfg.TLS != nil {
		sec, err := newRPCSecurity(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("jobmanager: %w", err)
		}
		jm.sec = sec
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
	host, _, _ := net.SplitHostPort(cfg.RPCAddress)
	if jm.metrics, err = newJMMetrics(host, cfg.Prometheus); err != nil {
		jm.rpcLn.Close()
		jm.restLn.Close()
		jm.cleanup()
		return nil, fmt.Errorf("jobmanager: %w", err)
	}
	jm.metrics.stats = coreStats{jm}
	if err := jm.checkRESTExposure(); err != nil {
		jm.rpcLn.Close()
		jm.restLn.Close()
		jm.cleanup()
		return nil, err
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
	if jm.ownCkptDir {
		os.RemoveAll(jm.ckptDir)
	}
}

// Run serves RPC and REST until ctx ends, then cancels running jobs' workers
// (TaskManagers see their sessions end) and returns once both servers and
// every goroutine it started have stopped.
func (jm *JobManager) Run(ctx context.Context) error {
	defer jm.cleanup()
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	jm.runCtx = runCtx
	// The checkpoint acknowledgements may be larger than the default
	// bound of rpcServerOptions.
	srv := grpc.NewServer(append(jm.rpcServerOptions(), grpc.MaxRecvMsgSize(max(maxCheckpointAckBytes, rpcMaxRecvBytes)))...)
	rpcpb.RegisterJobManagerServer(srv, jm)
	rpcpb.RegisterClusterSecurityServer(srv, securityServer{jm: jm})
	rpcpb.RegisterCollectRelayServer(srv, collectServer{jm: jm})
	rpcpb.RegisterCheckpointCoordinatorServer(srv, checkpointServer{jm: jm})

	rpcpb.RegisterMetricsReporterServer(srv, metricsServer{jm: jm})
	// Both servers report here once, whether they failed or were stopped.
	errc := make(chan error, 2)
	var servers sync.WaitGroup
	servers.Add(2)
	go func() {
		defer servers.Done()
		errc <- srv.Serve(jm.rpcLn)
	}()
	// The REST server shuts down when told, not when ctx ends: requests in
	// flight are answered first.
	restCtx, stopREST := context.WithCancel(context.WithoutCancel(ctx))
	defer stopREST()
	go func() {
		defer servers.Done()
		errc <- rest.ServeWith(restCtx, jm.restLn, rest.NewHandler(jm, rest.Options{MaxArtifactBytes: jm.cfg.MaxArtifactBytes, Logger: jm.log,
			Token: jm.cfg.RESTToken, MaxUploadsPerClient: jm.cfg.MaxUploadsPerClient}), rest.ServeConfig{TLS: jm.cfg.RESTTLS,
			// Failed handshakes are strangers' doing: not worth more.
			ErrorLog: slog.NewLogLogger(jm.log.Handler(), slog.LevelDebug)})
	}()
	jm.wg.Add(2)
	go jm.checkLoop()
	go jm.sweepArtifacts()
	if jm.metrics.promLn != nil {
		jm.wg.Add(1)
		go jm.serveMetrics(runCtx)
	}
	jm.log.Info("jobmanager started", "rpc", jm.RPCAddr(), "rest", jm.RESTAddr())

	if p := jm.cfg.Provider; p != nil {
		jm.wg.Add(1)
		go jm.watchProvider(p)
		jm.mu.Lock()
		now := jm.clock.Now()
		jm.schedEffectsLocked(jm.mu.sched.Start(now), now)
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
	served := 0 // results of errc already taken
	var err error
	select {
	case err = <-appEnded:
		if jm.cfg.KeepAfterApplication {
			jm.log.Info("jobmanager: the application ended; the cluster stays until stopped ("+KeyShutdownOnApplicationFinish+" is false)", "err", err)
			select {
			case <-ctx.Done():
			case serr := <-errc:
				served++
				err = errors.Join(err, fmt.Errorf("jobmanager: server stopped: %w", serr))
			}
		} else {
			jm.awaitStopResults(ctx)
			jm.log.Info("jobmanager: the application ended; shutting down")
		}
		jm.shutdownTaskManagers("the application ended")
	case <-ctx.Done():
	case <-ended:
		// A per-job cluster's job stopped with a savepoint: its client
		// learns the savepoint's path from the stop's result.
		jm.awaitStopResults(ctx)
		if jm.cfg.ResultLinger > 0 {
			linger := time.NewTimer(jm.cfg.ResultLinger)
			select {
			case <-jm.mu.resultServed:
			case <-linger.C:
			case <-ctx.Done():
			}
			linger.Stop()
		}
		jm.log.Info("jobmanager: the cluster's job ended; shutting down")
	case serr := <-errc:
		served++
		err = fmt.Errorf("jobmanager: server stopped: %w", serr)
	}
	jm.mu.Lock()
	jm.mu.closed = true
	for _, tm := range jm.mu.tms {
		tm.closeLocked()
	}
	jm.mu.Unlock()
	close(jm.stop)
	cancelApp()
	cancelRun()
	stopREST()
	// Sessions end when their TaskManager streams are cancelled; Stop
	// closes them at once rather than waiting for clients.
	srv.Stop()
	servers.Wait()
	for ; served < 2; served++ {
		if serr := <-errc; serr != nil && !errors.Is(serr, grpc.ErrServerStopped) && err == nil {
			err = fmt.Errorf("jobmanager: server stopped: %w", serr)
		}
	}
	if p := jm.cfg.Provider; p != nil {
		p.Close()
	}
	jm.wg.Wait()
	return err
}

// checkInterval is how often checkLoop runs: often enough for the
// heartbeats and for the timeouts' precision.
func (jm *JobManager) checkInterval() time.Duration {
	return min(jm.cfg.HeartbeatInterval, 100*time.Millisecond)
}

// checkLoop runs tickLocked periodically until Run shuts down.
func (jm *JobManager) checkLoop() {
	defer jm.wg.Done()
	tick := time.NewTimer(jm.checkInterval())
	defer tick.Stop()
	for {
		select {
		case <-jm.stop:
			return
		case <-tick.C:
			jm.mu.Lock()
			now := jm.clock.Now()
			jm.tickLocked(now)
			// Sooner when a checkpoint or a restart is due sooner.
			next := jm.checkInterval()
			if at := jm.nextEventLocked(); !at.IsZero() && at.Sub(now) < next {
				next = max(at.Sub(now), time.Millisecond)
			}
			jm.mu.Unlock()
			tick.Reset(next)
		}
	}
}

// tickLocked does what is due at now: heartbeats out, TaskManagers whose
// heartbeats stopped, the scheduler's timers (idle TaskManagers, jobs that
// waited too long for slots), secondary failures whose window passed, the
// jobs' masters' and coordinators' timers (workers not ready in time,
// restart backoffs, checkpoints), and ended jobs past
// jobstore.expiration-time. It walks the TaskManagers and the active jobs
// only, not the history.
func (jm *JobManager) tickLocked(now time.Time) {
	beats := jm.mu.beats.Tick(now)
	for _, l := range beats.Lost {
		if tm, ok := jm.mu.tms[l.Peer]; ok {
			jm.loseTMLocked(tm, l.Cause(jm.cfg.HeartbeatTimeout), now)
		}
	}
	if beats.Send {
		for _, tm := range jm.mu.tms {
			tm.sendLocked(&rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Heartbeat{Heartbeat: &rpcpb.Heartbeat{SentUnixMs: now.UnixMilli()}}})
		}
	}
	jm.schedEffectsLocked(jm.mu.sched.Tick(now), now)
	for _, j := range jobsOf(jm.mu.suspects) {
		if r, idx, ok := j.triage.Tick(now); ok {
			delete(jm.mu.suspects, j.id)
			jm.log.Info("no cause of a secondary failure came within the window; failing with it", "job", j.id, "window", jm.cfg.RootCauseWindow)
			jm.failNowLocked(j, idx, failureOf(r), now)
		} else if _, waits := j.triage.Deadline(); !waits {
			delete(jm.mu.suspects, j.id)
		}
	}
	for _, j := range jobsOf(jm.mu.active) {
		jm.tickFTLocked(j, now)
	}
	jm.expireLocked(now)
}

// tmsLocked lists the registered TaskManagers, for loops that may remove
// some.
func (jm *JobManager) tmsLocked() []*taskManager {
	out := make([]*taskManager, 0, len(jm.mu.tms))
	for _, id := range jm.mu.tmOrder {
		out = append(out, jm.mu.tms[id])
	}
	return out
}

// jobsOf lists a set's jobs in submission order, for loops that may
// change the set.
func jobsOf(set map[JobID]*job) []*job {
	out := make([]*job, 0, len(set))
	for _, j := range set {
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b *job) int { return a.submitted.Compare(b.submitted) })
	return out
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

// shutdownAckTimeout bounds the wait for TaskManagers to acknowledge the
// cluster's end: long enough for them to stop their workers (5 s each at
// most, then killed).
const shutdownAckTimeout = 15 * time.Second

// shutdownTaskManagers tells every TaskManager that the cluster ends, and
// waits until each has acknowledged (its workers are stopped) or its
// session has ended, for shutdownAckTimeout at most. It does not stop
// waiting when Run's context ends: that may be what ends the cluster, and
// the TaskManagers must still be told.
func (jm *JobManager) shutdownTaskManagers(reason string) {
	jm.mu.Lock()
	tms := jm.tmsLocked()
	for _, tm := range tms {
		tm.sendLocked(&rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Shutdown{Shutdown: &rpcpb.Shutdown{Reason: reason}}})
	}
	jm.mu.Unlock()
	deadline := time.NewTimer(shutdownAckTimeout)
	defer deadline.Stop()
	for _, tm := range tms {
		select {
		case <-tm.acked:
		case <-tm.done:
		case <-deadline.C:
			jm.log.Warn("jobmanager: a TaskManager did not acknowledge the cluster's end in time", "taskmanager", tm.id, "resource", tm.resourceID, "timeout", shutdownAckTimeout)
			return
		}
	}
}
