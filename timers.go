package spate

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

type timerKey[K comparable] struct {
	key K
	ns  Window
	ts  int64
}

// timerService keeps a keyed operator's timers, at most one per key,
// namespace and time in each domain.
type timerService[K comparable] struct {
	task  *exec.Task
	event timerHeap[K]
	evSet map[timerKey[K]]struct{}
	prSet map[timerKey[K]]struct{}
	// fire is called for a due timer, on the task's goroutine.
	fire func(t timerKey[K], domain TimeDomain)
	wm   int64
}

func newTimerService[K comparable](task *exec.Task, fire func(timerKey[K], TimeDomain)) *timerService[K] {
	return &timerService[K]{task: task, evSet: map[timerKey[K]]struct{}{}, prSet: map[timerKey[K]]struct{}{}, fire: fire, wm: exec.MinWatermark}
}

func (s *timerService[K]) registerEvent(t timerKey[K]) {
	if _, ok := s.evSet[t]; ok {
		return
	}
	s.evSet[t] = struct{}{}
	heap.Push(&s.event, t)
}

func (s *timerService[K]) deleteEvent(t timerKey[K]) { delete(s.evSet, t) }

func (s *timerService[K]) registerProc(t timerKey[K]) {
	if _, ok := s.prSet[t]; ok {
		return
	}
	s.prSet[t] = struct{}{}
	s.task.RegisterProcTimer(t.ts, func() {
		if _, ok := s.prSet[t]; !ok {
			return // deleted
		}
		delete(s.prSet, t)
		s.fire(t, ProcessingTime)
	})
}

func (s *timerService[K]) deleteProc(t timerKey[K]) { delete(s.prSet, t) }

// advance fires, in time order, every event-time timer at or before wm.
func (s *timerService[K]) advance(wm int64) {
	s.wm = wm
	for len(s.event) > 0 && s.event[0].ts <= wm {
		t := heap.Pop(&s.event).(timerKey[K])
		if _, ok := s.evSet[t]; !ok {
			continue
		}
		delete(s.evSet, t)
		s.fire(t, EventTime)
	}
}

type timerHeap[K comparable] []timerKey[K]

func (h timerHeap[K]) Len() int           { return len(h) }
func (h timerHeap[K]) Less(i, j int) bool { return h[i].ts < h[j].ts }
func (h timerHeap[K]) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap[K]) Push(x any)        { *h = append(*h, x.(timerKey[K])) }
func (h *timerHeap[K]) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
