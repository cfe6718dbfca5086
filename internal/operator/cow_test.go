package operator

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/snapshot"
)

// stateModel is what the value, list and map states of a test store hold,
// in plain maps: the oracle of the copy-on-write tests.
type stateModel struct {
	value map[string]int
	list  map[string][]int
	kv    map[string]map[int]int
}

func (m stateModel) clone() stateModel {
	c := stateModel{value: maps.Clone(m.value), list: map[string][]int{}, kv: map[string]map[int]int{}}
	for k, l := range m.list {
		c.list[k] = slices.Clone(l)
	}
	for k, mm := range m.kv {
		c.kv[k] = maps.Clone(mm)
	}
	return c
}

// pendingSnapshot is a snapshot captured and not encoded yet.
type pendingSnapshot struct {
	encs []func() ([]snapshot.Entry, error)
	want stateModel // the state at the capture
	at   int        // the step of the capture
}

// TestCOWStateSnapshotProperty: random puts, appends, updates and deletes
// of value, list and map state over a few keys, interleaved with
// snapshots whose encoding runs a random number of steps after their
// capture (so that several overlap, and some are never encoded): every
// encoded snapshot restores exactly the state at its capture, whatever was
// written in between.
func TestCOWStateSnapshotProperty(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			s := newTestStore(16)
			v := NewValueState[int](s, "value")
			l := NewListState[int](s, "list")
			m := NewMapState[int, int](s, "kv")
			model := stateModel{value: map[string]int{}, list: map[string][]int{}, kv: map[string]map[int]int{}}
			var pending []pendingSnapshot
			keys := 1 + rng.IntN(30)
			encoded := 0
			for step := range 3000 {
				k := fmt.Sprintf("k%d", rng.IntN(keys))
				s.rt.key = k
				x := rng.IntN(1000)
				switch r := rng.IntN(100); {
				case r < 20:
					v.Update(x)
					model.value[k] = x
				case r < 25:
					v.Clear()
					delete(model.value, k)
				case r < 45:
					l.Add(x)
					model.list[k] = append(model.list[k], x)
				case r < 50:
					l.Update([]int{x, x + 1})
					model.list[k] = []int{x, x + 1}
				case r < 53:
					l.Clear()
					delete(model.list, k)
				case r < 75:
					m.Put(x%5, x)
					if model.kv[k] == nil {
						model.kv[k] = map[int]int{}
					}
					model.kv[k][x%5] = x
				case r < 85:
					m.Remove(x % 5)
					delete(model.kv[k], x%5)
					if len(model.kv[k]) == 0 {
						delete(model.kv, k)
					}
				case r < 87:
					m.Clear()
					delete(model.kv, k)
				case r < 92:
					encs, err := s.rt.captureStates()
					if err != nil {
						t.Fatal(err)
					}
					pending = append(pending, pendingSnapshot{encs: encs, want: model.clone(), at: step})
				default:
					if len(pending) == 0 {
						continue
					}
					i := rng.IntN(len(pending))
					p := pending[i]
					pending = slices.Delete(pending, i, i+1)
					if rng.IntN(8) == 0 {
						continue // given up: never encoded
					}
					checkRestores(t, p, keys)
					encoded++
				}
				// The live state is the model's.
				if got, ok := v.Value(); ok != hasKey(model.value, k) || got != model.value[k] {
					t.Fatalf("step %d, key %s: value %d, %v; want %d", step, k, got, ok, model.value[k])
				}
				if got := l.Get(); !slices.Equal(got, model.list[k]) {
					t.Fatalf("step %d, key %s: list %v, want %v", step, k, got, model.list[k])
				}
				if got := maps.Collect(m.All()); !maps.Equal(got, model.kv[k]) && len(got)+len(model.kv[k]) > 0 {
					t.Fatalf("step %d, key %s: map %v, want %v", step, k, got, model.kv[k])
				}
			}
			if encoded == 0 {
				t.Fatal("no snapshot was encoded: the test proves nothing")
			}
		})
	}
}

// checkRestores encodes snapshot p and restores it into a new store,
// which must hold p's state.
func checkRestores(t *testing.T, p pendingSnapshot, keys int) {
	t.Helper()
	s := newTestStore(16)
	s.rt.restored = map[string][]snapshot.Entry{}
	for _, enc := range p.encs {
		es, err := enc()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			name := e.Name[len(stateEntryPrefix):]
			s.rt.restored[name] = append(s.rt.restored[name], e)
		}
	}
	v := NewValueState[int](s, "value")
	l := NewListState[int](s, "list")
	m := NewMapState[int, int](s, "kv")
	for i := range keys {
		k := fmt.Sprintf("k%d", i)
		s.rt.key = k
		if got, ok := v.Value(); ok != hasKey(p.want.value, k) || got != p.want.value[k] {
			t.Fatalf("snapshot of step %d, key %s: value %d, %v; want %d, %v", p.at, k, got, ok, p.want.value[k], hasKey(p.want.value, k))
		}
		if got := l.Get(); !slices.Equal(got, p.want.list[k]) {
			t.Fatalf("snapshot of step %d, key %s: list %v, want %v", p.at, k, got, p.want.list[k])
		}
		if got := maps.Collect(m.All()); len(got)+len(p.want.kv[k]) > 0 && !maps.Equal(got, p.want.kv[k]) {
			t.Fatalf("snapshot of step %d, key %s: map %v, want %v", p.at, k, got, p.want.kv[k])
		}
	}
}

