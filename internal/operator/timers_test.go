package operator

import (
	"slices"
	"testing"
)

// TestEventTimerOrder checks the event-time timer queue on its own: timers
// pop in time order and, among equal times, in registration order; a
// timer registered twice pops once; a removed one never pops; the same
// time in another namespace or owner is another timer.
func TestEventTimerOrder(t *testing.T) {
	q := eventTimers[string]{pos: map[timerKey[string]]*eventTimer[string]{}}
	w := Window{Start: 0, End: 10}
	q.add(timerKey[string]{key: "b", ts: 5})
	q.add(timerKey[string]{key: "a", ts: 5})
	q.add(timerKey[string]{key: "a", ts: 5}) // again: no second timer
	q.add(timerKey[string]{key: "a", ts: 5, ns: w})
	q.add(timerKey[string]{key: "a", ts: 5, own: true})
	q.add(timerKey[string]{key: "c", ts: 1})
	q.add(timerKey[string]{key: "d", ts: 3})
	q.remove(timerKey[string]{key: "d", ts: 3})
	q.add(timerKey[string]{key: "e", ts: 9})

	type fired struct {
		key string
		ts  int64
		ns  Window
		own bool
	}
	var got []fired
	for {
		k, ok := q.popDue(5)
		if !ok {
			break
		}
		got = append(got, fired{k.key, k.ts, k.ns, k.own})
	}
	want := []fired{{"c", 1, Window{}, false}, {"b", 5, Window{}, false}, {"a", 5, Window{}, false}, {"a", 5, w, false}, {"a", 5, Window{}, true}}
	if !slices.Equal(got, want) {
		t.Errorf("popped up to 5: %v, want %v", got, want)
	}
	if q.Len() != 1 {
		t.Errorf("%d timers left, want 1 (e at 9)", q.Len())
	}
	if k, ok := q.popDue(9); !ok || k.key != "e" {
		t.Errorf("popDue(9) = %v, %v; want e", k, ok)
	}
}
