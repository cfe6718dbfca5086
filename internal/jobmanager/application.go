package jobmanager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rest"
)

// Application is a program whose main the cluster runs (application
// mode). Go cannot load a program into the JobManager, so the JobManager
// runs the program's binary as its own child process in the client role,
// submitting to this JobManager; the cluster lives as long as the program
// and its jobs.
type Application struct {
	// Path is the program's binary; Args its arguments.
	Path string
	Args []string
	// Output receives the program's standard output and error.
	Output io.Writer
	// Env holds NAME=value environment entries for the program only, on
	// top of the JobManager's own.
	Env []string
}

// Environment variables of the client role (package spate reads them);
// repeated here because the root package cannot be imported.
const (
	envTarget     = "SPATE_TARGET"
	envJobManager = "SPATE_JOBMANAGER"
	envDetached   = "SPATE_DETACHED"
)

// runApplication runs the application's main, records how it ended, and
// closes appEnded once it has returned and every job is over.
func (jm *JobManager) runApplication(ctx context.Context, app *Application, appEnded chan<- error) {
	defer jm.wg.Done()
	cmd := exec.Command(app.Path, app.Args...)
	cmd.Env = append(append(os.Environ(), app.Env...), envTarget+"=remote", envJobManager+"="+jm.RESTAddr(), envDetached+"=false")
	if jm.cfg.RESTTokenFile != "" {
		// The token file's path, not the token: the main's client reads it.
		cmd.Env = append(cmd.Env, "SPATE_REST_TOKEN_FILE="+jm.cfg.RESTTokenFile)
	}
	if jm.cfg.RESTTLS != nil {
		// The JobManager's own REST files: its certificate is the main's
		// client certificate (trusted where the truststore is the CA of
		// both, as in Flink's shared REST keystore).
		trust := jm.cfg.RESTTruststore
		if trust == "" {
			trust = jm.cfg.RESTKeystore // its own certificate, trusted as itself
		}
		cmd.Env = append(cmd.Env, "SPATE_REST_SSL_KEYSTORE="+jm.cfg.RESTKeystore, "SPATE_REST_SSL_TRUSTSTORE="+trust)
	}
	// Its last error line says why it failed, if it does.
	errTail := &tailWriter{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = app.Output, io.MultiWriter(app.Output, errTail)
	jm.mu.Lock()
	jm.mu.app = v1.Application{Status: v1.JobRunning, StartTime: time.Now().UnixMilli(), EndTime: -1}
	jm.mu.Unlock()
	err := runGroup(ctx, cmd)
	jm.mu.Lock()
	jm.mu.app.EndTime = time.Now().UnixMilli()
	if err != nil {
		jm.mu.app.Status = v1.JobFailed
		jm.mu.app.Error = fmt.Sprintf("the application's main failed (%v)", err)
		if line := errTail.lastLine(); line != "" {
			jm.mu.app.Error += ": " + line
		}
		err = fmt.Errorf("application %s: %w", app.Path, err)
	} else if jm.mu.submitted == 0 {
		// Nothing ran: most likely not a Spate program at all.
		jm.mu.app.Status = v1.JobFailed
		jm.mu.app.Error = "the application's main returned without submitting a job: a Spate program submits its jobs with Env.Execute or Env.ExecuteAsync; is the program a Spate program?"
		err = fmt.Errorf("application %s: %s", app.Path, jm.mu.app.Error)
		// main printed nothing to explain it: say it where its output goes.
		fmt.Fprintln(app.Output, "spate:", jm.mu.app.Error)
	} else {
		jm.mu.app.Status = v1.JobFinished
	}
	jm.mu.Unlock()
	jm.log.Info("application returned", "err", err)
	// The cluster outlives main until its jobs are over.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		jm.mu.Lock()
		over := len(jm.mu.active) == 0
		jm.mu.Unlock()
		if over {
			appEnded <- err
			return
		}
		select {
		case <-tick.C:
		case <-jm.stop:
			appEnded <- err
			return
		}
	}
}

// Stopping an application's main: SIGTERM to its process group, SIGKILL
// after appStopGrace; a process main started that holds its output open
// past main's exit holds up the JobManager for appPipeGrace at most.
const (
	appStopGrace = 5 * time.Second
	appPipeGrace = time.Second
)

// runGroup runs cmd in a process group of its own until it exits, stopping
// the group if ctx ends first; whatever is left of the group once cmd
// exited is killed.
func runGroup(ctx context.Context, cmd *exec.Cmd) error {
	setGroupAttr(cmd)
	cmd.WaitDelay = appPipeGrace
	if err := cmd.Start(); err != nil {
		return err
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		syscall.Kill(-pgid, syscall.SIGTERM)
		grace := time.NewTimer(appStopGrace)
		defer grace.Stop()
		select {
		case <-exited:
		case <-grace.C:
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()
	err := cmd.Wait()
	close(exited)
	<-stopped
	syscall.Kill(-pgid, syscall.SIGKILL)
	if errors.Is(err, exec.ErrWaitDelay) {
		// main succeeded; what it left holding its output is gone now.
		return nil
	}
	return err
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

// lastLine is the last non-empty line written.
func (w *tailWriter) lastLine() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(w.buf)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

var _ rest.ApplicationBackend = (*JobManager)(nil)

// Application reports the application's state.
func (jm *JobManager) Application(ctx context.Context) (v1.Application, error) {
	if jm.cfg.Application == nil {
		return v1.Application{}, fmt.Errorf("this cluster runs no application (it is a session or per-job cluster): %w", rest.ErrNotFound)
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	return jm.mu.app, nil
}
