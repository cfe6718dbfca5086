package operator

import (
	"fmt"
	"iter"
	"maps"
)

// Keyed state: every handle below keeps one value per key (and, for window
// state, per key and window). Handles are made once, in Open, from the
// StateStore of the function's context, and then read and written in
// ProcessElement and OnTimer, where they see the current key's value.

type scope[K comparable] struct {
	key K
	ns  Window
}

// StateStore makes keyed state handles: scoped to the current key, or to
// the current key and window for a window function's per-window state.
type StateStore[K comparable] struct {
	rt       *keyedRuntime[K]
	windowed bool
}

func (s *StateStore[K]) scope() scope[K] {
	if s.windowed {
		return scope[K]{key: s.rt.key, ns: s.rt.ns}
	}
	return scope[K]{key: s.rt.key}
}

func register[S any, K comparable](s *StateStore[K], name string, make func() *S) *S {
	if s.windowed {
		name = "window/" + name
	}
	if st, ok := s.rt.states[name]; ok {
		typed, ok := st.(*S)
		if !ok {
			panic(fmt.Sprintf("spate: state %q was declared as %T and again as %T; give each state its own name", name, st, typed))
		}
		return typed
	}
	st := make()
	s.rt.states[name] = st
	s.rt.restoreState(name, st)
	return st
}

// ValueState holds one value per key.
type ValueState[K comparable, V any] struct {
	s *StateStore[K]
	m cowMap[scope[K], V]
}

// NewValueState returns the value state called name.
func NewValueState[V any, K comparable](s *StateStore[K], name string) *ValueState[K, V] {
	return register(s, name, func() *ValueState[K, V] { return &ValueState[K, V]{s: s, m: makeCOWMap[scope[K], V]()} })
}

// Value returns the current key's value and whether it is set.
func (v *ValueState[K, V]) Value() (V, bool) {
	return v.m.get(v.s.scope())
}

// Update sets the current key's value.
func (v *ValueState[K, V]) Update(x V) { v.m.set(v.s.scope(), x) }

// Clear removes the current key's value.
func (v *ValueState[K, V]) Clear() { v.m.remove(v.s.scope()) }

// ListState holds a list per key.
type ListState[K comparable, V any] struct {
	s *StateStore[K]
	m cowMap[scope[K], []V]
}

// NewListState returns the list state called name.
func NewListState[V any, K comparable](s *StateStore[K], name string) *ListState[K, V] {
	return register(s, name, func() *ListState[K, V] { return &ListState[K, V]{s: s, m: makeCOWMap[scope[K], []V]()} })
}

// Get returns the current key's list; the caller must not modify it.
func (l *ListState[K, V]) Get() []V {
	xs, _ := l.m.get(l.s.scope())
	return xs
}

// Add appends x to the current key's list. Appending in place is safe
// with a snapshot reading the list: the snapshot's slice header keeps its
// length, and a list is only ever appended to at its latest header
// (Update copies).
func (l *ListState[K, V]) Add(x V) {
	sc := l.s.scope()
	xs, _ := l.m.get(sc)
	l.m.set(sc, append(xs, x))
}

// Update replaces the current key's list.
func (l *ListState[K, V]) Update(xs []V) { l.m.set(l.s.scope(), append([]V(nil), xs...)) }

// Clear removes the current key's list.
func (l *ListState[K, V]) Clear() { l.m.remove(l.s.scope()) }

// MapState holds a map per key.
type MapState[K comparable, MK comparable, MV any] struct {
	s *StateStore[K]
	m cowMap[scope[K], keyMap[MK, MV]]
}

// keyMap is one key's map of a MapState, changed in place only when made
// since the latest snapshot began (gen), and copied first otherwise.
type keyMap[MK comparable, MV any] struct {
	m   map[MK]MV
	gen uint64
}

// NewMapState returns the map state called name.
func NewMapState[MK comparable, MV any, K comparable](s *StateStore[K], name string) *MapState[K, MK, MV] {
	return register(s, name, func() *MapState[K, MK, MV] {
		return &MapState[K, MK, MV]{s: s, m: makeCOWMap[scope[K], keyMap[MK, MV]]()}
	})
}

// Get returns the entry k of the current key's map.
func (m *MapState[K, MK, MV]) Get(k MK) (MV, bool) {
	km, _ := m.m.get(m.s.scope())
	v, ok := km.m[k]
	return v, ok
}

