//go:build !linux

package taskmanager

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr starts the worker in a process group of its own, so that
// stopping it stops every process it started. A death signal has no
// portable equivalent outside Linux; workers there notice their
// TaskManager's end by their parent changing.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// outputFile would return the path of the file f writes to; outside Linux
// it is unknown.
func outputFile(f *os.File) string { return "" }
