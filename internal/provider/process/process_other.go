//go:build !linux

package process

import "os/exec"

// setDeathSignal has no portable equivalent outside Linux; there a
// TaskManager started with --exit-on-jobmanager-loss exits when its
// session with the JobManager ends.
func setDeathSignal(cmd *exec.Cmd) {}
