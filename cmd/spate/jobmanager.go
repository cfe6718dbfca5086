package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spate-dev/spate/internal/blob"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/jobmanager"
	"github.com/spate-dev/spate/internal/localkube/inpod"
	"github.com/spate-dev/spate/internal/provider/process"
)

// jobmanagerCmd runs a JobManager until interrupted.
func jobmanagerCmd(args []string) error {
	inPod()
	fs := flag.NewFlagSet("jobmanager", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	host := fs.String("host", "", "address to bind (jobmanager.rpc.address, default localhost)")
	rpcPort := fs.Int("rpc-port", -1, "RPC port (jobmanager.rpc.port, default 6123; 0 picks a free one)")
	restPort := fs.Int("rest-port", -1, "REST port (rest.port, default 8081; 0 picks a free one)")
	prov := fs.String("provider", "", "start TaskManagers on demand with this provider: process (child processes) or kubernetes (pods of the cluster this JobManager's pod belongs to); empty for TaskManagers started by an operator")
	clusterDir := fs.String("cluster-dir", "", "the cluster's directory (logs, TaskManagers' files); for --provider")
	perJob := fs.Bool("per-job", false, "exit once a job has ended and its workers are gone (a per-job cluster)")
	removeDir := fs.Bool("remove-cluster-dir", false, "remove --cluster-dir, logs included, on exit")
	application := fs.String("application", "", "run this program's main in the cluster (application mode); its arguments follow the flags; the JobManager exits when it has returned and its jobs are over")
	minTMs := fs.Int("taskmanagers", 0, "with --provider, TaskManagers to start at once and keep (a session cluster's)")
	linger := fs.Duration("result-linger", 0, "with --per-job, how long to wait after the job's end for a client to fetch its result")
	acks := fs.Int("result-acks", 1, "with --result-linger, how many clients acknowledge the result before the JobManager exits")
	logFormat := logFormatFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 && *application == "" {
		return fmt.Errorf("jobmanager: unexpected argument %q (program arguments go with --application)", fs.Arg(0))
	}
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("jobmanager: %w", err)
	}
	if *prov == "kubernetes" {
		if *host == "" {
			// In a pod: its IP, which the TaskManager pods dial.
			*host = podHost()
		}
		// The REST API's files are where the pod mounts them (on
		// localkube's runner, under its root).
		for _, k := range []string{jobmanager.KeySSLRESTKeystore, jobmanager.KeySSLRESTTruststore} {
			if v, ok := conf.Get(k); ok && strings.TrimSpace(v) != "" {
				conf.Set(k, inpod.Path(strings.TrimSpace(v)))
			}
		}
	}
	if *host != "" {
		conf.Set(jobmanager.KeyRPCAddress, *host)
	}
	if *rpcPort >= 0 {
		conf.Set(jobmanager.KeyRPCPort, strconv.Itoa(*rpcPort))
	}
	if *restPort >= 0 {
		conf.Set(jobmanager.KeyRESTPort, strconv.Itoa(*restPort))
	}
	cfg, err := jobmanager.ConfigFrom(conf)
	if err != nil {
		return fmt.Errorf("jobmanager: %w", err)
	}
	if cfg.Logger, err = daemonLogger("jobmanager", *logFormat); err != nil {
		return err
	}
	cfg.ExitAfterJob, cfg.ResultLinger, cfg.ResultAcks = *perJob, *linger, *acks
	blobDir, cleanupDirs, err := jobManagerDirs(cfg.Logger, *clusterDir, *removeDir)
	if err != nil {
		return err
	}
	defer cleanupDirs()
	if cfg.BlobDir == "" {
		cfg.BlobDir = blobDir
	}
	ended := new(func())
	switch *prov {
	case "":
		if cfg.TLS, err = internalTLS(conf, cfg.Logger, "jobmanager"); err != nil {
			return err
		}
	case "process":
		if *clusterDir == "" {
			return fmt.Errorf("jobmanager: --provider process needs --cluster-dir for the TaskManagers' logs and files")
		}
		slots, err := positiveInt(conf, "taskmanager.numberOfTaskSlots", 1)
		if err != nil {
			return fmt.Errorf("jobmanager: %w", err)
		}
		idle, err := conf.Duration("resourcemanager.taskmanager-timeout", 30*time.Second)
		if err != nil {
			return fmt.Errorf("jobmanager: %w", err)
		}
		ca, material, err := clusterCA(conf, cfg.Logger)
		if err != nil {
			return fmt.Errorf("jobmanager: %w", err)
		}
		cfg.TLS = material
		p, err := process.New(process.Config{Dir: *clusterDir, Args: taskManagerArgs(conf), CA: ca})
		if err != nil {
			return err
		}
		cfg.Provider, cfg.ProvidedSlots, cfg.IdleTimeout, cfg.MinTaskManagers = p, slots, idle, *minTMs
	case "kubernetes":
		if *ended, err = kubeJobManager(conf, &cfg, cfg.Logger); err != nil {
			return err
		}
		if cfg.TLS, err = internalTLS(conf, cfg.Logger, "jobmanager"); err != nil {
			return err
		}
		kubeSecurity(conf, &cfg)
		cfg.MinTaskManagers = *minTMs
	default:
		return fmt.Errorf("jobmanager: --provider %q: want process or kubernetes (or none)", *prov)
	}
	if *application != "" {
		prog, cleanup, err := executable(localPath(*application))
		if err != nil {
			return fmt.Errorf("jobmanager: %w", err)
		}
		defer cleanup()
		out := io.Writer(os.Stdout)
		if *clusterDir != "" {
			f, err := os.Create(filepath.Join(*clusterDir, "log", "application.out"))
			if err != nil {
				return fmt.Errorf("jobmanager: %w", err)
			}
			defer f.Close()
			out = f
		}
		cfg.Application = &jobmanager.Application{Path: prog, Args: fs.Args(), Output: out}
		// The application's own configuration, its jobs' variables
		// included, is for its main only: not the JobManager's (GET
		// /v1/config), nor in its TaskManagers' environment.
		if props, ok := os.LookupEnv(applicationPropertiesEnv); ok {
			os.Unsetenv(applicationPropertiesEnv)
			cfg.Application.Env = []string{config.PropertiesEnv + "=" + props}
		}
	}
	jm, err := jobmanager.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	scheme := "http"
	if cfg.RESTTLS != nil {
		scheme = "https"
	}
	fmt.Printf("JobManager RPC at %s, REST at %s://%s\n", jm.RPCAddr(), scheme, jm.RESTAddr())
	err = jm.Run(ctx)
	if *removeDir && *clusterDir != "" {
		os.RemoveAll(*clusterDir)
	}
	if *ended != nil && ctx.Err() == nil && (*perJob || *application != "") {
		// The cluster's work is over: it removes itself.
		(*ended)()
	}
	return err
}

func positiveInt(conf config.Config, key string, def int) (int, error) {
	v, ok := conf.Get(key)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("configuration %s = %q: want a positive number", key, v)
	}
	return n, nil
}

// applicationPropertiesEnv carries, from the run-application client to the
// JobManager, the $SPATE_PROPERTIES of the application's main.
const applicationPropertiesEnv = "SPATE_APPLICATION_PROPERTIES"

// taskManagerArgs passes the cluster's configuration on to the
// TaskManagers its provider starts (taskmanager.*, heartbeat.*,
// blob.service.cleanup.interval for their caches, ...): all entries but the
// JobManager's own and the jobs' environment variables.
func taskManagerArgs(conf config.Config) []string {
	entries := conf.ClusterEntries()
	var args []string
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		if strings.HasPrefix(k, "jobmanager.") || strings.HasPrefix(k, "rest.") || (strings.HasPrefix(k, "blob.") && k != blob.KeyCleanupInterval) {
			continue
		}
		args = append(args, "-D", k+"="+entries[k])
	}
	return args
}
