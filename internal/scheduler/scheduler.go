package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// JobID names a job (the JobManager's 32 hex digits).
type JobID string

// TaskManagerID names a registered TaskManager (tm-1, tm-2, ...).
type TaskManagerID string

// KeySlotRequestTimeout is the configuration key (Flink's) of
// Config.SlotRequestTimeout, named in the failure of a job that waited
// longer.
const KeySlotRequestTimeout = "slot.request.timeout"

// Config configures a Scheduler.
type Config struct {
	// SlotRequestTimeout is how long a job waits in the queue for its
	// slots before it fails (slot.request.timeout).
	SlotRequestTimeout time.Duration
	// Provided tells that a provider starts TaskManagers on demand, each
	// with SlotsPerTaskManager slots, never beyond SlotsMax slots in all
	// (slotmanager.number-of-slots.max); it keeps MinTaskManagers even
	// when idle and stops the others once idle for IdleTimeout. Without a
	// provider TaskManagers are started by an operator, and only the
	// timeouts apply.
	Provided            bool
	SlotsPerTaskManager int
	SlotsMax            int
	MinTaskManagers     int
	IdleTimeout         time.Duration
}

// Slots is a number of slots on one TaskManager.
type Slots struct {
	TaskManager TaskManagerID
	Count       int
}

// Effect is something the caller must do.
type Effect interface {
	String() string
	effect()
}

// Allocate gives Job the slots listed, which the scheduler has taken: one
// worker per TaskManager, in this order (worker i runs on Slots[i]).
type Allocate struct {
	Job   JobID
	Slots []Slots
}

// StartTaskManager asks the provider for a TaskManager named Resource
// with Slots slots; it is pending until Registered, or ResourceEnded.
type StartTaskManager struct {
	Resource string
	Slots    int
}

// StopTaskManager asks the provider to stop an idle TaskManager.
type StopTaskManager struct {
	TaskManager TaskManagerID
	Resource    string
}

// FailJob fails Job, which the scheduler has removed from its queue:
// Message says why and what to do, Location names the TaskManager at
// fault (may be empty). Pending lists the TaskManagers asked of the
// provider that have not registered, whose reasons the caller may add
// (a provider may know why a pod is not scheduled).
type FailJob struct {
	Job      JobID
	Message  string
	Location string
	Pending  []string
}

func (Allocate) effect()         {}
func (StartTaskManager) effect() {}
func (StopTaskManager) effect()  {}
func (FailJob) effect()          {}

func (e Allocate) String() string {
	parts := make([]string, len(e.Slots))
	for i, s := range e.Slots {
		parts[i] = fmt.Sprintf("%s:%d", s.TaskManager, s.Count)
	}
	return fmt.Sprintf("allocate job=%s slots=%s", e.Job, strings.Join(parts, ","))
}
func (e StartTaskManager) String() string {
	return fmt.Sprintf("start-taskmanager resource=%s slots=%d", e.Resource, e.Slots)
}
func (e StopTaskManager) String() string {
	return fmt.Sprintf("stop-taskmanager tm=%s resource=%s", e.TaskManager, e.Resource)
}
func (e FailJob) String() string {
	s := fmt.Sprintf("fail job=%s message=%q", e.Job, e.Message)
	if e.Location != "" {
		s += " location=" + e.Location
	}
	if len(e.Pending) > 0 {
		s += " pending=" + strings.Join(e.Pending, ",")
	}
	return s
}

// taskManager is a registered TaskManager's slots.
type taskManager struct {
	id       TaskManagerID
	resource string
	slots    int
	used     int
	// idleSince is when its last slot was freed (or it registered).
	idleSince time.Time
	// stopping tells that it was asked to stop, at stopAt: it gets no
	// slots and counts no more among the kept TaskManagers; if it is
	// still there an hour later, it is asked again.
	stopping bool
	stopAt   time.Time
}

// free counts the slots a job may get on the TaskManager.
func (tm *taskManager) free() int {
	if tm.stopping {
		return 0
	}
	return tm.slots - tm.used
}

// request is a job waiting in the queue.
type request struct {
	job   JobID
	slots int
	since time.Time
	// restart tells a restart's redeployment from a first deployment.
	restart bool
}

