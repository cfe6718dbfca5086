package operator

import (
	"context"

	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/snapshot"
)

// Spec is an operator instance for one subtask, as a node's build function
// returns it.
type Spec struct {
	// Inputs holds exec.Output[In] for each input gate.
	Inputs []any
	// Control receives watermarks and the end of input when the operator
	// heads a vertex with several gates; single-input operators leave it
	// nil.
	Control exec.Control
	Open    func() error
	Close   func() error
	// Source is the run loop of a source operator, which has no inputs.
	Source func(ctx context.Context) error
	// State, if set, is the operator's part in checkpoints.
	State snapshot.Operator
}

// Instance is what a node's build function gets to make an operator
// instance for one subtask.
type Instance struct {
	Task           *exec.Task
	Name           string
	Subtask        int
	Parallelism    int
	MaxParallelism int
	JobName        string
	// Outs holds the main output at 0 and side outputs after it, each an
	// exec.Output of the output's type.
	Outs []any
	// Sides maps side tags to outputs.
	Sides SideOutputs
	// AutoWatermarkInterval returns pipeline.auto-watermark-interval in
	// milliseconds (0: no periodic watermarks), or the error of a
	// malformed value.
	AutoWatermarkInterval func() (int64, error)
	// Checkpointing tells that the job takes checkpoints; Attempt is the
	// run's attempt (1, then one more per restart), which transactional
	// sinks name their transactions with.
	Checkpointing bool
	Attempt       int64
}

// SideOutputs resolves, at build time, the outputs of an operator's side
// tags.
type SideOutputs map[string]any

// Out returns the instance's main output.
func Out[T any](in *Instance) exec.Output[T] { return in.Outs[0].(exec.Output[T]) }
