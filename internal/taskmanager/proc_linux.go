package taskmanager

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// setProcAttr starts the worker in a process group of its own, so that
// stopping it stops every process it started, and has the kernel kill it
// if the TaskManager dies, so that no worker outlives it.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// outputFile returns the path of the regular file f writes to, "" if f is
// not one (a terminal, a pipe) or its path is unknown.
func outputFile(f *os.File) string {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	path, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil || !filepath.IsAbs(path) {
		return ""
	}
	return path
}
