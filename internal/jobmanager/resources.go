package jobmanager

import (
	"context"
	"fmt"
	"time"

	"github.com/spate-dev/spate/internal/provider"
)

// requestLocked asks the provider for enough TaskManagers to give the
// first waiting job the slots it lacks, counting those already asked for.
func (jm *JobManager) requestLocked(need int) {
	p := jm.cfg.Provider
	if p == nil || jm.mu.closed {
		return
	}
	missing := need - jm.freeSlotsLocked()
	for _, n := range jm.mu.pending {
		missing -= n
	}
	for missing > 0 {
		missing -= jm.startProvidedLocked()
	}
}

// startProvidedLocked asks the provider for one TaskManager and returns
// its slots.
func (jm *JobManager) startProvidedLocked() int {
	p := jm.cfg.Provider
	jm.mu.nextProvided++
	spec := provider.TaskManagerSpec{
		ID: fmt.Sprintf("taskmanager-%d", jm.mu.nextProvided), JobManager: jm.RPCAddr(), Slots: jm.cfg.ProvidedSlots,
	}
	jm.mu.pending[spec.ID] = spec.Slots
	jm.log.Info("requesting a taskmanager", "id", spec.ID, "slots", spec.Slots)
	jm.wg.Add(1)
	go func() {
		defer jm.wg.Done()
		if err := p.StartTaskManager(context.Background(), spec); err != nil {
			jm.providerLost(spec.ID, fmt.Sprintf("could not start: %v", err))
		}
	}()
	return spec.Slots
}

// watchProvider turns the provider's reports of ended TaskManagers into
// losses, without waiting for a heartbeat timeout.
func (jm *JobManager) watchProvider(p provider.Provider) {
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
	if _, ok := jm.mu.pending[id]; ok {
		delete(jm.mu.pending, id)
		jm.log.Warn("taskmanager ended before registering", "id", id, "reason", reason)
		for _, jid := range jm.mu.order {
			if j := jm.mu.jobs[jid]; j.status == statusCreated {
				jm.failLocked(j, fmt.Errorf("TaskManager %s, started for this job, ended before registering: %s (see its log in the cluster's log directory)", id, reason), id)
			}
		}
		return
	}
	for _, tm := range jm.mu.tms {
		if tm.resourceID == id {
			jm.loseTMLocked(tm, reason)
			return
		}
	}
}

// releaseIdleLocked stops provided TaskManagers that have had no job for
// the idle timeout, when no job waits for slots.
func (jm *JobManager) releaseIdleLocked(now time.Time) {
	p := jm.cfg.Provider
	if p == nil {
		return
	}
	for _, id := range jm.mu.order {
		if jm.mu.jobs[id].status == statusCreated {
			return
		}
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
		jm.wg.Add(1)
		go func(id string) {
			defer jm.wg.Done()
			p.StopTaskManager(id)
		}(tm.resourceID)
	}
}
