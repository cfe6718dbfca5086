package queries

import (
	"context"
	"sort"

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
		spate.SinkTo(q(env, events), spate.Sink[T](anySink[T]{sink})).Name("Sink")
	}
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

func (a anyWriter[T]) Write(v T) error { return a.w.Write(v) }
func (a anyWriter[T]) Close() error    { return a.w.Close() }
