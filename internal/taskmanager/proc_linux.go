package taskmanager

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the worker if the TaskManager dies, so no worker
// outlives it.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
