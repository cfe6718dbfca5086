package spate

import (
	"encoding/binary"
	"fmt"
	"reflect"

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
		c, err := batchCodec[T]()
		if err != nil {
			return nil, fmt.Errorf("records from %q to %q: %w", w.edge.from.name, w.consumer, err)
		}
		cfg.Codec = c
	} else if w.remote != nil {
		c, err := batchCodec[T]()
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
		if c, err = batchCodec[T](); err != nil {
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

// batchCodec encodes a batch as
//
//	count   uvarint, the number of records
//	mode    one byte: tsNone or tsDelta
//	records count times: under tsDelta, the record's timestamp as the
//	        zigzag varint of its difference (wrapping) to the previous
//	        record's (the first's to 0); then the value, in the value codec
//
// Under tsNone no record has a timestamp (all are exec.NoTimestamp, as
// every record of a job without event time): the common case costs no
// byte per record, where NoTimestamp alone would take ten. Deltas keep the
// close timestamps of event-time records short.
//
// The encoder picks tsNone only if the records then take at least count
// bytes, so that the decoder can always reject a count the bytes left
// cannot hold before it allocates (values of a codec that writes nothing
// go under tsDelta).
func batchCodec[T any]() (*exec.Codec[T], error) {
	c, err := codec.For[T]()
	if err != nil {
		return nil, err
	}
	if pc, ok := c.(codec.PtrCodec[T]); ok {
		return ptrBatchCodec(pc), nil
	}
	return ptrBatchCodec[T](byValue[T]{c}), nil
}

// The timestamp modes of an encoded batch.
const (
	tsNone  = 0
	tsDelta = 1
)

// byValue adapts a codec without pointer methods (a registered one, a
// primitive's) to codec.PtrCodec.
type byValue[T any] struct{ c codec.Codec[T] }

func (b byValue[T]) AppendPtr(dst []byte, v *T) []byte { return b.c.Append(dst, *v) }

func (b byValue[T]) DecodeInto(src []byte, v *T) ([]byte, error) {
	x, rest, err := b.c.Decode(src)
	if err != nil {
		return src, err
	}
	*v = x
	return rest, nil
}

// ptrBatchCodec is batchCodec for codecs that encode from and decode into
// the batch's own elements: no per-record allocation.
func ptrBatchCodec[T any](c codec.PtrCodec[T]) *exec.Codec[T] {
	return &exec.Codec[T]{
		Encode: func(dst []byte, batch []exec.Rec[T]) []byte {
			dst = binary.AppendUvarint(dst, uint64(len(batch)))
			start := len(dst)
			if noTimestamps(batch) {
				dst = append(dst, tsNone)
				for i := range batch {
					dst = c.AppendPtr(dst, &batch[i].V)
				}
				if len(dst)-start-1 >= len(batch) {
					return dst
				}
				dst = dst[:start]
			}
			dst = append(dst, tsDelta)
			var prev int64
			for i := range batch {
				dst = binary.AppendVarint(dst, batch[i].Ts-prev)
				prev = batch[i].Ts
				dst = c.AppendPtr(dst, &batch[i].V)
			}
			return dst
		},
		Decode: func(src []byte, into []exec.Rec[T]) ([]exec.Rec[T], error) {
			n, k := binary.Uvarint(src)
			if k <= 0 || len(src) == k {
				return into, fmt.Errorf("decode batch length: malformed")
			}
			mode := src[k]
			src = src[k+1:]
			if n > uint64(len(src)) {
				return into, fmt.Errorf("decode batch length: %d records in %d bytes", n, len(src))
			}
			switch mode {
			case tsNone:
				for i := uint64(0); i < n; i++ {
					into = append(into, exec.Rec[T]{Ts: exec.NoTimestamp})
					rest, err := c.DecodeInto(src, &into[len(into)-1].V)
					if err != nil {
						return into[:len(into)-1], fmt.Errorf("decode record %d: %w", i, err)
					}
					src = rest
				}
			case tsDelta:
				var ts int64
				for i := uint64(0); i < n; i++ {
					d, k := binary.Varint(src)
					if k <= 0 {
						return into, fmt.Errorf("decode timestamp of record %d: malformed", i)
					}
					ts += d
					into = append(into, exec.Rec[T]{Ts: ts})
					rest, err := c.DecodeInto(src[k:], &into[len(into)-1].V)
					if err != nil {
						return into[:len(into)-1], fmt.Errorf("decode record %d: %w", i, err)
					}
					src = rest
				}
			default:
				return into, fmt.Errorf("decode batch: unknown timestamp mode %d", mode)
			}
			if len(src) != 0 {
				return into, fmt.Errorf("decode batch: %d bytes left over", len(src))
			}
			return into, nil
		},
	}
}

// noTimestamps reports whether no record of batch has a timestamp.
func noTimestamps[T any](batch []exec.Rec[T]) bool {
	for i := range batch {
		if batch[i].Ts != exec.NoTimestamp {
			return false
		}
	}
	return true
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
