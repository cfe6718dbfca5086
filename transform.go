package spate

import (
	"context"

	"github.com/spate-dev/spate/internal/operator"
)

// Map applies f to every record.
func Map[T, U any](s Stream[T], f func(T) U) Stream[U] {
	n := s.env.addNode("map", "Map", operator.TypeOf[U](), func(in *operator.Instance) (*operator.Spec, error) {
		return operator.NewMap(in, f), nil
	})
	connect(s, n, 0, nil)
	return newStream[U](s.env, n)
}

// FlatMap calls f for every record; f emits zero or more records through
// emit.
func FlatMap[T, U any](s Stream[T], f func(v T, emit func(U))) Stream[U] {
	n := s.env.addNode("flatMap", "FlatMap", operator.TypeOf[U](), func(in *operator.Instance) (*operator.Spec, error) {
		return operator.NewFlatMap(in, f), nil
	})
	connect(s, n, 0, nil)
	return newStream[U](s.env, n)
}

// Filter keeps the records for which keep returns true.
func Filter[T any](s Stream[T], keep func(T) bool) Stream[T] {
	n := s.env.addNode("filter", "Filter", operator.TypeOf[T](), func(in *operator.Instance) (*operator.Spec, error) {
		return operator.NewFilter(in, keep), nil
	})
	connect(s, n, 0, nil)
	return newStream[T](s.env, n)
}

// SinkTo writes every record of s to sink and returns the sink operator's
// handle for naming and parallelism.
func SinkTo[T any](s Stream[T], sink Sink[T]) Stream[struct{}] {
	n := s.env.addNode("sink", "Sink", operator.TypeOf[struct{}](), func(in *operator.Instance) (*operator.Spec, error) {
		info := SinkInfo{Subtask: in.Subtask, Parallelism: in.Parallelism, JobName: in.JobName}
		_, union := sink.(UnionCommittables)
		return operator.NewSink(in, func(ctx context.Context) (operator.Writer[T], error) { return sink.Open(ctx, info) }, union), nil
	})
	connect(s, n, 0, nil)
	return newStream[struct{}](s.env, n)
}
