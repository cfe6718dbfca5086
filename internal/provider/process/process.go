// Package process is the provider that runs TaskManagers as child processes
// of the JobManager on this host: the embedded default behind the
// process-session, process-per-job and process-application targets. Each
// TaskManager runs the spate binary's taskmanager command, logs into the
// cluster's log directory, and is killed by the kernel if the JobManager
// dies, so none outlives its cluster.
package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/procdir"
	"github.com/spate-dev/spate/internal/provider"
)

// Config configures the process provider.
type Config struct {
	// Binary is the spate executable that runs the taskmanager command.
	Binary string
	// Dir is the cluster's directory: TaskManagers' logs go to
	// Dir/log/<id>.out and .log, their work files (artifact cache, jobs'
	// directories) under Dir/work/<id>, removed when the TaskManager
	// has exited.
	Dir string
	// Args are extra arguments for every TaskManager (e.g. -D entries).
	Args []string
	// StopGrace is how long a TaskManager has to exit after SIGTERM.
	StopGrace time.Duration
	// CA, if set, signs each TaskManager's certificate for the cluster's
	// internal TLS (tls.go).
	CA *pki.CA
}

// Provider starts TaskManagers as child processes.
type Provider struct {
	cfg   Config
	exits chan provider.Exit
	mu    struct {
		sync.Mutex
		procs  map[string]*proc
		closed bool
	}
	wg sync.WaitGroup
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

var _ provider.Provider = (*Provider)(nil)

// New returns a provider; it starts nothing yet.
func New(cfg Config) (*Provider, error) {
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("process provider: find the spate binary: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 5 * time.Second
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "log"), 0o755); err != nil {
		return nil, fmt.Errorf("process provider: %w", err)
	}
	p := &Provider{cfg: cfg, exits: make(chan provider.Exit, 64)}
	p.mu.procs = map[string]*proc{}
	return p, nil
}

// StartTaskManager starts one TaskManager process.
func (p *Provider) StartTaskManager(ctx context.Context, spec provider.TaskManagerSpec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return errors.New("process provider is closed")
	}
	if _, dup := p.mu.procs[spec.ID]; dup {
		return fmt.Errorf("process provider: taskmanager %s already runs", spec.ID)
	}
	logDir := filepath.Join(p.cfg.Dir, "log")
	out, err := os.Create(filepath.Join(logDir, spec.ID+".out"))
	if err != nil {
		return fmt.Errorf("start taskmanager %s: %w", spec.ID, err)
	}
	logf, err := os.Create(filepath.Join(logDir, spec.ID+".log"))
	if err != nil {
		out.Close()
		return fmt.Errorf("start taskmanager %s: %w", spec.ID, err)
	}
	tlsArgs, err := p.tlsArgs(spec.ID)
	if err != nil {
		out.Close()
		logf.Close()
		return err
	}
	// The provider's own entries come last, so that they win.
	args := append(append([]string{"taskmanager"}, p.cfg.Args...),
		"--jobmanager", spec.JobManager, "--slots", strconv.Itoa(spec.Slots), "--exit-on-jobmanager-loss",
		"-D", "taskmanager.resource-id="+spec.ID, "-D", "taskmanager.tmp.dirs="+p.workDir(spec.ID))
	args = append(args, tlsArgs...)
	cmd := exec.Command(p.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = out, logf
	// The configuration travels in args; the JobManager's
	// $SPATE_PROPERTIES (an application's, with its jobs' variables) stays
	// with it.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, config.PropertiesEnv+"=")
	})
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		out.Close()
		logf.Close()
		return fmt.Errorf("start taskmanager %s: %w", spec.ID, err)
	}
	pr := &proc{cmd: cmd, done: make(chan struct{})}
	p.mu.procs[spec.ID] = pr
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		err := cmd.Wait()
		out.Close()
		logf.Close()
		// Released, crashed or killed, it needs its files no more; its
		// logs stay.
		if rerr := os.RemoveAll(p.workDir(spec.ID)); rerr != nil {
			p.log(spec.ID, rerr)
		}
		if rerr := os.RemoveAll(p.securityDir(spec.ID)); rerr != nil {
			p.log(spec.ID, rerr)
		}
		close(pr.done)
		p.mu.Lock()
		delete(p.mu.procs, spec.ID)
		p.mu.Unlock()
		reason := "exited"
		if err != nil {
			reason = err.Error()
		}
		select {
		case p.exits <- provider.Exit{ID: spec.ID, Reason: reason}:
		default:
		}
	}()
	return nil
}

// workDir is the directory of TaskManager id's files.
func (p *Provider) workDir(id string) string {
	return filepath.Join(p.cfg.Dir, procdir.Work, id)
}

// log notes a failure to remove a TaskManager's files in its log.
func (p *Provider) log(id string, err error) {
	if f, ferr := os.OpenFile(filepath.Join(p.cfg.Dir, "log", id+".log"), os.O_APPEND|os.O_WRONLY, 0); ferr == nil {
		fmt.Fprintf(f, "process provider: remove the files of taskmanager %s: %v\n", id, err)
		f.Close()
	}
}

// StopTaskManager stops a TaskManager and waits for it; it is killed
// after the stop grace or when ctx ends.
func (p *Provider) StopTaskManager(ctx context.Context, id string) error {
	p.mu.Lock()
	pr, ok := p.mu.procs[id]
	p.mu.Unlock()
	if !ok {
		return nil
	}
	pr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-pr.done:
	case <-time.After(p.cfg.StopGrace):
		pr.cmd.Process.Kill()
		<-pr.done
	case <-ctx.Done():
		pr.cmd.Process.Kill()
		<-pr.done
	}
	return nil
}

// Exits reports ended TaskManagers.
func (p *Provider) Exits() <-chan provider.Exit { return p.exits }

// Close stops every TaskManager.
func (p *Provider) Close() error {
	p.mu.Lock()
	p.mu.closed = true
	var ids []string
	for id := range p.mu.procs {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); p.StopTaskManager(context.Background(), id) }()
	}
	wg.Wait()
	p.wg.Wait()
	return nil
}
