package queries

import (
	"context"
	"sort"
	"sync/atomic"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/nexmark"
)

// Runner declares a query on env over events and sends its results to
// sink, which sees them as values of the query's result type.
type Runner func(env *spate.Env, events spate.Stream[nexmark.Event], sink spate.Sink[any])

// Queries are the queries by name, "q0" to "q8".
var Queries = map[string]Runner{
	"q0": run(Q0),
	"q1": run(Q1),
	"q2": run(Q2),
	"q3": run(Q3),
	"q4": run(Q4),
	"q5": run(Q5),
	"q6": run(Q6),
	"q7": run(Q7),
	"q8": run(Q8),
}

// Names returns the names of Queries in order.
func Names() []string {
	names := make([]string, 0, len(Queries))
	for n := range Queries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func run[T any](q func(*spate.Env, spate.Stream[nexmark.Event]) spate.Stream[T]) Runner {
	return func(env *spate.Env, events spate.Stream[nexmark.Event], sink spate.Sink[any]) {
		var s spate.Sink[T] = anySink[T]{sink}
		if d, ok := sink.(*Discard); ok {
			s = discardSink[T]{d}
		}
		spate.SinkTo(q(env, events), s).Name("Sink")
	}
}

// Discard is a sink that counts the results it receives and drops them.
// The zero Discard is ready to use. A Runner hands it results without
// converting them to any, which would copy most result types to the heap
// (an allocation per result).
type Discard struct{ n atomic.Int64 }

// Count returns the number of results written by the writers closed so far.
func (d *Discard) Count() int64 { return d.n.Load() }

// Open returns a writer that counts and drops its records.
func (d *Discard) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[any], error) {
	return &discardWriter[any]{d: d}, nil
}

type discardSink[T any] struct{ d *Discard }

func (s discardSink[T]) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[T], error) {
	return &discardWriter[T]{d: s.d}, nil
}

type discardWriter[T any] struct {
	d *Discard
	n int64
}

func (w *discardWriter[T]) Write(T) error { w.n++; return nil }

// Close counts the records whatever the outcome: a benchmark's count.
func (w *discardWriter[T]) Close(error) error {
	w.d.n.Add(w.n)
	w.n = 0
	return nil
}

// anySink adapts a Sink[any] to a Sink[T].
type anySink[T any] struct{ s spate.Sink[any] }

func (a anySink[T]) Open(ctx context.Context, info spate.SinkInfo) (spate.SinkWriter[T], error) {
	w, err := a.s.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	return anyWriter[T]{w}, nil
}

type anyWriter[T any] struct{ w spate.SinkWriter[any] }

func (a anyWriter[T]) Write(v T) error       { return a.w.Write(v) }
func (a anyWriter[T]) Close(err error) error { return a.w.Close(err) }
