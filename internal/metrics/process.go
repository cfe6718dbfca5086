package metrics

import (
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// ProcessSampler reads this process's Go runtime figures; it remembers the
// previous reading to tell the CPU load in between. It is safe for
// concurrent use.
type ProcessSampler struct {
	mu      sync.Mutex
	lastCPU time.Duration
	lastAt  time.Time
	load    float64
}

// Sample reads the figures now.
func (p *ProcessSampler) Sample() *rpcpb.ProcessMetrics {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cpu := cpuTime()
	now := time.Now()
	p.mu.Lock()
	if !p.lastAt.IsZero() {
		if wall := now.Sub(p.lastAt); wall > 0 {
			p.load = float64(cpu-p.lastCPU) / float64(wall)
		}
	}
	// A reading sooner than 100 ms after the last one keeps its load: the
	// interval is too short to tell.
	if p.lastAt.IsZero() || now.Sub(p.lastAt) >= 100*time.Millisecond {
		p.lastCPU, p.lastAt = cpu, now
	}
	load := p.load
	p.mu.Unlock()
	var last uint64
	if ms.NumGC > 0 {
		last = ms.PauseNs[(ms.NumGC+255)%256]
	}
	return &rpcpb.ProcessMetrics{
		HeapUsed: int64(ms.HeapAlloc), HeapCommitted: int64(ms.HeapSys), MemoryTotal: int64(ms.Sys),
		Goroutines: int64(runtime.NumGoroutine()), GcCount: int64(ms.NumGC),
		GcPauseTotalNs: int64(ms.PauseTotalNs), GcLastPauseNs: int64(last),
		CpuTimeNs: int64(cpu), CpuLoad: load, Threads: int64(pprof.Lookup("threadcreate").Count()),
	}
}