// Scheduler is the cluster's slot scheduler.
type Scheduler struct {
	cfg   Config
	tms   map[TaskManagerID]*taskManager
	order []TaskManagerID
	queue []*request
	// alloc holds each job's slots by TaskManager.
	alloc map[JobID]map[TaskManagerID]int
	// pending holds the slots of the TaskManagers asked of the provider
	// that have not registered, by resource name.
	pending      map[string]int
	nextProvided int
}

// New returns a scheduler with no TaskManager and no job.
func New(cfg Config) *Scheduler {
	if cfg.SlotsPerTaskManager <= 0 {
		cfg.SlotsPerTaskManager = 1
	}
	return &Scheduler{cfg: cfg, tms: map[TaskManagerID]*taskManager{}, alloc: map[JobID]map[TaskManagerID]int{}, pending: map[string]int{}}
}

// Start starts the cluster's kept TaskManagers (Config.MinTaskManagers).
func (s *Scheduler) Start(now time.Time) []Effect {
	if !s.cfg.Provided {
		return nil
	}
	var eff []Effect
	for range s.cfg.MinTaskManagers {
		eff = append(eff, s.startTaskManager())
	}
	return eff
}

// Submit queues a job's first deployment, which needs slots slots.
func (s *Scheduler) Submit(now time.Time, job JobID, slots int) []Effect {
	return s.enqueue(now, job, slots, false)
}

// Requeue queues a restart's redeployment of job; a job still queued
// keeps its place and waits from now.
func (s *Scheduler) Requeue(now time.Time, job JobID, slots int) []Effect {
	return s.enqueue(now, job, slots, true)
}

func (s *Scheduler) enqueue(now time.Time, job JobID, slots int, restart bool) []Effect {
	if r := s.queued(job); r != nil {
		r.since, r.slots, r.restart = now, slots, restart
	} else {
		s.queue = append(s.queue, &request{job: job, slots: slots, since: now, restart: restart})
	}
	return s.Schedule(now)
}

// Dequeue removes job from the queue: it ended, or no longer waits.
func (s *Scheduler) Dequeue(now time.Time, job JobID) []Effect {
	s.queue = slices.DeleteFunc(s.queue, func(r *request) bool { return r.job == job })
	return s.Schedule(now)
}

// Registered admits a TaskManager with its slots; resource is the name it
// was started under (a pending one is pending no more).
func (s *Scheduler) Registered(now time.Time, id TaskManagerID, resource string, slots int) []Effect {
	delete(s.pending, resource)
	if _, ok := s.tms[id]; !ok {
		s.order = append(s.order, id)
	}
	s.tms[id] = &taskManager{id: id, resource: resource, slots: slots, idleSince: now}
	return s.Schedule(now)
}

// Lost removes a TaskManager (its session ended, its heartbeats stopped,
// its process exited) with every slot on it: the jobs' workers there are
// gone, and freeing them later changes nothing.
func (s *Scheduler) Lost(now time.Time, id TaskManagerID) []Effect {
	if _, ok := s.tms[id]; !ok {
		return nil
	}
	delete(s.tms, id)
	s.order = slices.DeleteFunc(s.order, func(o TaskManagerID) bool { return o == id })
	for job, a := range s.alloc {
		delete(a, id)
		if len(a) == 0 {
			delete(s.alloc, job)
		}
	}
	return s.Schedule(now)
}

// Free frees job's slots on TaskManager tm: its worker there is gone.
func (s *Scheduler) Free(now time.Time, job JobID, tm TaskManagerID) []Effect {
	s.free(now, job, tm)
	return s.Schedule(now)
}

// FreeJob frees every slot of job.
func (s *Scheduler) FreeJob(now time.Time, job JobID) []Effect {
	for _, tm := range slices.Sorted(maps.Keys(s.alloc[job])) {
		s.free(now, job, tm)
	}
	return s.Schedule(now)
}

func (s *Scheduler) free(now time.Time, job JobID, id TaskManagerID) {
	a := s.alloc[job]
	n, ok := a[id]
	if !ok {
		return
	}
	delete(a, id)
	if len(a) == 0 {
		delete(s.alloc, job)
	}
	if tm, ok := s.tms[id]; ok {
		tm.used -= n
		if tm.used == 0 {
			tm.idleSince = now
		}
	}
}

