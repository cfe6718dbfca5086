package process

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the TaskManager if the JobManager
// dies, so that none outlives its cluster.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
