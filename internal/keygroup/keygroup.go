// Package keygroup maps keys to key groups and key groups to subtasks, as
// Flink does: a key's hash picks one of maxParallelism key groups, and each
// subtask owns a contiguous range of key groups. State is kept per key group
// so that it can be redistributed when the parallelism changes.
//
// Hashes must be identical in every process of a job, so they are computed
// from the key's value (its bytes for strings, its bits for numbers, its
// encoding otherwise), never from Go's randomly seeded map hash. Keys with
// floating-point parts are made canonical first (see Canonical), so that
// -0.0 and +0.0, equal keys, have one hash.
package keygroup

import (
	"encoding/binary"
	"math"
	"reflect"
	"unsafe"
)

// DefaultMaxParallelism is the number of key groups unless configured.
const DefaultMaxParallelism = 128

// Of returns the key group of a key hash for the given max parallelism.
func Of(hash uint32, maxParallelism int) int {
	return int(mix(hash) % uint32(maxParallelism))
}

// Subtask returns the subtask that owns key group kg.
func Subtask(kg, maxParallelism, parallelism int) int {
	return kg * parallelism / maxParallelism
}

// Range returns the key groups [start, end) owned by a subtask.
func Range(subtask, maxParallelism, parallelism int) (start, end int) {
	start = (subtask*maxParallelism + parallelism - 1) / parallelism
	end = ((subtask+1)*maxParallelism + parallelism - 1) / parallelism
	return start, end
}

// mix is murmur3's finalizer: it spreads the bits of a hash.
func mix(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// Hasher returns a hash function for keys of type K. Strings and numbers
// are hashed directly; other types through encode, which must produce the
// same bytes for equal keys in every process.
func Hasher[K comparable](encode func(dst []byte, k K) []byte) func(K) uint32 {
	var zero K
	switch any(zero).(type) {
	case string:
		return func(k K) uint32 { return String(*(*string)(unsafe.Pointer(&k))) }
	case int:
		return func(k K) uint32 { return Uint64(uint64(*(*int)(unsafe.Pointer(&k)))) }
	case int64:
		return func(k K) uint32 { return Uint64(uint64(*(*int64)(unsafe.Pointer(&k)))) }
	case int32:
		return func(k K) uint32 { return Uint64(uint64(*(*int32)(unsafe.Pointer(&k)))) }
	case uint64:
		return func(k K) uint32 { return Uint64(*(*uint64)(unsafe.Pointer(&k))) }
	case uint32:
		return func(k K) uint32 { return Uint64(uint64(*(*uint32)(unsafe.Pointer(&k)))) }
	case uint:
		return func(k K) uint32 { return Uint64(uint64(*(*uint)(unsafe.Pointer(&k)))) }
	case bool:
		return func(k K) uint32 {
			if *(*bool)(unsafe.Pointer(&k)) {
				return Uint64(1)
			}
			return Uint64(0)
		}
	case float64:
		return func(k K) uint32 {
			f := *(*float64)(unsafe.Pointer(&k))
			if f == 0 {
				f = 0 // -0.0 and +0.0 are one key
			}
			return Uint64(math.Float64bits(f))
		}
	}
	return func(k K) uint32 {
		var buf [64]byte
		return Bytes(encode(buf[:0], k))
	}
}

// String hashes a string (FNV-1a, 32 bits).
func String(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// Bytes hashes a byte slice like String.
func Bytes(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

// Uint64 hashes a 64-bit value.
func Uint64(v uint64) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return Bytes(b[:])
}

// Canonical returns a function that puts a key of type K in the canonical
// form hashing and comparison need, in place, and reports whether the key
// holds a NaN: every -0.0 in it (a float field, a complex part, an array
// element, at any depth of structs and arrays) becomes +0.0, the two being
// equal as keys. A NaN equals nothing, not even itself, so a key holding
// one can never be found again: callers refuse it. Canonical returns nil
// for types without floating-point parts, which need nothing.
func Canonical[K comparable]() func(k *K) (nan bool) {
	var f32, f64 []uintptr
	floatOffsets(reflect.TypeFor[K](), 0, &f32, &f64)
	if len(f32) == 0 && len(f64) == 0 {
		return nil
	}
	return func(k *K) bool {
		p := unsafe.Pointer(k)
		nan := false
		for _, off := range f64 {
			f := (*float64)(unsafe.Add(p, off))
			switch {
			case *f == 0:
				*f = 0
			case *f != *f:
				nan = true
			}
		}
		for _, off := range f32 {
			f := (*float32)(unsafe.Add(p, off))
			switch {
			case *f == 0:
				*f = 0
			case *f != *f:
				nan = true
			}
		}
		return nan
	}
}

// floatOffsets appends the offsets, from base, of the float32 and float64
// values that a value of type t is made of. Interfaces and pointers are
// left alone: their equality is not that of the floats they may hold.
func floatOffsets(t reflect.Type, base uintptr, f32, f64 *[]uintptr) {
	switch t.Kind() {
	case reflect.Float32:
		*f32 = append(*f32, base)
	case reflect.Float64:
		*f64 = append(*f64, base)
	case reflect.Complex64:
		*f32 = append(*f32, base, base+4)
	case reflect.Complex128:
		*f64 = append(*f64, base, base+8)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			floatOffsets(f.Type, base+f.Offset, f32, f64)
		}
	case reflect.Array:
		e := t.Elem()
		for i := 0; i < t.Len(); i++ {
			floatOffsets(e, base+uintptr(i)*e.Size(), f32, f64)
		}
	}
}