// ResourceEnded reports that the provider's TaskManager resource ended
// (its process exited, it could not start). One still pending fails every
// job waiting for its first deployment: a cluster that cannot start a
// TaskManager must not retry for ever. A registered one is lost (the
// caller tells Lost first, to fail its jobs), and the kept TaskManagers
// are made up again.
func (s *Scheduler) ResourceEnded(now time.Time, resource, reason string) []Effect {
	if _, ok := s.pending[resource]; ok {
		delete(s.pending, resource)
		var eff []Effect
		for _, r := range slices.Clone(s.queue) {
			if r.restart {
				continue
			}
			s.queue = slices.DeleteFunc(s.queue, func(q *request) bool { return q == r })
			eff = append(eff, FailJob{Job: r.job, Location: resource,
				Message: fmt.Sprintf("TaskManager %s, started for this job, ended before registering: %s (see its log in the cluster's log directory)", resource, reason)})
		}
		return eff
	}
	var eff []Effect
	for _, id := range s.order {
		if s.tms[id].resource == resource {
			eff = append(eff, s.Lost(now, id)...)
			break
		}
	}
	if s.cfg.Provided {
		for len(s.tms)+len(s.pending) < s.cfg.MinTaskManagers {
			eff = append(eff, s.startTaskManager())
		}
	}
	return append(eff, s.request()...)
}

// Tick does what is due at now: idle provided TaskManagers are stopped
// (when no job waits), and jobs that waited longer than
// slot.request.timeout fail.
func (s *Scheduler) Tick(now time.Time) []Effect {
	eff := s.releaseIdle(now)
	for _, r := range slices.Clone(s.queue) {
		if now.Sub(r.since) <= s.cfg.SlotRequestTimeout {
			continue
		}
		free, total := s.FreeSlots(), s.TotalSlots()
		s.queue = slices.DeleteFunc(s.queue, func(q *request) bool { return q == r })
		eff = append(eff, FailJob{Job: r.job, Pending: slices.Sorted(maps.Keys(s.pending)),
			Message: fmt.Sprintf("could not get %d slots within %v (%s): the cluster has %d free of %d; start more TaskManagers, give them more slots (taskmanager.numberOfTaskSlots) or lower the job's parallelism",
				r.slots, s.cfg.SlotRequestTimeout, KeySlotRequestTimeout, free, total)})
	}
	return eff
}

// NextEvent is when the scheduler next needs a Tick: the first slot
// request to time out, or the first idle TaskManager to stop; zero if
// none.
func (s *Scheduler) NextEvent() time.Time {
	var next time.Time
	at := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, r := range s.queue {
		at(r.since.Add(s.cfg.SlotRequestTimeout + time.Millisecond))
	}
	if s.cfg.Provided && len(s.queue) == 0 {
		for _, id := range s.order {
			switch tm := s.tms[id]; {
			case tm.stopping:
				at(tm.stopAt.Add(time.Hour))
			case tm.used == 0 && len(s.tms) > s.cfg.MinTaskManagers:
				at(tm.idleSince.Add(s.cfg.IdleTimeout))
			}
		}
	}
	return next
}

// releaseIdle stops provided TaskManagers that have had no job for the
// idle timeout, when no job waits, keeping MinTaskManagers.
func (s *Scheduler) releaseIdle(now time.Time) []Effect {
	if !s.cfg.Provided || len(s.queue) > 0 {
		return nil
	}
	var eff []Effect
	kept := 0
	for _, tm := range s.tms {
		if !tm.stopping {
			kept++
		}
	}
	for _, id := range s.order {
		tm := s.tms[id]
		if tm.stopping {
			if now.Sub(tm.stopAt) >= time.Hour {
				tm.stopAt = now
				eff = append(eff, StopTaskManager{TaskManager: id, Resource: tm.resource})
			}
			continue
		}
		if kept <= s.cfg.MinTaskManagers || tm.used > 0 || now.Sub(tm.idleSince) < s.cfg.IdleTimeout {
			continue
		}
		kept--
		tm.stopping, tm.stopAt = true, now
		eff = append(eff, StopTaskManager{TaskManager: id, Resource: tm.resource})
	}
	return eff
}

