package jobmanager

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spate-dev/spate/internal/resource"
)

// requestLocked asks the provider for enough TaskManagers to give the
// waiting jobs the slots they lack, counting those already asked for, and
// never beyond slotmanager.number-of-slots.max.
func (jm *JobManager) requestLocked() {
	p := jm.cfg.Provider
	if p == nil || jm.mu.closed {
		return
	}
	demand := 0
	for _, j := range jm.mu.waiting {
		demand += j.slotsNeeded
	}
	if demand == 0 {
		return
	}
	asked := 0
	for _, n := range jm.mu.pending {
		asked += n
	}
	for range taskManagersToStart(demand, jm.freeSlotsLocked()+asked, jm.totalSlotsLocked()+asked, jm.cfg.ProvidedSlots, jm.cfg.SlotsMax) {
		jm.startProvidedLocked()
	}
}

// taskManagersToStart is how many TaskManagers of perTM slots to ask for
// so that supply (free and asked-for slots) meets demand (the waiting
// jobs' slots), with allocated (registered and asked-for slots) never
// above ceiling.
func taskManagersToStart(demand, supply, allocated, perTM, ceiling int) int {
	n := 0
	for supply < demand && allocated+perTM <= ceiling {
		supply += perTM
		allocated += perTM
		n++
	}
	return n
}

// startProvidedLocked asks the provider for one TaskManager and returns
// its slots.
func (jm *JobManager) startProvidedLocked() int {
	p := jm.cfg.Provider
	jm.mu.nextProvided++
	spec := resource.TaskManagerSpec{
		ID: fmt.Sprintf("taskmanager-%d", jm.mu.nextProvided), JobManager: jm.RPCAddr(), Slots: jm.cfg.ProvidedSlots,
	}
	jm.mu.pending[spec.ID] = spec.Slots
	jm.log.Info("requesting a taskmanager", "id", spec.ID, "slots", spec.Slots)
	ctx := jm.runCtx
	jm.wg.Add(1)
	go func() {
		defer jm.wg.Done()
		if err := p.StartTaskManager(ctx, spec); err != nil {
			jm.providerLost(spec.ID, fmt.Sprintf("could not start: %v", err))
		}
	}()
	return spec.Slots
}

// watchProvider turns the provider's reports of ended TaskManagers into
// losses, without waiting for a heartbeat timeout.
func (jm *JobManager) watchProvider(p Provider) {
	defer jm.wg.Done()
	for {
		select {
		case <-jm.stop:
			return
		case e := <-p.Exits():
			jm.providerLost(e.ID, "its process "+e.Reason)
		}
	}
}

func (jm *JobManager) providerLost(id, reason string) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if jm.mu.closed {
		return
	}
	now := jm.clock.Now()
	if _, ok := jm.mu.pending[id]; ok {
		delete(jm.mu.pending, id)
		jm.log.Warn("taskmanager ended before registering", "id", id, "reason", reason)
		for _, j := range slices.Clone(jm.mu.waiting) {
			if j.status == statusCreated {
				jm.failLocked(j, fmt.Errorf("TaskManager %s, started for this job, ended before registering: %s (see its log in the cluster's log directory)", id, reason), id, now)
			}
		}
		return
	}
	for _, tm := range jm.mu.tms {
		if tm.resourceID == id {
			jm.loseTMLocked(tm, reason, now)
			break
		}
	}
	// A session's kept TaskManagers are replaced, also one whose session
	// ended first; one that never registered is not (above), lest a
	// cluster that cannot start any retry forever.
	for len(jm.mu.tms)+len(jm.mu.pending) < jm.cfg.MinTaskManagers {
		jm.log.Info("replacing a lost taskmanager", "lost", id)
		jm.startProvidedLocked()
	}
	jm.requestLocked()
}

// releaseIdleLocked stops provided TaskManagers that have had no job for
// the idle timeout, when no job waits for slots.
func (jm *JobManager) releaseIdleLocked(now time.Time) {
	p := jm.cfg.Provider
	if p == nil || len(jm.mu.waiting) > 0 {
		return
	}
	kept := len(jm.mu.tms)
	for _, tm := range jm.mu.tms {
		if kept <= jm.cfg.MinTaskManagers {
			return
		}
		if tm.used > 0 || tm.closed || now.Sub(tm.idleSince) < jm.cfg.IdleTimeout {
			continue
		}
		kept--
		jm.log.Info("releasing idle taskmanager", "taskmanager", tm.id, "resource", tm.resourceID)
		tm.idleSince = now.Add(time.Hour) // not again while it stops
		ctx := jm.runCtx
		jm.wg.Add(1)
		go func(id string) {
			defer jm.wg.Done()
			p.StopTaskManager(ctx, id)
		}(tm.resourceID)
	}
}

// pendingExplainer is a provider that can tell why a TaskManager it was
// asked for has not started (a pod that is unschedulable, an image still
// being pulled).
type pendingExplainer interface {
	Pending(id string) string
}

// pendingReasonsLocked says why the TaskManagers asked of the provider
// have not registered, if it can tell: "; TaskManager taskmanager-2: pod
// ... is not scheduled: Unschedulable: ...".
func (jm *JobManager) pendingReasonsLocked() string {
	pe, ok := jm.cfg.Provider.(pendingExplainer)
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(jm.mu.pending)) {
		if why := pe.Pending(id); why != "" {
			fmt.Fprintf(&b, "; TaskManager %s: %s", id, why)
		}
	}
	return b.String()
}
