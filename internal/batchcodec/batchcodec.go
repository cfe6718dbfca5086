// Package batchcodec is the wire format of a batch of records between
// processes (and between subtasks when exchanges are encoded): a count, a
// timestamp mode, then each record's timestamp delta and value in the
// value's codec (internal/codec). The data plane (internal/network) carries
// the bytes; exec.EdgeWriter and exec.Deliverer call the codec For returns.
package batchcodec

import (
	"encoding/binary"
	"fmt"

	"github.com/spate-dev/spate/internal/codec"
	"github.com/spate-dev/spate/internal/exec"
)

// For returns the codec of batches of T's records, which encodes a batch as
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
func For[T any]() (*exec.Codec[T], error) {
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

// ptrBatchCodec is For for codecs that encode from and decode into
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
