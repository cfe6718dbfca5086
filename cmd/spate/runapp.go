package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/spate-dev/spate/internal/config"
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
	target := fs.String("target", "process-application", "where the application runs: process-application (child processes on this host)")
	par := fs.Int("p", 0, "default parallelism of the program's jobs (parallelism.default)")
	detached := fs.Bool("detached", false, "return once the cluster has started; it removes itself when the application ends")
	keepLogs := fs.Bool("keep-logs", false, "keep the cluster's directory (logs) after the application")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: spate run-application [--target process-application] [-p N] [--detached] [-D key=value] [--env-file FILE] ./prog [args...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("run-application: name the program")
	}
	if *target != "process-application" {
		return fmt.Errorf("run-application: --target %q: want process-application", *target)
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
	prog, cleanupProg, err := executable(fs.Arg(0))
	if err != nil {
		return err
	}
	defer cleanupProg()
	dir, err := os.MkdirTemp("", "spate-app-")
	if err != nil {
		return fmt.Errorf("run-application: %w", err)
	}
	fmt.Fprintf(os.Stderr, "Application cluster in %s\n", dir)
	// The cluster keeps its own copy: a detached client's temporary build
	// is gone when it returns.
	bin := filepath.Join(dir, "application")
	if err := copyFile(prog, bin); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("run-application: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	jmArgs := []string{"--application", bin}
	if *detached && !*keepLogs {
		jmArgs = append(jmArgs, "--remove-cluster-dir")
	}
	// The program's own configuration travels in its environment.
	os.Setenv(config.PropertiesEnv, properties(conf))
	jmArgs = append(append(jmArgs, "--"), fs.Args()[1:]...)
	jm, jmDone, _, err := startClusterJM(self, dir, conf, jmArgs)
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("run-application: %w", err)
	}
	if *detached {
		fmt.Printf("Application cluster started (JobManager pid %d); it ends with the application.\n", jm.Process.Pid)
		return nil
	}
	stop := make(chan struct{})
	var follow sync.WaitGroup
	follow.Add(1)
	go func() {
		defer follow.Done()
		followOutputs(filepath.Join(dir, "log"), os.Stdout, stop, "application.out", "taskmanager-*.out")
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case <-jmDone:
	case <-sigs:
		fmt.Fprintln(os.Stderr, "Interrupted: stopping the application's cluster")
		jm.Process.Signal(syscall.SIGTERM)
		<-jmDone
	}
	close(stop)
	follow.Wait()
	if !*keepLogs {
		os.RemoveAll(dir)
	}
	if code := jm.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("run-application: the application failed (exit status %d)", code)
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
