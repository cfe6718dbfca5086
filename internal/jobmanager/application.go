package jobmanager

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
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
	cmd := exec.CommandContext(ctx, app.Path, app.Args...)
	cmd.Env = append(os.Environ(), envTarget+"=remote", envJobManager+"="+jm.RESTAddr(), envDetached+"=false")
	cmd.Stdout, cmd.Stderr = app.Output, app.Output
	jm.mu.Lock()
	jm.mu.app = v1.Application{Status: v1.JobRunning, StartTime: time.Now().UnixMilli(), EndTime: -1}
	jm.mu.Unlock()
	err := cmd.Run()
	jm.mu.Lock()
	jm.mu.app.EndTime = time.Now().UnixMilli()
	if err != nil {
		jm.mu.app.Status = v1.JobFailed
		jm.mu.app.Error = fmt.Sprintf("the application's main failed: %v", err)
		err = fmt.Errorf("application %s: %w", app.Path, err)
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
		over := true
		for _, j := range jm.mu.jobs {
			over = over && v1.TerminalJobStatus(j.status) && len(j.releasing) == 0
		}
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
