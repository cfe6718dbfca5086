package jobmanager

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spate-dev/spate/internal/resource"
	"github.com/spate-dev/spate/internal/scheduler"
)

// Slot scheduling is decided by internal/scheduler and carried out here:
// the JobManager feeds it its events under mu (a job queued for slots, a
// TaskManager registered or lost, a worker's slots freed, a job ended, a
// provider's TaskManager ended, the periodic tick) and performs its
// effects: deploying a job's workers on the slots allocated, asking the
// provider for TaskManagers or to stop idle ones (on goroutines owned by
// jm.wg), failing jobs that waited too long.

// schedulerConfig is the scheduler's configuration from the JobManager's.
func (jm *JobManager) schedulerConfig() scheduler.Config {
	return scheduler.Config{
		SlotRequestTimeout: jm.cfg.SlotRequestTimeout, Provided: jm.cfg.Provider != nil,
		SlotsPerTaskManager: jm.cfg.ProvidedSlots, SlotsMax: jm.cfg.SlotsMax,
		MinTaskManagers: jm.cfg.MinTaskManagers, IdleTimeout: jm.cfg.IdleTimeout,
	}
}

// slotCeiling is the most slots a job may need (scheduler.Config.Ceiling).
func (jm *JobManager) slotCeiling() int { return jm.schedulerConfig().Ceiling() }

func (jm *JobManager) freeSlotsLocked() int  { return jm.mu.sched.FreeSlots() }
func (jm *JobManager) totalSlotsLocked() int { return jm.mu.sched.TotalSlots() }

// scheduleLocked runs a scheduling pass (every scheduler event ends with
// one; this is for a caller with no event to tell).
func (jm *JobManager) scheduleLocked(now time.Time) {
	jm.schedEffectsLocked(jm.mu.sched.Schedule(now), now)
}

// schedEffectsLocked carries out the scheduler's effects. The scheduler
// has already recorded them, so an effect's consequences may feed it
// further events.
func (jm *JobManager) schedEffectsLocked(eff []scheduler.Effect, now time.Time) {
	for _, e := range eff {
		switch e := e.(type) {
		case scheduler.Allocate:
			j, ok := jm.mu.active[JobID(e.Job)]
			if !ok || !j.waitingForSlots() {
				// Not expected: the job left the queue without telling.
				jm.log.Error("slots allocated to a job that does not wait for them; freed", "job", e.Job)
				jm.schedEffectsLocked(jm.mu.sched.FreeJob(now, e.Job), now)
				continue
			}
			for _, s := range e.Slots {
				if _, ok := jm.mu.tms[string(s.TaskManager)]; !ok {
					// Not expected either: the scheduler hears of every loss.
					jm.log.Error("slots allocated on an unknown TaskManager; the job waits again", "job", e.Job, "taskmanager", s.TaskManager)
					jm.schedEffectsLocked(jm.mu.sched.FreeJob(now, e.Job), now)
					jm.schedEffectsLocked(jm.mu.sched.Requeue(now, e.Job, j.slotsNeeded), now)
					ok = false
					break
				}
			}
			if ok {
				jm.deployLocked(j, e, now)
			}
		case scheduler.StartTaskManager:
			jm.startProvidedLocked(resource.TaskManagerSpec{ID: e.Resource, JobManager: jm.RPCAddr(), Slots: e.Slots})
		case scheduler.StopTaskManager:
			jm.stopProvidedLocked(string(e.TaskManager), e.Resource)
		case scheduler.FailJob:
			j, ok := jm.mu.active[JobID(e.Job)]
			if !ok {
				continue
			}
			if j.ft != nil {
				j.ft.queued = false
			}
			jm.failLocked(j, errors.New(e.Message+jm.pendingReasons(e.Pending)), e.Location, now)
		}
	}
}

// startProvidedLocked asks the provider for a TaskManager, off mu.
func (jm *JobManager) startProvidedLocked(spec resource.TaskManagerSpec) {
	p := jm.cfg.Provider
	if p == nil || jm.mu.closed {
		return
	}
	jm.log.Info("requesting a taskmanager", "id", spec.ID, "slots", spec.Slots)
	ctx := jm.runCtx
	jm.wg.Add(1)
	go func() {
		defer jm.wg.Done()
		if err := p.StartTaskManager(ctx, spec); err != nil {
			jm.providerLost(spec.ID, fmt.Sprintf("could not start: %v", err))
		}
	}()
}

// stopProvidedLocked asks the provider to stop an idle TaskManager, off
// mu.
func (jm *JobManager) stopProvidedLocked(tmID, resourceID string) {
	p := jm.cfg.Provider
	if tm, ok := jm.mu.tms[tmID]; p == nil || jm.mu.closed || !ok || tm.closed {
		return
	}
	jm.log.Info("releasing idle taskmanager", "taskmanager", tmID, "resource", resourceID)
	ctx := jm.runCtx
	jm.wg.Add(1)
	go func() {
		defer jm.wg.Done()
		p.StopTaskManager(ctx, resourceID)
	}()
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

// providerLost takes the end of the provider's TaskManager id: a
// registered one is lost (its jobs fail); then the scheduler decides
// (jobs waiting for one that never registered fail, a kept one is
// replaced).
func (jm *JobManager) providerLost(id, reason string) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if jm.mu.closed {
		return
	}
	now := jm.clock.Now()
	if slices.Contains(jm.mu.sched.Pending(), id) {
		jm.log.Warn("taskmanager ended before registering", "id", id, "reason", reason)
	}
	for _, tm := range jm.tmsLocked() {
		if tm.resourceID == id {
			jm.loseTMLocked(tm, reason, now)
			break
		}
	}
	jm.schedEffectsLocked(jm.mu.sched.ResourceEnded(now, id, reason), now)
}

// pendingExplainer is a provider that can tell why a TaskManager it was
// asked for has not started (a pod that is unschedulable, an image still
// being pulled).
type pendingExplainer interface {
	Pending(id string) string
}

// pendingReasons says why the TaskManagers asked of the provider have not
// registered, if it can tell: "; TaskManager taskmanager-2: pod ... is
// not scheduled: Unschedulable: ...".
func (jm *JobManager) pendingReasons(pending []string) string {
	pe, ok := jm.cfg.Provider.(pendingExplainer)
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, id := range pending {
		if why := pe.Pending(id); why != "" {
			fmt.Fprintf(&b, "; TaskManager %s: %s", id, why)
		}
	}
	return b.String()
}
