package localkube

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process in a process group of its own, so that stopping
// it stops whatever it started. It dies with this process (Pdeathsig)
// should this process be killed before it stops it.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited; then err is set
	err  error
	out  io.Closer
}

// spawner starts processes from one OS thread that lives as long as the
// cluster. Pdeathsig fires when the thread that started a process ends,
// not the process: a process started from an ordinary goroutine's thread
// could be killed whenever the Go runtime retires that thread. The thread
// ends (the goroutine exits locked to it) when the spawner is closed,
// after the cluster stopped its processes: a last net for any left.
type spawner struct{ reqs chan func() }

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan func())}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		for f := range s.reqs {
			f()
		}
	}()
	return s
}

func (s *spawner) close() { close(s.reqs) }

// start is startProc on the spawner's thread.
func (s *spawner) start(name, bin string, args, env []string, dir string, out io.WriteCloser) (*proc, error) {
	var p *proc
	var err error
	done := make(chan struct{})
	s.reqs <- func() {
		p, err = startProc(name, bin, args, env, dir, out)
		close(done)
	}
	<-done
	return p, err
}

// startProc starts bin with args, its output going to out (closed when the
// process exits).
func startProc(name, bin string, args, env []string, dir string, out io.WriteCloser) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("localkube: start %s (%s): %w", name, bin, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the process's exit code once it exited: the code, or 128+n
// for a signal n, as a shell and the kubelet report it.
func (p *proc) exitCode() int {
	var ee *exec.ExitError
	if p.err == nil {
		return 0
	}
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 128
}

// stop sends SIGTERM to the process group, SIGKILL after grace, and
// returns once the process exited and no process of its group is left.
func (p *proc) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	}
	p.reap()
}

// reap kills what is left of the process group and waits until the
// process exited and the group is empty.
func (p *proc) reap() {
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	// Orphans of the group were reparented to this process (a child
	// subreaper, see becomeSubreaper) or to init; they die of the SIGKILL
	// above, and the group is empty once the last is reaped. Reap those
	// that are ours (wait4 on the group: the leader is reaped already) and
	// poll with a deadline for the others.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
		}
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-tick.C
	}
}

// becomeSubreaper makes this process the parent of its descendants'
// orphans, so that reap can wait for them.
func becomeSubreaper() {
	const prSetChildSubreaper = 36
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
}

// openLog opens (appending) the log file of a process.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localkube: open log %s: %w", path, err)
	}
	return f, nil
}

// logTail is the end of a log file, for an error message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// ProcessesIn lists the live processes (not zombies) other than this one
// whose command line, environment or working directory mentions dir, as
// "pid command line": what a cluster in dir left behind, once closed.
func ProcessesIn(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		p := filepath.Join("/proc", e.Name())
		if stat, _ := os.ReadFile(filepath.Join(p, "stat")); bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		environ, _ := os.ReadFile(filepath.Join(p, "environ"))
		cwd, _ := os.Readlink(filepath.Join(p, "cwd"))
		if bytes.Contains(cmdline, []byte(dir)) || bytes.Contains(environ, []byte(dir)) || cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			out = append(out, e.Name()+" "+strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return out
}
