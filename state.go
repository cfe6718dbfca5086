package spate

import "github.com/spate-dev/spate/internal/operator"

// Keyed state: every handle below keeps one value per key (and, for window
// state, per key and window). Handles are made once, in Open, from the
// StateStore of the function's context, and then read and written in
// ProcessElement and OnTimer, where they see the current key's value.

// StateStore makes keyed state handles: scoped to the current key, or to
// the current key and window for a window function's per-window state.
type StateStore[K comparable] = operator.StateStore[K]

// ValueState holds one value per key.
type ValueState[K comparable, V any] = operator.ValueState[K, V]

// NewValueState returns the value state called name.
func NewValueState[V any, K comparable](s *StateStore[K], name string) *ValueState[K, V] {
	return operator.NewValueState[V](s, name)
}

// ListState holds a list per key.
type ListState[K comparable, V any] = operator.ListState[K, V]

// NewListState returns the list state called name.
func NewListState[V any, K comparable](s *StateStore[K], name string) *ListState[K, V] {
	return operator.NewListState[V](s, name)
}

// MapState holds a map per key.
type MapState[K comparable, MK comparable, MV any] = operator.MapState[K, MK, MV]

// NewMapState returns the map state called name.
func NewMapState[MK comparable, MV any, K comparable](s *StateStore[K], name string) *MapState[K, MK, MV] {
	return operator.NewMapState[MK, MV](s, name)
}

// ReducingState holds per key the reduction of every value added.
type ReducingState[K comparable, V any] = operator.ReducingState[K, V]

// NewReducingState returns the reducing state called name.
func NewReducingState[V any, K comparable](s *StateStore[K], name string, f func(acc, v V) V) *ReducingState[K, V] {
	return operator.NewReducingState(s, name, f)
}

// AggregateFunction aggregates records of type T into an accumulator A and
// derives a result O from it, Flink's AggregateFunction.
type AggregateFunction[T, A, O any] interface {
	CreateAccumulator() A
	Add(acc A, v T) A
	Result(acc A) O
	Merge(a, b A) A
}

// AggregatingState holds per key an accumulator of the values added.
type AggregatingState[K comparable, T, A, O any] = operator.AggregatingState[K, T, A, O]

// NewAggregatingState returns the aggregating state called name.
func NewAggregatingState[T, A, O any, K comparable](s *StateStore[K], name string, f AggregateFunction[T, A, O]) *AggregatingState[K, T, A, O] {
	return operator.NewAggregatingState[T, A, O](s, name, f)
}