// Schedule allocates slots to every queued job, in queue order, for which
// enough are free; a job that does not fit waits without holding up the
// jobs behind it (as Flink's jobs each ask for their own slots). A job
// takes the free slots of the TaskManagers in registration order, one
// worker per TaskManager. Then it asks the provider for what the jobs
// still waiting lack. Every event that changes slots or the queue ends
// with it.
func (s *Scheduler) Schedule(now time.Time) []Effect {
	needs := make([]int, len(s.queue))
	for i, r := range s.queue {
		needs[i] = r.slots
	}
	fit := fitting(s.FreeSlots(), needs)
	var eff []Effect
	kept := s.queue[:0]
	for i, r := range s.queue {
		if fit[i] {
			eff = append(eff, s.allocate(r))
		} else {
			kept = append(kept, r)
		}
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	return append(eff, s.request()...)
}

// fitting decides which of the jobs waiting, in queue order, with needs[i]
// slots each, get free slots: each that fits in what the ones before it
// left. A job that does not fit holds up no other.
func fitting(free int, needs []int) []bool {
	fit := make([]bool, len(needs))
	for i, n := range needs {
		if n <= free {
			fit[i] = true
			free -= n
		}
	}
	return fit
}

func (s *Scheduler) allocate(r *request) Allocate {
	need := r.slots
	a := Allocate{Job: r.job}
	for _, id := range s.order {
		tm := s.tms[id]
		free := tm.free()
		if free == 0 || need == 0 {
			continue
		}
		take := min(free, need)
		tm.used += take
		need -= take
		if s.alloc[r.job] == nil {
			s.alloc[r.job] = map[TaskManagerID]int{}
		}
		s.alloc[r.job][id] += take
		a.Slots = append(a.Slots, Slots{TaskManager: id, Count: take})
	}
	return a
}

// request asks the provider for enough TaskManagers to give the waiting
// jobs the slots they lack, counting those already asked for, and never
// beyond slotmanager.number-of-slots.max.
func (s *Scheduler) request() []Effect {
	if !s.cfg.Provided {
		return nil
	}
	demand := 0
	for _, r := range s.queue {
		demand += r.slots
	}
	if demand == 0 {
		return nil
	}
	asked := 0
	for _, n := range s.pending {
		asked += n
	}
	var eff []Effect
	for range taskManagersToStart(demand, s.FreeSlots()+asked, s.TotalSlots()+asked, s.cfg.SlotsPerTaskManager, s.cfg.SlotsMax) {
		eff = append(eff, s.startTaskManager())
	}
	return eff
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

func (s *Scheduler) startTaskManager() StartTaskManager {
	s.nextProvided++
	e := StartTaskManager{Resource: fmt.Sprintf("taskmanager-%d", s.nextProvided), Slots: s.cfg.SlotsPerTaskManager}
	s.pending[e.Resource] = e.Slots
	return e
}

// FreeSlots counts the free slots of the registered TaskManagers (not of
// those asked to stop).
func (s *Scheduler) FreeSlots() int {
	n := 0
	for _, tm := range s.tms {
		n += tm.free()
	}
	return n
}

// TotalSlots counts the slots of the registered TaskManagers.
func (s *Scheduler) TotalSlots() int {
	n := 0
	for _, tm := range s.tms {
		n += tm.slots
	}
	return n
}

// FreeOn counts the free slots of TaskManager id (0 if unknown).
func (s *Scheduler) FreeOn(id TaskManagerID) int {
	if tm, ok := s.tms[id]; ok {
		return tm.free()
	}
	return 0
}

// Ceiling is the most slots a job may need: slotmanager.number-of-slots.max,
// rounded down to whole TaskManagers when a provider starts them.
func (c Config) Ceiling() int {
	if c.Provided {
		per := max(c.SlotsPerTaskManager, 1)
		return c.SlotsMax / per * per
	}
	return c.SlotsMax
}

// Ceiling is the configuration's Ceiling.
func (s *Scheduler) Ceiling() int { return s.cfg.Ceiling() }

// Queued tells whether job waits in the queue.
func (s *Scheduler) Queued(job JobID) bool { return s.queued(job) != nil }

func (s *Scheduler) queued(job JobID) *request {
	for _, r := range s.queue {
		if r.job == job {
			return r
		}
	}
	return nil
}

// Pending lists the TaskManagers asked of the provider that have not
// registered, by name.
func (s *Scheduler) Pending() []string { return slices.Sorted(maps.Keys(s.pending)) }

// TaskManagers counts the registered TaskManagers.
func (s *Scheduler) TaskManagers() int { return len(s.tms) }

// Waiting counts the jobs in the queue.
func (s *Scheduler) Waiting() int { return len(s.queue) }