// TestReduceSnapshotIsolation: records reduced after a rolling reduce's
// barrier, while its snapshot is being encoded, are not in the snapshot,
// and the next snapshot has them; the barrier's capture does not copy the
// keys (the state map is shared with the snapshot until it is encoded).
func TestReduceSnapshotIsolation(t *testing.T) {
	const n = 1000
	input, st := filledReduce(n)
	op := st.(*reduceOp[int64, benchRec])
	enc, err := op.SnapshotState(1)
	if err != nil {
		t.Fatal(err)
	}
	if op.acc.frozen == nil || len(op.acc.over) != 0 {
		t.Fatalf("after the capture: frozen %v, overlay of %d keys; want the map frozen, nothing copied", op.acc.frozen != nil, len(op.acc.over))
	}
	for k := range int64(n / 2) { // during the asynchronous write
		input.Collect(benchRec{Key: k, Sum: 1_000_000}, exec.NoTimestamp)
	}
	sums := func(enc func() ([]snapshot.Entry, error)) map[int64]int64 {
		t.Helper()
		es, err := enc()
		if err != nil {
			t.Fatal(err)
		}
		r := &reduceOp[int64, benchRec]{acc: makeCOWMap[int64, benchRec](), kc: op.kc}
		if err := r.RestoreState(es); err != nil {
			t.Fatal(err)
		}
		got := map[int64]int64{}
		for k, v := range r.acc.base {
			got[k] = v.Sum
		}
		return got
	}
	first := sums(enc)
	if len(op.acc.over) != n/2 {
		t.Fatalf("%d keys in the overlay, want the %d written during the snapshot", len(op.acc.over), n/2)
	}
	input.Collect(benchRec{Key: n - 1, Sum: 1}, exec.NoTimestamp) // folds the overlay
	if op.acc.frozen != nil || len(op.acc.over) != 0 {
		t.Fatalf("after the snapshot's release and a write: frozen %v, overlay of %d keys", op.acc.frozen != nil, len(op.acc.over))
	}
	enc2, err := op.SnapshotState(2)
	if err != nil {
		t.Fatal(err)
	}
	second := sums(enc2)
	for k := range int64(n) {
		want1, want2 := k*3, k*3
		if k < n/2 {
			want2 += 1_000_000
		}
		if k == n-1 {
			want2++
		}
		if first[k] != want1 || second[k] != want2 {
			t.Fatalf("key %d: snapshots hold %d and %d, want %d and %d", k, first[k], second[k], want1, want2)
		}
	}
	if len(first) != n || len(second) != n {
		t.Fatalf("snapshots of %d and %d keys, want %d", len(first), len(second), n)
	}
}

// TestCOWConcurrentEncode: snapshots encoded on another goroutine while
// the task goes on writing every kind of state (run with -race) hold the
// state at their capture.
func TestCOWConcurrentEncode(t *testing.T) {
	const keys = 50
	rng := rand.New(rand.NewPCG(7, 7))
	s := newTestStore(16)
	v := NewValueState[int](s, "value")
	l := NewListState[int](s, "list")
	m := NewMapState[int, int](s, "kv")
	model := stateModel{value: map[string]int{}, list: map[string][]int{}, kv: map[string]map[int]int{}}
	write := func() {
		k := fmt.Sprintf("k%d", rng.IntN(keys))
		s.rt.key = k
		x := rng.IntN(1000)
		switch rng.IntN(6) {
		case 0:
			v.Update(x)
			model.value[k] = x
		case 1:
			v.Clear()
			delete(model.value, k)
		case 2:
			l.Add(x)
			model.list[k] = append(model.list[k], x)
		case 3:
			l.Clear()
			delete(model.list, k)
		case 4:
			m.Put(x%3, x)
			if model.kv[k] == nil {
				model.kv[k] = map[int]int{}
			}
			model.kv[k][x%3] = x
		case 5:
			m.Remove(x % 3)
			delete(model.kv[k], x%3)
			if len(model.kv[k]) == 0 {
				delete(model.kv, k)
			}
		}
	}
	for range 20 {
		for range 500 {
			write()
		}
		encs, err := s.rt.captureStates()
		if err != nil {
			t.Fatal(err)
		}
		p := pendingSnapshot{encs: encs, want: model.clone()}
		type result struct {
			es  [][]snapshot.Entry
			err error
		}
		done := make(chan result, 1)
		go func() {
			var r result
			for _, enc := range encs {
				es, err := enc()
				if err != nil {
					r.err = err
					break
				}
				r.es = append(r.es, es)
			}
			done <- r
		}()
		for range 500 { // while the snapshot is encoded
			write()
		}
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		p.encs = nil
		for _, es := range r.es {
			p.encs = append(p.encs, func() ([]snapshot.Entry, error) { return es, nil })
		}
		checkRestores(t, p, keys)
	}
}
