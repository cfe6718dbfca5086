//go:build !linux

package taskmanager

import "os/exec"

// setDeathSignal has no portable equivalent outside Linux; workers there
// notice their TaskManager's end through the JobManager.
func setDeathSignal(cmd *exec.Cmd) {}