// Put sets the entry k of the current key's map.
func (m *MapState[K, MK, MV]) Put(k MK, v MV) {
	sc := m.s.scope()
	km := m.writable(sc)
	km.m[k] = v
}

// writable returns the map of sc, copied first if a snapshot may see it.
func (m *MapState[K, MK, MV]) writable(sc scope[K]) keyMap[MK, MV] {
	km, _ := m.m.get(sc)
	if km.m == nil || km.gen != m.m.gen {
		mm := make(map[MK]MV, len(km.m)+1)
		maps.Copy(mm, km.m)
		km = keyMap[MK, MV]{m: mm, gen: m.m.gen}
		m.m.set(sc, km)
	}
	return km
}

// Remove deletes the entry k of the current key's map.
func (m *MapState[K, MK, MV]) Remove(k MK) {
	sc := m.s.scope()
	if km, _ := m.m.get(sc); !hasKey(km.m, k) {
		return
	}
	km := m.writable(sc)
	delete(km.m, k)
	if len(km.m) == 0 {
		m.m.remove(sc)
	}
}

func hasKey[MK comparable, MV any](m map[MK]MV, k MK) bool {
	_, ok := m[k]
	return ok
}

// All iterates over the current key's map.
func (m *MapState[K, MK, MV]) All() iter.Seq2[MK, MV] {
	km, _ := m.m.get(m.s.scope())
	return maps.All(km.m)
}

// Len returns the size of the current key's map.
func (m *MapState[K, MK, MV]) Len() int {
	km, _ := m.m.get(m.s.scope())
	return len(km.m)
}

// Clear removes the current key's map.
func (m *MapState[K, MK, MV]) Clear() { m.m.remove(m.s.scope()) }

// ReducingState holds per key the reduction of every value added.
type ReducingState[K comparable, V any] struct {
	v *ValueState[K, V]
	f func(acc, v V) V
}

// NewReducingState returns the reducing state called name.
func NewReducingState[V any, K comparable](s *StateStore[K], name string, f func(acc, v V) V) *ReducingState[K, V] {
	return register(s, name, func() *ReducingState[K, V] {
		return &ReducingState[K, V]{v: &ValueState[K, V]{s: s, m: makeCOWMap[scope[K], V]()}, f: f}
	})
}

// Add reduces x into the current key's value.
func (r *ReducingState[K, V]) Add(x V) {
	if acc, ok := r.v.Value(); ok {
		x = r.f(acc, x)
	}
	r.v.Update(x)
}

// Get returns the current key's reduction and whether anything was added.
func (r *ReducingState[K, V]) Get() (V, bool) { return r.v.Value() }

// Clear removes the current key's value.
func (r *ReducingState[K, V]) Clear() { r.v.Clear() }

// Aggregator aggregates records of type T into an accumulator A and
// derives a result O from it: the method set of spate.AggregateFunction,
// Flink's AggregateFunction.
type Aggregator[T, A, O any] interface {
	CreateAccumulator() A
	Add(acc A, v T) A
	Result(acc A) O
	Merge(a, b A) A
}

// AggregatingState holds per key an accumulator of the values added.
type AggregatingState[K comparable, T, A, O any] struct {
	v *ValueState[K, A]
	f Aggregator[T, A, O]
}

// NewAggregatingState returns the aggregating state called name.
func NewAggregatingState[T, A, O any, K comparable](s *StateStore[K], name string, f Aggregator[T, A, O]) *AggregatingState[K, T, A, O] {
	return register(s, name, func() *AggregatingState[K, T, A, O] {
		return &AggregatingState[K, T, A, O]{v: &ValueState[K, A]{s: s, m: makeCOWMap[scope[K], A]()}, f: f}
	})
}

// Add adds x to the current key's accumulator.
func (a *AggregatingState[K, T, A, O]) Add(x T) {
	acc, ok := a.v.Value()
	if !ok {
		acc = a.f.CreateAccumulator()
	}
	a.v.Update(a.f.Add(acc, x))
}

// Get returns the current key's result and whether anything was added.
func (a *AggregatingState[K, T, A, O]) Get() (O, bool) {
	acc, ok := a.v.Value()
	if !ok {
		var zero O
		return zero, false
	}
	return a.f.Result(acc), true
}

// Clear removes the current key's accumulator.
func (a *AggregatingState[K, T, A, O]) Clear() { a.v.Clear() }
