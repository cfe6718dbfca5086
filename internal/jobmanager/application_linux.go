package jobmanager

import (
	"os/exec"
	"syscall"
)

// setGroupAttr starts an application's main in a process group of its
// own, killed by the kernel if the JobManager dies.
func setGroupAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
