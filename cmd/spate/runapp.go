package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/provider"
	"github.com/spate-dev/spate/internal/provider/process"
)

// runApplication runs a program in application mode on the process
// provider: a cluster whose JobManager runs the program's main and ends,
// taking its TaskManagers, when main has returned and its jobs are over.
// Nothing but the cluster's start runs on the client.
func runApplication(args []string) error {
	fs := flag.NewFlagSet("run-application", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	cf.registerEnvFile(fs)
	target := fs.String("target", "process-application", "where the application runs: process-application (child processes on this host) or kubernetes-application (pods; the program is in the image: local:///path)")
	par := fs.Int("p", 0, "default parallelism of the program's jobs (parallelism.default)")
	detached := fs.Bool("detached", false, "return once the cluster has started; it removes itself when the application ends")
	keepLogs := fs.Bool("keep-logs", false, "keep the cluster's directory (logs) after the application")
	var pf progressFlags
	pf.register(fs)
	var sf savepointFlags
	sf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: spate run-application [--target process-application] [-p N] [--detached] [-s SAVEPOINT [--allow-non-restored-state]] [-D key=value] [--env-file FILE] ./prog [args...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("run-application: name the program")
	}
	if *target != "process-application" && *target != "kubernetes-application" {
		return fmt.Errorf("run-application: --target %q: want process-application or kubernetes-application", *target)
	}
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("run-application: %w", err)
	}
	if _, err := conf.WorkerEnv(); err != nil {
		return fmt.Errorf("run-application: %w", err)
	}
	if *par > 0 {
		conf.Set(config.ParallelismDefault, strconv.Itoa(*par))
	}
	if err := sf.apply(&conf); err != nil {
		return fmt.Errorf("run-application: %w", err)
	}
	if *target == "kubernetes-application" {
		return runKubeApplication(conf, fs.Arg(0), fs.Args()[1:], *detached)
	}
	prog, cleanupProg, err := executable(fs.Arg(0))
	if err != nil {
		return err
	}
	defer cleanupProg()
	if pf.token, err = restTokenOf(conf); err != nil {
		return fmt.Errorf("run-application: %w", err)
	}
	if pf.tls, err = restTLSOf(conf); err != nil {
		return fmt.Errorf("run-application: %w", err)
	}
	pg, err := pf.start(os.Stderr, !*detached)
	if err != nil {
		return fmt.Errorf("run-application: %w", err)
	}
	defer pg.Close()
	dir, err := os.MkdirTemp("", "spate-app-")
	if err != nil {
		return fmt.Errorf("run-application: %w", err)
	}
	fmt.Fprintf(os.Stderr, "Application cluster in %s\n", dir)
	cl, err := process.Deployer{}.Deploy(context.Background(), provider.ClusterSpec{
		Mode: provider.Application, Dir: dir, Config: conf.ClusterEntries(),
		Artifact: prog, Args: fs.Args()[1:], RemoveWhenDone: *detached && !*keepLogs,
		// The program's own configuration, its jobs' variables included,
		// is handed to main alone.
		Env: map[string]string{applicationPropertiesEnv: properties(conf)},
	})
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("run-application: %w", err)
	}
	fmt.Fprintf(os.Stderr, "Application cluster's REST API at http://%s\n", cl.REST())
	if *detached {
		fmt.Printf("Application cluster started (JobManager pid %s); it ends with the application.\n", cl.ID())
		return nil
	}
	pg.followCluster(cl.REST())
	stop := make(chan struct{})
	var follow sync.WaitGroup
	follow.Add(1)
	go func() {
		defer follow.Done()
		followOutputs(filepath.Join(dir, "log"), pg.output(os.Stdout), stop, "application.out", "taskmanager-*.out")
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case <-cl.Done():
	case <-sigs:
		fmt.Fprintln(os.Stderr, "Interrupted: stopping the application's cluster")
		stopCluster(cl)
	}
	close(stop)
	follow.Wait()
	pg.Close()
	if !*keepLogs {
		os.RemoveAll(dir)
	}
	if err := cl.Err(); err != nil {
		return fmt.Errorf("run-application: the application failed (%v)", err)
	}
	return nil
}
