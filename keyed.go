package spate

import (
	"cmp"
	"fmt"

	"github.com/spate-dev/spate/internal/codec"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/keygroup"
	"github.com/spate-dev/spate/internal/operator"
)

// KeyedStream is a stream partitioned by key: every record with the same key
// goes to the same subtask of the next operator, which keeps state and timers
// per key.
type KeyedStream[K comparable, T any] struct {
	s Stream[T]
	// key extracts a record's key in canonical form (see KeyBy); raw is
	// the user's key selector.
	key, raw func(T) K
	// hashKey hashes a canonical key.
	hashKey func(K) uint32
	// canonical is keygroup.Canonical for K: nil if K has no floats.
	canonical func(*K) bool
}

// KeyBy partitions s by the key that key extracts. Keys are hashed to key
// groups (pipeline.max-parallelism of them) and key groups to subtasks.
//
// Keys with floating-point parts (floats, complex numbers, and structs and
// arrays of them) are normalised: -0.0 and +0.0 are one key, in one key
// group and one state entry, and operators see +0.0. A key holding a NaN
// fails the job, naming the operator it was meant for: NaN equals nothing,
// not even itself, so its state could never be found again.
func KeyBy[T any, K comparable](s Stream[T], key func(T) K) KeyedStream[K, T] {
	var enc func([]byte, K) []byte
	if c, err := codec.For[K](); err == nil {
		enc = c.Append
	} else {
		enc = func([]byte, K) []byte {
			panic(fmt.Sprintf("spate: key type %T cannot be hashed: %v", *new(K), err))
		}
	}
	ks := KeyedStream[K, T]{s: s, key: key, raw: key, hashKey: keygroup.Hasher[K](enc), canonical: keygroup.Canonical[K]()}
	if canon := ks.canonical; canon != nil {
		ks.key = func(v T) K {
			k := key(v)
			canon(&k)
			return k
		}
	}
	return ks
}

// Stream returns the keyed stream's records as a plain stream.
func (k KeyedStream[K, T]) Stream() Stream[T] { return k.s }

// connectKeyed adds a keyed operator reading ks at gate.
func connectKeyed[K comparable, T any](ks KeyedStream[K, T], n *node, gate int) {
	connect(ks.s, n, gate, ks.router(n))
	n.keyTypes = append(n.keyTypes, operator.TypeOf[K]())
}

// router returns the hash that partitions ks's records for the keyed
// operator n. Every record of a keyed edge passes it before n sees the
// record, so it is where a NaN key is refused.
func (ks KeyedStream[K, T]) router(n *node) func(T) uint32 {
	key, hash, canon := ks.raw, ks.hashKey, ks.canonical
	if canon == nil {
		return func(v T) uint32 { return hash(key(v)) }
	}
	return func(v T) uint32 {
		k := key(v)
		if canon(&k) {
			exec.Raise(fmt.Errorf("key %+v for operator %q holds NaN, which equals no key, not even itself, so its state and timers could never be found again: map NaN to a value of your choice in the key selector, or filter such records out before KeyBy", k, n.name))
		}
		return hash(k)
	}
}

// Reduce keeps, per key, the result of combining every record so far with
// f, and emits it after each record (a rolling reduce).
func Reduce[K comparable, T any](ks KeyedStream[K, T], f func(acc, v T) T) Stream[T] {
	n := ks.s.env.addNode("reduce", "Reduce", operator.TypeOf[T](), func(in *operator.Instance) (*operator.Spec, error) {
		return operator.NewReduce(in, ks.key, f), nil
	})
	connectKeyed(ks, n, 0)
	return newStream[T](ks.s.env, n)
}

// Number is a type Sum, Min and Max aggregate.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// Sum is a rolling sum of the field that field points to, per key; the other
// fields are those of the key's first record.
func Sum[K comparable, T any, N Number](ks KeyedStream[K, T], field func(*T) *N) Stream[T] {
	return Reduce(ks, func(acc, v T) T {
		*field(&acc) += *field(&v)
		return acc
	}).Name("Sum")
}

// Min is a rolling minimum of a field per key; the other fields are those of
// the key's first record (use MinBy for the whole minimal record).
func Min[K comparable, T any, N Number](ks KeyedStream[K, T], field func(*T) *N) Stream[T] {
	return Reduce(ks, func(acc, v T) T {
		*field(&acc) = min(*field(&acc), *field(&v))
		return acc
	}).Name("Min")
}

// Max is a rolling maximum of a field per key; the other fields are those of
// the key's first record (use MaxBy for the whole maximal record).
func Max[K comparable, T any, N Number](ks KeyedStream[K, T], field func(*T) *N) Stream[T] {
	return Reduce(ks, func(acc, v T) T {
		*field(&acc) = max(*field(&acc), *field(&v))
		return acc
	}).Name("Max")
}

// MinBy emits, per key, the record with the smallest field so far (the
// earliest among equals).
func MinBy[K comparable, T any, N cmp.Ordered](ks KeyedStream[K, T], field func(T) N) Stream[T] {
	return Reduce(ks, func(acc, v T) T {
		if field(v) < field(acc) {
			return v
		}
		return acc
	}).Name("MinBy")
}

// MaxBy emits, per key, the record with the largest field so far (the
// earliest among equals).
func MaxBy[K comparable, T any, N cmp.Ordered](ks KeyedStream[K, T], field func(T) N) Stream[T] {
	return Reduce(ks, func(acc, v T) T {
		if field(v) > field(acc) {
			return v
		}
		return acc
	}).Name("MaxBy")
}
