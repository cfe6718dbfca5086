package operator

import (
	"slices"
	"testing"

	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/keygroup"
	"github.com/spate-dev/spate/internal/snapshot"
)

func newTestStore(maxPar int) *StateStore[string] {
	rt := &keyedRuntime[string]{states: map[string]any{}, kc: newKeyCoder[string](maxPar)}
	return &StateStore[string]{rt: rt}
}

// TestKeyedStatePerKeyGroup: a snapshot of keyed state holds one entry per
// key group, each with the keys of that group only, and restoring the
// entries (in any grouping: a rescale hands a subtask the groups it owns)
// gives every key its value, list and map back; a state is restored when
// it is declared again.
func TestKeyedStatePerKeyGroup(t *testing.T) {
	const maxPar = 16
	s := newTestStore(maxPar)
	v := NewValueState[int](s, "v")
	l := NewListState[string](s, "l")
	m := NewMapState[int, string](s, "m")
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	for i, k := range keys {
		s.rt.key = k
		v.Update(i)
		l.Add(k)
		l.Add(k + k)
		m.Put(i, k)
	}
	encs, err := s.rt.captureStates()
	if err != nil {
		t.Fatal(err)
	}
	// Records written after the capture are not in the snapshot.
	s.rt.key = "a"
	v.Update(100)
	l.Add("late")
	m.Put(99, "late")
	var all []snapshot.Entry
	for _, enc := range encs {
		es, err := enc()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, es...)
	}
	kc := s.rt.kc
	groups := 0
	for _, e := range all {
		if e.Name != "s/v" {
			continue
		}
		groups++
		if err := kc.records(e, func(k string, _ Window, r *snapshot.Reader) error {
			r.Bytes() // the value
			if kg := int32(keygroup.Of(kc.hash(k), maxPar)); kg != e.KeyGroup {
				t.Errorf("entry %s of key group %d holds key %q of group %d", e.Name, e.KeyGroup, k, kg)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if groups < 2 {
		t.Fatalf("the value state's snapshot has %d entries for 10 keys in 16 key groups, want one per key group", groups)
	}
	// Restore in reverse order, as if from several files.
	slices.Reverse(all)
	s2 := newTestStore(maxPar)
	s2.rt.restored = map[string][]snapshot.Entry{}
	for _, e := range all {
		name := e.Name[len(stateEntryPrefix):]
		s2.rt.restored[name] = append(s2.rt.restored[name], e)
	}
	v2 := NewValueState[int](s2, "v")
	l2 := NewListState[string](s2, "l")
	m2 := NewMapState[int, string](s2, "m")
	for i, k := range keys {
		s2.rt.key = k
		if got, ok := v2.Value(); !ok || got != i {
			t.Errorf("key %s: value %d, %v; want %d", k, got, ok, i)
		}
		if got := l2.Get(); !slices.Equal(got, []string{k, k + k}) {
			t.Errorf("key %s: list %q", k, got)
		}
		if got, ok := m2.Get(i); !ok || got != k || m2.Len() != 1 {
			t.Errorf("key %s: map entry %d = %q, %v, len %d", k, i, got, ok, m2.Len())
		}
	}
	if len(s2.rt.restored) != 0 {
		t.Errorf("states left unrestored: %v", s2.rt.restored)
	}
}

// TestStateWithoutCodec: a state whose values have no codec fails the
// snapshot, naming the type.
func TestStateWithoutCodec(t *testing.T) {
	s := newTestStore(8)
	f := NewValueState[func()](s, "f")
	s.rt.key = "a"
	f.Update(func() {})
	if _, err := s.rt.captureStates(); err == nil {
		t.Fatal("a state of funcs was snapshotted")
	}
}

// TestTimersRestore: event-time and processing-time timers, the window's
// own and the function's, come back from a snapshot registered as they
// were, and fire in time order.
func TestTimersRestore(t *testing.T) {
	kc := newKeyCoder[string](16)
	var fired []timerKey[string]
	s := newTimerService(&exec.Task{}, func(tk timerKey[string], _ TimeDomain) { fired = append(fired, tk) })
	w := Window{Start: 0, End: 100}
	s.registerEvent(timerKey[string]{key: "a", ns: w, ts: 99, own: true})
	s.registerEvent(timerKey[string]{key: "b", ts: 50})
	s.registerProc(timerKey[string]{key: "c", ts: 1_000, own: true})
	enc, err := s.capture(kc)
	if err != nil {
		t.Fatal(err)
	}
	s.registerEvent(timerKey[string]{key: "late", ts: 10}) // after the barrier
	es, err := enc()
	if err != nil {
		t.Fatal(err)
	}
	s2 := newTimerService(&exec.Task{}, func(tk timerKey[string], _ TimeDomain) { fired = append(fired, tk) })
	for _, e := range es {
		if err := s2.restore(kc, e); err != nil {
			t.Fatal(err)
		}
	}
	if got := s2.pendingProc(true); len(got) != 1 || got[0].key != "c" || got[0].ts != 1_000 {
		t.Fatalf("processing-time timers after restore: %+v", got)
	}
	s2.advance(200)
	want := []timerKey[string]{{key: "b", ts: 50}, {key: "a", ns: w, ts: 99, own: true}}
	if !slices.Equal(fired, want) {
		t.Fatalf("fired %+v, want %+v", fired, want)
	}
}
