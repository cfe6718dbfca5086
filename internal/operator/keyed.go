package operator

import (
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/snapshot"
)

// keyedRuntime tracks the current key and namespace of a keyed operator.
type keyedRuntime[K comparable] struct {
	key    K
	ns     Window
	states map[string]any
	// kc encodes keys for checkpoints; restored holds, by state name, the
	// entries of a restored checkpoint for states not declared yet.
	kc       *keyCoder[K]
	restored map[string][]snapshot.Entry
}

// KeyedContext is the context of a keyed function: Context plus the current
// key, keyed state and timers.
type KeyedContext[K comparable, O any] struct {
	Context[O]
	rt     keyedRuntime[K]
	store  StateStore[K]
	timers *timerService[K]
	domain TimeDomain
	// noTimers, if set, is the error of registering a timer where nothing
	// would receive it (a window function without OnTimer).
	noTimers error
}

func (c *KeyedContext[K, O]) init(in *Instance, fire func(timerKey[K], TimeDomain)) {
	c.Context = newContext[O](in)
	c.rt.states = map[string]any{}
	c.rt.kc = newKeyCoder[K](in.MaxParallelism)
	c.store = StateStore[K]{rt: &c.rt}
	c.timers = newTimerService(in.Task, fire)
}

// Key returns the current key.
func (c *KeyedContext[K, O]) Key() K { return c.rt.key }

// State returns the store that makes state handles scoped to the current
// key; call it in Open and keep the handles.
func (c *KeyedContext[K, O]) State() *StateStore[K] { return &c.store }

// RegisterEventTimeTimer asks for OnTimer when the watermark reaches ts, for
// the current key. Registering the same time twice fires once.
func (c *KeyedContext[K, O]) RegisterEventTimeTimer(ts int64) {
	if c.noTimers != nil {
		c.task.Fail(c.noTimers)
	}
	c.timers.registerEvent(timerKey[K]{key: c.rt.key, ns: c.rt.ns, ts: ts})
}

// DeleteEventTimeTimer cancels an event-time timer of the current key.
func (c *KeyedContext[K, O]) DeleteEventTimeTimer(ts int64) {
	c.timers.deleteEvent(timerKey[K]{key: c.rt.key, ns: c.rt.ns, ts: ts})
}

// RegisterProcessingTimeTimer asks for OnTimer when the wall clock reaches
// ts (milliseconds), for the current key.
func (c *KeyedContext[K, O]) RegisterProcessingTimeTimer(ts int64) {
	if c.noTimers != nil {
		c.task.Fail(c.noTimers)
	}
	c.timers.registerProc(timerKey[K]{key: c.rt.key, ns: c.rt.ns, ts: ts})
}

// DeleteProcessingTimeTimer cancels a processing-time timer of the current
// key.
func (c *KeyedContext[K, O]) DeleteProcessingTimeTimer(ts int64) {
	c.timers.deleteProc(timerKey[K]{key: c.rt.key, ns: c.rt.ns, ts: ts})
}

// TimeDomain tells, in OnTimer, which kind of timer fired.
func (c *KeyedContext[K, O]) TimeDomain() TimeDomain { return c.domain }

// setTimer makes the context current for a firing timer.
func (c *KeyedContext[K, O]) setTimer(t timerKey[K], d TimeDomain) {
	c.rt.key, c.rt.ns, c.domain = t.key, t.ns, d
	if d == EventTime {
		c.ts = t.ts
	} else {
		c.ts = exec.NoTimestamp
	}
}
