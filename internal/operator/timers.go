package operator

import (
	"container/heap"

	"github.com/spate-dev/spate/internal/exec"
)

// TimeDomain tells which clock a timer follows.
type TimeDomain uint8

const (
	// EventTime timers fire when the watermark passes them.
	EventTime TimeDomain = iota
	// ProcessingTime timers fire when the wall clock passes them.
	ProcessingTime
)

// timerKey identifies a timer: its key, namespace (window) and time, and
// whether the operator keeps it for itself (a window's end or cleanup) or
// user code registered it. The two never collide, so a user's timer can
// neither fire nor delete an operator's.
type timerKey[K comparable] struct {
	key K
	ns  Window
	ts  int64
	own bool
}

// timerService keeps a keyed operator's timers, at most one per key,
// namespace, time and owner in each domain. Deleting a timer removes it at
// once, with everything it holds: there is no lazy deletion.
type timerService[K comparable] struct {
	task  *exec.Task
	event eventTimers[K]
	proc  map[timerKey[K]]*exec.ProcTimer
	// procPeak is the largest size proc had since it was last rebuilt.
	procPeak int
	// fire is called for a due timer, on the task's goroutine.
	fire func(t timerKey[K], domain TimeDomain)
	wm   int64
}

func newTimerService[K comparable](task *exec.Task, fire func(timerKey[K], TimeDomain)) *timerService[K] {
	return &timerService[K]{
		task: task, event: eventTimers[K]{pos: map[timerKey[K]]*eventTimer[K]{}},
		proc: map[timerKey[K]]*exec.ProcTimer{}, fire: fire, wm: exec.MinWatermark,
	}
}

func (s *timerService[K]) registerEvent(t timerKey[K]) { s.event.add(t) }

func (s *timerService[K]) deleteEvent(t timerKey[K]) { s.event.remove(t) }

func (s *timerService[K]) registerProc(t timerKey[K]) {
	if _, ok := s.proc[t]; ok {
		return
	}
	s.proc[t] = s.task.RegisterProcTimer(t.ts, func() {
		s.dropProc(t)
		s.fire(t, ProcessingTime)
	})
	s.procPeak = max(s.procPeak, len(s.proc))
}

func (s *timerService[K]) deleteProc(t timerKey[K]) {
	if pt, ok := s.proc[t]; ok {
		s.task.CancelProcTimer(pt)
		s.dropProc(t)
	}
}

// dropProc forgets a processing-time timer, and rebuilds the map once it
// holds a small part of what it once did: Go maps never shrink.
func (s *timerService[K]) dropProc(t timerKey[K]) {
	delete(s.proc, t)
	if s.procPeak > shrinkMin && len(s.proc) < s.procPeak/4 {
		m := make(map[timerKey[K]]*exec.ProcTimer, len(s.proc))
		for k, v := range s.proc {
			m[k] = v
		}
		s.proc, s.procPeak = m, len(m)
	}
}

// pendingProc returns the processing-time timers not yet fired whose owner
// is own.
func (s *timerService[K]) pendingProc(own bool) []timerKey[K] {
	var ts []timerKey[K]
	for t := range s.proc {
		if t.own == own {
			ts = append(ts, t)
		}
	}
	return ts
}

// advance fires, in time order (registration order among equal times),
// every event-time timer at or before wm.
func (s *timerService[K]) advance(wm int64) {
	s.wm = wm
	for {
		t, ok := s.event.popDue(wm)
		if !ok {
			return
		}
		s.fire(t, EventTime)
	}
}

// shrinkMin is the size under which timer structures are not rebuilt to
// give memory back.
const shrinkMin = 1024

// eventTimers is a min-heap of event-time timers by time, then
// registration order, with an index from timer to entry so that a delete
// removes the entry from the heap at once.
type eventTimers[K comparable] struct {
	h    []*eventTimer[K]
	pos  map[timerKey[K]]*eventTimer[K]
	peak int // largest len(pos) since pos was last rebuilt
	seq  uint64
}

type eventTimer[K comparable] struct {
	t     timerKey[K]
	seq   uint64
	index int
}

func (q *eventTimers[K]) add(t timerKey[K]) {
	if _, ok := q.pos[t]; ok {
		return
	}
	e := &eventTimer[K]{t: t, seq: q.seq}
	q.seq++
	q.pos[t] = e
	q.peak = max(q.peak, len(q.pos))
	heap.Push(q, e)
}

func (q *eventTimers[K]) remove(t timerKey[K]) {
	e, ok := q.pos[t]
	if !ok {
		return
	}
	heap.Remove(q, e.index)
	q.forget(t)
}

// popDue removes and returns the earliest timer if it is at or before wm.
func (q *eventTimers[K]) popDue(wm int64) (timerKey[K], bool) {
	if len(q.h) == 0 || q.h[0].t.ts > wm {
		return timerKey[K]{}, false
	}
	e := heap.Pop(q).(*eventTimer[K])
	q.forget(e.t)
	return e.t, true
}

func (q *eventTimers[K]) forget(t timerKey[K]) {
	delete(q.pos, t)
	if q.peak > shrinkMin && len(q.pos) < q.peak/4 {
		m := make(map[timerKey[K]]*eventTimer[K], len(q.pos))
		for k, v := range q.pos {
			m[k] = v
		}
		q.pos, q.peak = m, len(m)
	}
}

func (q *eventTimers[K]) Len() int { return len(q.h) }
func (q *eventTimers[K]) Less(i, j int) bool {
	if q.h[i].t.ts != q.h[j].t.ts {
		return q.h[i].t.ts < q.h[j].t.ts
	}
	return q.h[i].seq < q.h[j].seq
}
func (q *eventTimers[K]) Swap(i, j int) {
	q.h[i], q.h[j] = q.h[j], q.h[i]
	q.h[i].index, q.h[j].index = i, j
}
func (q *eventTimers[K]) Push(x any) {
	e := x.(*eventTimer[K])
	e.index = len(q.h)
	q.h = append(q.h, e)
}
func (q *eventTimers[K]) Pop() any {
	n := len(q.h) - 1
	e := q.h[n]
	q.h[n] = nil
	q.h = q.h[:n]
	e.index = -1
	if c := cap(q.h); c > shrinkMin && n < c/4 {
		q.h = append(make([]*eventTimer[K], 0, 2*n), q.h...)
	}
	return e
}
