//go:build !linux

package jobmanager

import (
	"os/exec"
	"syscall"
)

// setGroupAttr starts an application's main in a process group of its
// own.
func setGroupAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
