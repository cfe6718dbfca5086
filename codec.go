package spate

import (
	"github.com/spate-dev/spate/internal/codec"
)

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
