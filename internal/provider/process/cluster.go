package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/spate-dev/spate/internal/procdir"
	"github.com/spate-dev/spate/internal/provider"
)

// Deployer starts clusters of child processes on this host: a JobManager
// running the spate binary's jobmanager command with this provider, in a
// process session of its own so that it outlives a client that detaches.
// Its TaskManagers are its own children and die with it.
type Deployer struct {
	// Binary is the spate executable; empty means this process's own.
	Binary string
	// StartTimeout bounds the wait for the JobManager's REST API when
	// Deploy's context has no deadline; 30 s if zero.
	StartTimeout time.Duration
}

var _ provider.Deployer = Deployer{}

// restLine is how the jobmanager command announces its REST address.
var restLine = regexp.MustCompile(`REST at https?://(\S+)`)

// Deploy starts a cluster whose files and logs live in spec.Dir.
func (d Deployer) Deploy(ctx context.Context, spec provider.ClusterSpec) (provider.Cluster, error) {
	bin := d.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("deploy a cluster: find the spate binary: %w", err)
		}
		bin = exe
	}
	logDir := filepath.Join(spec.Dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("deploy a cluster: %w", err)
	}
	args, err := jobManagerArgs(spec)
	if err != nil {
		return nil, err
	}
	stdout, err := os.Create(filepath.Join(logDir, "jobmanager.out"))
	if err != nil {
		return nil, fmt.Errorf("deploy a cluster: %w", err)
	}
	defer stdout.Close()
	logf, err := os.Create(filepath.Join(logDir, "jobmanager.log"))
	if err != nil {
		return nil, fmt.Errorf("deploy a cluster: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, logf
	cmd.Env = os.Environ()
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		cmd.Env = append(cmd.Env, k+"="+spec.Env[k])
	}
	// A session of its own: the cluster outlives a client that detaches,
	// and a Ctrl-C on the client's terminal reaches the client alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("deploy a cluster: start the JobManager: %w", err)
	}
	c := &cluster{cmd: cmd, done: make(chan struct{})}
	go c.wait()

	if _, ok := ctx.Deadline(); !ok {
		timeout := d.StartTimeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		b, _ := os.ReadFile(stdout.Name())
		if m := restLine.FindSubmatch(b); m != nil {
			c.rest = string(m[1])
			return c, nil
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("deploy a cluster: the JobManager exited at start (%v); see %s", c.err, logf.Name())
		case <-ctx.Done():
			c.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("deploy a cluster: the JobManager did not start: %w; see %s", ctx.Err(), logf.Name())
		case <-tick.C:
		}
	}
}

// jobManagerArgs is the jobmanager command line for spec; an
// Application's artifact is copied into the cluster's directory first.
func jobManagerArgs(spec provider.ClusterSpec) ([]string, error) {
	args := []string{"jobmanager", "--rpc-port", "0", "--rest-port", "0", "--host", "127.0.0.1",
		"--provider", "process", "--cluster-dir", spec.Dir}
	for _, k := range slices.Sorted(maps.Keys(spec.Config)) {
		args = append(args, "-D", k+"="+spec.Config[k])
	}
	if spec.TaskManagers > 0 {
		args = append(args, "--taskmanagers", strconv.Itoa(spec.TaskManagers))
	}
	if spec.RemoveWhenDone {
		args = append(args, "--remove-cluster-dir")
	}
	switch spec.Mode {
	case provider.Session:
	case provider.PerJob:
		args = append(args, "--per-job")
		if spec.ResultLinger > 0 {
			args = append(args, "--result-linger", spec.ResultLinger.String())
		}
	case provider.Application:
		if spec.Artifact == "" {
			return nil, errors.New("deploy an application cluster: no program given")
		}
		// The cluster keeps its own copy: a detached client's temporary
		// build may be gone when the application starts another job.
		// Under work: a kept cluster's logs outlive the copy.
		bin := filepath.Join(spec.Dir, procdir.Work, "application")
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			return nil, fmt.Errorf("deploy an application cluster: %w", err)
		}
		if err := copyExecutable(spec.Artifact, bin); err != nil {
			return nil, fmt.Errorf("deploy an application cluster: %w", err)
		}
		// Last: the program's arguments follow "--".
		args = append(append(args, "--application", bin, "--"), spec.Args...)
	default:
		return nil, fmt.Errorf("deploy a cluster: unknown mode %d", spec.Mode)
	}
	return args, nil
}

func copyExecutable(from, to string) error {
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
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return out.Close()
}

// cluster is a JobManager process this client started.
type cluster struct {
	cmd  *exec.Cmd
	rest string
	done chan struct{}
	err  error // set before done closes
}

func (c *cluster) wait() {
	c.err = c.cmd.Wait()
	close(c.done)
}

func (c *cluster) ID() string            { return strconv.Itoa(c.cmd.Process.Pid) }
func (c *cluster) REST() string          { return c.rest }
func (c *cluster) Done() <-chan struct{} { return c.done }

func (c *cluster) Err() error {
	select {
	case <-c.done:
	default:
		return errors.New("the cluster is still running")
	}
	if c.err != nil {
		return fmt.Errorf("the JobManager ended: %w", c.err)
	}
	return nil
}

// Stop asks the JobManager to end (it stops its TaskManagers first) and
// kills it if ctx ends before it has.
func (c *cluster) Stop(ctx context.Context) error {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("stop the cluster of JobManager %d: killed: %w", c.cmd.Process.Pid, ctx.Err())
	}
}

// Kill tears down the cluster of the JobManager whose pid is id, started
// by another client: SIGTERM, then SIGKILL when ctx ends. Its TaskManagers
// die with it.
func (Deployer) Kill(ctx context.Context, id string) error {
	pid, err := strconv.Atoi(id)
	if err != nil || pid <= 0 {
		return fmt.Errorf("kill cluster %q: not a JobManager process id", id)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("kill cluster %s: %w", id, err)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	killed := false
	for !gone(pid) {
		select {
		case <-ctx.Done():
			if !killed {
				syscall.Kill(pid, syscall.SIGKILL)
				killed = true
			}
		case <-tick.C:
		}
	}
	return nil
}

// gone tells whether process pid has ended: it no longer exists, or it is
// a zombie waiting for its parent.
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false // no /proc: trust kill
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
