package spate_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/spate-dev/spate"
)

// stagingSink publishes a subtask's records into its table only when the
// job ends successfully; a failed job's records are discarded.
type stagingSink struct {
	mu    *sync.Mutex
	table *[]int
}

func (s stagingSink) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[int], error) {
	return &stagingWriter{sink: s}, nil
}

type stagingWriter struct {
	sink   stagingSink
	staged []int
}

func (w *stagingWriter) Write(v int) error {
	w.staged = append(w.staged, v)
	return nil
}

// Close publishes the staged records if the job succeeded (err is nil), and
// drops them otherwise.
func (w *stagingWriter) Close(err error) error {
	if err != nil {
		w.staged = nil
		return nil
	}
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	*w.sink.table = append(*w.sink.table, w.staged...)
	return nil
}

// A sink writer learns from Close how the job ended, and publishes only the
// output of a job that succeeded.
func ExampleSinkWriter() {
	var mu sync.Mutex
	var table []int
	sink := stagingSink{mu: &mu, table: &table}

	env := spate.NewEnv(spate.WithParallelism(2))
	spate.SinkTo(spate.FromSlice(env, []int{1, 2, 3, 4}), spate.Sink[int](sink))
	fmt.Println("first job:", env.Execute("succeeds"))
	slices.Sort(table)
	fmt.Println("published:", table)

	failing := spate.Map(spate.FromSlice(env, []int{5, 6, 7, 8}), func(v int) int {
		if v == 8 {
			panic("record 8 is poisoned")
		}
		return v
	})
	spate.SinkTo(failing, spate.Sink[int](sink))
	fmt.Println("second job failed:", env.Execute("fails") != nil)
	fmt.Println("published:", table)
	// Output:
	// first job: <nil>
	// published: [1 2 3 4]
	// second job failed: true
	// published: [1 2 3 4]
}
