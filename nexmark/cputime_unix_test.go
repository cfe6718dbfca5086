//go:build unix

package nexmark

import (
	"syscall"
	"testing"
)

// reportCPU, deferred as defer reportCPU(b)(), reports the process's CPU
// time (user and system, all threads, so including the garbage collector)
// per operation as cpu-ns/op: on a machine shared with other work it varies
// much less than the wall time per operation.
func reportCPU(b *testing.B) func() {
	t0 := cpuNanos()
	return func() {
		b.ReportMetric(float64(cpuNanos()-t0)/float64(b.N), "cpu-ns/op")
	}
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
