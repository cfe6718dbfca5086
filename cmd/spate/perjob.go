package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spate-dev/spate"
	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/provider"
	"github.com/spate-dev/spate/internal/provider/process"
)

// runPerJob runs a program's jobs on a per-job cluster of child processes:
// a JobManager that starts the TaskManagers the job needs and exits when
// the job has ended, taking them with it. Attached, the client streams the
// job's output, cancels the job on Ctrl-C, and removes the cluster's
// directory at the end; detached, it returns once the job is submitted and
// the cluster removes itself when the job ends.
func runPerJob(prog string, args []string, conf config.Config, detached, keepLogs bool) error {
	dir, err := os.MkdirTemp("", "spate-perjob-")
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "log"), 0o755); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	fmt.Fprintf(os.Stderr, "Per-job cluster in %s\n", dir)
	spec := provider.ClusterSpec{Mode: provider.PerJob, Dir: dir, Config: conf.ClusterEntries(),
		RemoveWhenDone: detached && !keepLogs}
	if !detached {
		// The attached client fetches the job's result before the
		// cluster goes.
		spec.ResultLinger = 30 * time.Second
	}
	cl, err := process.Deployer{}.Deploy(context.Background(), spec)
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("run: %w", err)
	}
	rest := cl.REST()
	fmt.Fprintf(os.Stderr, "Per-job cluster's REST API at http://%s\n", rest)
	cleanup := func() {
		<-cl.Done()
		if !keepLogs {
			os.RemoveAll(dir)
		}
	}

	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), config.PropertiesEnv+"="+properties(conf), spate.TargetEnv+"=remote",
		spate.JobManagerEnv+"="+rest, spate.DetachedEnv+"="+strconv.FormatBool(detached))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		stopCluster(cl)
		cleanup()
		return fmt.Errorf("run %s: %w", prog, err)
	}
	progDone := make(chan error, 1)
	go func() { progDone <- cmd.Wait() }()

	var follow sync.WaitGroup
	stopFollow := make(chan struct{})
	if !detached {
		follow.Add(1)
		go func() {
			defer follow.Done()
			followOutputs(filepath.Join(dir, "log"), os.Stdout, stopFollow, "taskmanager-*.out")
		}()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	var progErr error
	select {
	case progErr = <-progDone:
	case <-sigs:
		fmt.Fprintln(os.Stderr, "Interrupted: cancelling the job and removing its cluster")
		cancelAll(rest)
		progErr = <-progDone
		if progErr == nil {
			progErr = errors.New("interrupted")
		}
	}
	if detached && progErr == nil {
		// The cluster ends by itself with its job.
		return nil
	}
	if !hasJob(rest) {
		// The program ended without submitting: nothing will end the
		// cluster but us.
		stopCluster(cl)
	}
	select {
	case <-cl.Done():
	case <-time.After(30 * time.Second):
		stopCluster(cl)
	}
	close(stopFollow)
	follow.Wait()
	cleanup()
	var ee *exec.ExitError
	if errors.As(progErr, &ee) {
		return exitCode(ee.ExitCode())
	}
	return progErr
}

// stopCluster tears a cluster down, killing it if it takes more than 30 s.
func stopCluster(cl provider.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl.Stop(ctx)
}

func cancelAll(rest string) {
	c, err := client.New(rest)
	if err != nil {
		return
	}
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	ov, err := c.JobsOverview(ctx)
	if err != nil {
		return
	}
	for _, j := range ov.Jobs {
		if !v1.TerminalJobStatus(j.State) {
			c.CancelJob(ctx, j.JID)
		}
	}
}

func hasJob(rest string) bool {
	c, err := client.New(rest)
	if err != nil {
		return false
	}
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	ov, err := c.JobsOverview(ctx)
	return err == nil && len(ov.Jobs) > 0
}

// followOutputs copies the lines appended to the files in dir matching
// patterns to w until stop is closed, then copies what is left.
func followOutputs(dir string, w io.Writer, stop <-chan struct{}, patterns ...string) {
	offsets := map[string]int64{}
	partial := map[string]string{}
	drain := func() {
		var paths []string
		for _, pat := range patterns {
			m, _ := filepath.Glob(filepath.Join(dir, pat))
			paths = append(paths, m...)
		}
		sort.Strings(paths)
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				continue
			}
			f.Seek(offsets[p], io.SeekStart)
			b, _ := io.ReadAll(f)
			f.Close()
			offsets[p] += int64(len(b))
			text := partial[p] + string(b)
			i := strings.LastIndexByte(text, '\n')
			if i < 0 {
				partial[p] = text
				continue
			}
			io.WriteString(w, text[:i+1])
			partial[p] = text[i+1:]
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			drain()
			return
		case <-tick.C:
			drain()
		}
	}
}
