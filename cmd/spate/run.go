package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/launcher"
)

// run runs a program on a target: plainly (local), or as a client that
// submits its jobs to a JobManager (remote).
func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	cf.registerEnvFile(fs)
	target := fs.String("target", "local", "where jobs run: local (embedded executor), remote (a running JobManager), process-per-job (a cluster of child processes for each job, removed after it), kubernetes-session (the session -D kubernetes.cluster-id=ID) or kubernetes-per-job (a cluster of pods for each job)")
	var jm string
	fs.StringVar(&jm, "jobmanager", "", "the JobManager's REST address host:port, for --target remote (default rest.address:rest.port, localhost:8081)")
	fs.StringVar(&jm, "m", "", "shorthand for --jobmanager")
	par := fs.Int("p", 0, "default parallelism of the program's jobs (parallelism.default)")
	detached := fs.Bool("detached", false, "return once each job is submitted instead of following it to its end")
	fs.BoolVar(detached, "d", false, "shorthand for --detached")
	sessionID := fs.String("session", "", "submit to this session cluster (spate session list); implies --target remote")
	keepLogs := fs.Bool("keep-logs", false, "process-per-job: keep the cluster's directory (logs) after the job")
	var pf progressFlags
	pf.register(fs)
	var sf savepointFlags
	sf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: spate run [--target local|remote|process-per-job] [--jobmanager host:port] [-p N] [--detached] [-s SAVEPOINT [--allow-non-restored-state]] [-D key=value] [--env-file FILE] ./prog [args...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("run: name the program, e.g. spate run --target remote ./examples/wordcount FILE")
	}
	switch *target {
	case "local", "remote", "process-per-job", "kubernetes-session", "kubernetes-per-job":
	default:
		return fmt.Errorf("run: --target %q: want local, remote, process-per-job, kubernetes-session or kubernetes-per-job", *target)
	}
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	workerEnv, err := conf.WorkerEnv()
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if *sessionID != "" {
		info, err := findSession(*sessionID)
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		*target, jm = "remote", info.REST
		info.Credentials.applyTo(&conf)
	}
	if *target == "kubernetes-session" {
		rest, err := kubeSessionREST(conf)
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		*target, jm = "remote", rest
	}
	if *par < 0 {
		return fmt.Errorf("run: -p %d: want a positive parallelism", *par)
	}
	if *par > 0 {
		conf.Set(config.ParallelismDefault, strconv.Itoa(*par))
	}
	if err := sf.apply(&conf); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	// The embedded executor runs in the program: no JobManager to follow.
	if pf.token, err = restTokenOf(conf); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if pf.tls, err = restTLSOf(conf); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	pg, err := pf.start(os.Stderr, *target != "local" && !*detached)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer pg.Close()
	prog, cleanup, err := executable(fs.Arg(0))
	if err != nil {
		return err
	}
	defer cleanup()
	if *target == "process-per-job" || *target == "kubernetes-per-job" {
		return runPerJob(prog, fs.Args()[1:], conf, *detached, *keepLogs, *target == "kubernetes-per-job", pg)
	}
	cmd := exec.Command(prog, fs.Args()[1:]...)
	cmd.Env = append(os.Environ(), config.PropertiesEnv+"="+properties(conf), spate.TargetEnv+"="+*target)
	var submitted *submissions
	if *target == "remote" {
		// The program tells what it submits: a program that submits
		// nothing is an error, not a silent success. Without the socket
		// the jobs still run; only that check is lost.
		if srv, err := launcher.Listen(); err != nil {
			fmt.Fprintf(os.Stderr, "spate run: %v; a program that submits no job will not be detected\n", err)
		} else {
			defer srv.Close()
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan struct{})
			submitted = &submissions{progress: pg}
			go func() { defer close(served); srv.Serve(ctx, submitted) }()
			defer func() { cancel(); <-served }()
			cmd.Env = append(cmd.Env, launcher.Env+"="+srv.Path())
		}
	}
	if *target == "local" {
		// The job runs in the program itself: it gets its workers'
		// variables.
		for k, v := range workerEnv {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	if *target == "remote" {
		cmd.Env = append(cmd.Env, spate.JobManagerEnv+"="+restURL(restAddress(jm, conf), conf), spate.DetachedEnv+"="+strconv.FormatBool(*detached))
		// The files' paths, never the token or keys, in the program's environment.
		env, err := restClientEnv(conf)
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		cmd.Env = append(cmd.Env, env...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, pg.output(os.Stdout), pg.output(os.Stderr)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return exitCode(ee.ExitCode())
		}
		return fmt.Errorf("run %s: %w", fs.Arg(0), err)
	}
	if submitted != nil && submitted.count() == 0 {
		return noJobError(fs.Arg(0), "the JobManager at "+restAddress(jm, conf))
	}
	return nil
}

// submissions counts the jobs a program run on a remote target submits.
type submissions struct {
	mu       sync.Mutex
	n        int
	progress *progress // shows the jobs' progress, if not nil
}

var _ launcher.Handler = (*submissions)(nil)

func (s *submissions) DeployCluster(context.Context, launcher.ClusterRequest) (launcher.Cluster, error) {
	return launcher.Cluster{}, errors.New("the remote target submits to a running JobManager and deploys no cluster")
}

func (s *submissions) ReleaseCluster(context.Context, string) error { return nil }

func (s *submissions) Submitted(sub launcher.Submission) {
	s.progress.follow(sub.REST, sub.JobID, sub.JobName)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
}

func (s *submissions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// properties renders conf as $SPATE_PROPERTIES.
func properties(conf config.Config) string {
	return config.EncodeProperties(conf.Entries())
}

// exitCode is a program's failure already reported on its own output: the
// CLI exits with the same code and prints nothing more.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
