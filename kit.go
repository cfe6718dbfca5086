package spate

import (
	"fmt"
	"reflect"

	"github.com/spate-dev/spate/internal/batchcodec"
	"github.com/spate-dev/spate/internal/codec"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/keygroup"
)

// kit makes the typed runtime pieces for one record type; the untyped plan
// code reaches typed code through it.
type kit interface {
	typ() reflect.Type
	discard() any
	combine(outs []any) any
	newWriter(w writerSpec) (any, error)
	deliverer(out any, encode bool) (func(any) (int, error), error)
	check() error
	withSides(out any, sides []exec.Control) any
}

type writerSpec struct {
	task    *exec.Task
	edge    *edge
	part    exec.Partitioning
	targets []chan exec.Msg
	channel int32
	maxPar  int
	batch   int
	encode  bool
	// remote marks the targets in other processes: only their batches are
	// encoded.
	remote   []bool
	consumer string
}

type kitOf[T any] struct{}

func (kitOf[T]) typ() reflect.Type { return reflect.TypeFor[T]() }
func (kitOf[T]) discard() any      { return exec.Output[T](exec.Discard[T]{}) }

func (kitOf[T]) combine(outs []any) any {
	typed := make([]exec.Output[T], len(outs))
	for i, o := range outs {
		typed[i] = o.(exec.Output[T])
	}
	return exec.Combine(typed)
}

func (k kitOf[T]) newWriter(w writerSpec) (any, error) {
	cfg := exec.EdgeWriterConfig[T]{
		Targets: w.targets, Channel: w.channel, Part: w.part, BatchSize: w.batch,
	}
	if w.part == exec.Hash {
		hash := w.edge.hash.(func(T) uint32)
		maxPar, n := w.maxPar, len(w.targets)
		cfg.Route = func(v T) int { return keygroup.Subtask(keygroup.Of(hash(v), maxPar), maxPar, n) }
	}
	if w.encode {
		c, err := batchcodec.For[T]()
		if err != nil {
			return nil, fmt.Errorf("records from %q to %q: %w", w.edge.from.name, w.consumer, err)
		}
		cfg.Codec = c
	} else if w.remote != nil {
		c, err := batchcodec.For[T]()
		if err != nil {
			return nil, fmt.Errorf("records from %q to %q: %w", w.edge.from.name, w.consumer, err)
		}
		cfg.Codec, cfg.Remote = c, w.remote
	}
	return exec.Output[T](exec.NewEdgeWriter(w.task, cfg)), nil
}

func (k kitOf[T]) deliverer(out any, encode bool) (func(any) (int, error), error) {
	var c *exec.Codec[T]
	if encode {
		var err error
		if c, err = batchcodec.For[T](); err != nil {
			return nil, err
		}
	}
	return exec.Deliverer(out.(exec.Output[T]), c), nil
}

func (kitOf[T]) withSides(out any, sides []exec.Control) any {
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

func (kitOf[T]) check() error {
	return codec.Check(reflect.TypeFor[T]())
}

// RegisterCodec makes c the codec of T wherever records of type T (also
// nested in other types) cross a process boundary, instead of the one
// derived from T's structure.
func RegisterCodec[T any](c Codec[T]) {
	codec.Register[T](c)
}

// Codec encodes and decodes values of one type for exchange between
// processes.
type Codec[T any] interface {
	// Append appends the encoding of v to dst.
	Append(dst []byte, v T) []byte
	// Decode decodes a value from the front of src and returns the rest.
	Decode(src []byte) (v T, rest []byte, err error)
}
