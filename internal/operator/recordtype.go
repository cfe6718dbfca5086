package operator

import (
	"fmt"
	"reflect"

	"github.com/spate-dev/spate/internal/batchcodec"
	"github.com/spate-dev/spate/internal/codec"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/keygroup"
)

// RecordType makes the typed runtime pieces for one record type; the
// untyped plan builder reaches typed code through it.
type RecordType interface {
	// Type is the record type.
	Type() reflect.Type
	// Discard is an exec.Output that drops every record.
	Discard() any
	// Combine makes one exec.Output of several (each an exec.Output of
	// the type).
	Combine(outs []any) any
	// NewWriter makes the exec.Output that sends records over an edge to
	// other subtasks.
	NewWriter(w WriterSpec) (any, error)
	// Deliverer makes the function that delivers a batch arriving at an
	// input gate to out, an exec.Output of the type; decode says the
	// batch arrives encoded.
	Deliverer(out any, decode bool) (func(any) (int, error), error)
	// Check tells whether records of the type can cross a process
	// boundary: they need a codec.
	Check() error
	// WithSides makes out, the main output, pass its watermarks and end
	// of input to the side outputs too.
	WithSides(out any, sides []exec.Control) any
	// Counted makes out, an operator's main output, count its records
	// and watermarks into m (exec.Counting).
	Counted(out any, m *exec.OperatorMetrics) any
}

// TypeOf returns the RecordType of T.
func TypeOf[T any]() RecordType { return typeOf[T]{} }

// WriterSpec describes the sending end of an edge in one subtask.
type WriterSpec struct {
	Task *exec.Task
	// Producer and Consumer name the operators at the edge's ends.
	Producer, Consumer string
	Part               exec.Partitioning
	// Hash is func(T) uint32 for exec.Hash, T being the record type.
	Hash           any
	Targets        []chan exec.Msg
	Channel        int32
	MaxParallelism int
	BatchSize      int
	// Encode sends every batch through the record type's codec.
	Encode bool
	// Remote marks the targets in other processes: only their batches
	// are encoded.
	Remote []bool
}

type typeOf[T any] struct{}

func (typeOf[T]) Type() reflect.Type { return reflect.TypeFor[T]() }
func (typeOf[T]) Discard() any       { return exec.Output[T](exec.Discard[T]{}) }

func (typeOf[T]) Counted(out any, m *exec.OperatorMetrics) any {
	return exec.Output[T](&exec.Counting[T]{Next: out.(exec.Output[T]), M: m})
}

func (typeOf[T]) Combine(outs []any) any {
	typed := make([]exec.Output[T], len(outs))
	for i, o := range outs {
		typed[i] = o.(exec.Output[T])
	}
	return exec.Combine(typed)
}

func (typeOf[T]) NewWriter(w WriterSpec) (any, error) {
	cfg := exec.EdgeWriterConfig[T]{
		Targets: w.Targets, Channel: w.Channel, Part: w.Part, BatchSize: w.BatchSize,
	}
	if w.Part == exec.Hash {
		hash := w.Hash.(func(T) uint32)
		maxPar, n := w.MaxParallelism, len(w.Targets)
		cfg.Route = func(v T) int { return keygroup.Subtask(keygroup.Of(hash(v), maxPar), maxPar, n) }
	}
	if w.Encode {
		c, err := batchcodec.For[T]()
		if err != nil {
			return nil, fmt.Errorf("records from %q to %q: %w", w.Producer, w.Consumer, err)
		}
		cfg.Codec = c
	} else if w.Remote != nil {
		c, err := batchcodec.For[T]()
		if err != nil {
			return nil, fmt.Errorf("records from %q to %q: %w", w.Producer, w.Consumer, err)
		}
		cfg.Codec, cfg.Remote = c, w.Remote
	}
	return exec.Output[T](exec.NewEdgeWriter(w.Task, cfg)), nil
}

func (typeOf[T]) Deliverer(out any, decode bool) (func(any) (int, error), error) {
	var c *exec.Codec[T]
	if decode {
		var err error
		if c, err = batchcodec.For[T](); err != nil {
			return nil, err
		}
	}
	return exec.Deliverer(out.(exec.Output[T]), c), nil
}

func (typeOf[T]) WithSides(out any, sides []exec.Control) any {
	return exec.Output[T](&withSides[T]{Output: out.(exec.Output[T]), sides: sides})
}

// withSides is a main output that passes its watermarks and end of input to
// the operator's side outputs too.
type withSides[T any] struct {
	exec.Output[T]
	sides []exec.Control
}

func (w *withSides[T]) Watermark(wm int64) {
	w.Output.Watermark(wm)
	for _, s := range w.sides {
		s.Watermark(wm)
	}
}

func (w *withSides[T]) Finish() {
	w.Output.Finish()
	for _, s := range w.sides {
		s.Finish()
	}
}

func (typeOf[T]) Check() error {
	return codec.Check(reflect.TypeFor[T]())
}
