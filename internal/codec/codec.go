package codec

import (
	"fmt"
	"reflect"
	"sync"
	"unsafe"
)

// Codec encodes and decodes values of one type.
type Codec[T any] interface {
	// Append appends the encoding of v to dst and returns the extended slice.
	Append(dst []byte, v T) []byte
	// Decode decodes one value from the front of src and returns it with the rest of src.
	Decode(src []byte) (v T, rest []byte, err error)
}

// For returns the codec for T: a registered override if there is one, else
// one derived from T's structure. Cached per type; safe for concurrent use.
//
// The error, if any, is the one Check reports for T. The codecs For derives
// are safe for concurrent use. Their Decode returns the zero value and src
// on error; their Append panics if a BinaryMarshaler fails or if the value
// nests pointers, slices and maps more than 10000 deep (a cycle).
func For[T any]() (Codec[T], error) {
	t := reflect.TypeFor[T]()
	if e, ok := forCache.Load(t); ok {
		return e.(*forEntry[T]).get()
	}
	mu.Lock()
	defer mu.Unlock()
	if e, ok := forCache.Load(t); ok {
		return e.(*forEntry[T]).get()
	}
	e := &forEntry[T]{}
	e.c, e.err = buildFor[T](t)
	forCache.Store(t, e)
	return e.get()
}

// Register installs c as the codec for T, overriding derivation (also for T
// nested inside other types, e.g. a struct field of type T).
//
// Register is meant to be called during initialisation, before codecs of
// types containing T are obtained with For: codecs returned earlier keep
// what they were built with. Where T is nested in other types, c must write
// at least one byte per value: decoding counts on it to reject slice and
// map lengths that the remaining input cannot hold. Register panics if c is
// nil.
func Register[T any](c Codec[T]) {
	if c == nil {
		panic("codec: Register of nil codec for " + reflect.TypeFor[T]().String())
	}
	t := reflect.TypeFor[T]()
	// min 1: see the doc comment; it bounds what corrupt input can allocate
	// for slices of T.
	r := &registered{codec: c, coder: &coder{typ: t, kind: kindRegistered, finalized: true, min: 1}}
	r.coder.enc = func(dst []byte, p unsafe.Pointer, _ int) []byte {
		return c.Append(dst, *(*T)(p))
	}
	r.coder.dec = func(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
		v, rest, err := c.Decode(src)
		if err != nil {
			return nil, fmt.Errorf("decode %s with registered codec: %w", t, err)
		}
		*(*T)(p) = v
		return rest, nil
	}
	mu.Lock()
	defer mu.Unlock()
	registry[t] = r
	// Derived codecs may have used the previous codec of t (or derivation):
	// start afresh.
	coders = map[reflect.Type]*coder{}
	forCache.Clear()
}

// Check reports whether values of type t can be encoded; the error names the
// type, the path to the offending part (e.g. `spate_test.Event.Payload.Ch
// (chan int)`), why, and the fix ("register a codec with spate.RegisterCodec
// or change the field type").
func Check(t reflect.Type) error {
	if t == nil {
		return fmt.Errorf("codec: cannot encode values of nil type")
	}
	mu.Lock()
	defer mu.Unlock()
	_, err := compile(t)
	return err
}

var (
	// mu serialises compilation and registration.
	mu sync.Mutex
	// registry holds the registered codecs, by type. Guarded by mu.
	registry = map[reflect.Type]*registered{}
	// coders holds the compiled coders, by type. Guarded by mu.
	coders = map[reflect.Type]*coder{}
	// forCache maps a reflect.Type to its *forEntry[T]. Written under mu.
	forCache sync.Map
)

// registered is a codec installed with Register.
type registered struct {
	codec any // Codec[T]
	coder *coder
}

// forEntry is the cached result of For[T].
type forEntry[T any] struct {
	c   Codec[T]
	err error
}

func (e *forEntry[T]) get() (Codec[T], error) { return e.c, e.err }

// buildFor picks the codec For[T] returns: the registered one, a
// specialised one for primitive types, or the general compiled one. mu is
// held.
func buildFor[T any](t reflect.Type) (Codec[T], error) {
	if r, ok := registry[t]; ok {
		return r.codec.(Codec[T]), nil
	}
	c, err := compile(t)
	if err != nil {
		return nil, err
	}
	switch c.kind {
	case kindTime:
		return timeCodec[T]{t}, nil
	case kindBytes:
		return bytesCodec[T]{t}, nil
	case kindPrim:
		switch t.Kind() {
		case reflect.Bool:
			return boolCodec[T]{t}, nil
		case reflect.Int:
			return intCodec[T, int]{t}, nil
		case reflect.Int8:
			return intCodec[T, int8]{t}, nil
		case reflect.Int16:
			return intCodec[T, int16]{t}, nil
		case reflect.Int32:
			return intCodec[T, int32]{t}, nil
		case reflect.Int64:
			return intCodec[T, int64]{t}, nil
		case reflect.Uint:
			return uintCodec[T, uint]{t}, nil
		case reflect.Uint8:
			return uintCodec[T, uint8]{t}, nil
		case reflect.Uint16:
			return uintCodec[T, uint16]{t}, nil
		case reflect.Uint32:
			return uintCodec[T, uint32]{t}, nil
		case reflect.Uint64:
			return uintCodec[T, uint64]{t}, nil
		case reflect.Float32:
			return float32Codec[T]{t}, nil
		case reflect.Float64:
			return float64Codec[T]{t}, nil
		case reflect.Complex64:
			return complex64Codec[T]{t}, nil
		case reflect.Complex128:
			return complex128Codec[T]{t}, nil
		case reflect.String:
			return stringCodec[T]{t}, nil
		}
	}
	if c.pinned {
		return &pinnedCodec[T]{c}, nil
	}
	return &compiledCodec[T]{c}, nil
}

// compiledCodec is the codec of a type without a specialised codec. The
// value being encoded or decoded is kept on the stack: its address is
// hidden from escape analysis, which is sound because the coders neither
// retain it nor hand it to code that could (see coder.pinned).
type compiledCodec[T any] struct{ c *coder }

// leak is never true. Append stores v in sink when it is, so that the
// compiler treats what v points to as escaping, as it would if the coders'
// use of v were visible to it.
var (
	leak bool
	sink any
)

func (c *compiledCodec[T]) Append(dst []byte, v T) []byte {
	if leak {
		sink = v
	}
	// v escapes to the heap: hiding it from escape analysis let a stack
	// move during decoding write to the old stack (a lost record under
	// -race), so safety wins over the saved allocation.
	return c.c.enc(dst, unsafe.Pointer(&v), 0)
}

// PtrCodec is a Codec that can also encode from and decode into a value
// the caller holds, such as an element of a batch on the heap, so that no
// value is copied to the heap per record. The derived codecs implement it.
type PtrCodec[T any] interface {
	// AppendPtr appends the encoding of *v to dst.
	AppendPtr(dst []byte, v *T) []byte
	// DecodeInto decodes one value from the front of src into *v, which
	// must be the zero value, and returns the rest of src.
	DecodeInto(src []byte, v *T) (rest []byte, err error)
}

var _ PtrCodec[int] = (*compiledCodec[int])(nil)

func (c *compiledCodec[T]) AppendPtr(dst []byte, v *T) []byte {
	if c.c.kind == kindStruct { // the common case, without c.c.enc's call
		return encodeSteps(dst, c.c.steps, unsafe.Pointer(v), 0)
	}
	return c.c.enc(dst, unsafe.Pointer(v), 0)
}

func (c *compiledCodec[T]) DecodeInto(src []byte, v *T) ([]byte, error) {
	var rest []byte
	var err error
	if c.c.kind == kindStruct { // the common case, without c.c.dec's call
		rest, err = decodeSteps(src, c.c.steps, unsafe.Pointer(v), 0)
	} else {
		rest, err = c.c.dec(src, unsafe.Pointer(v), 0)
	}
	if err != nil {
		var zero T
		*v = zero
		return src, rootError(c.c.typ, err)
	}
	return rest, nil
}

func (c *compiledCodec[T]) Decode(src []byte) (v T, rest []byte, err error) {
	rest, err = c.c.dec(src, unsafe.Pointer(&v), 0)
	if err != nil {
		var zero T
		return zero, src, rootError(c.c.typ, err)
	}
	return v, rest, nil
}

// pinnedCodec is the codec of a type whose inline part is handed to user
// methods (BinaryMarshaler): the value lives on the heap.
type pinnedCodec[T any] struct{ c *coder }

func (c *pinnedCodec[T]) Append(dst []byte, v T) []byte {
	return c.c.enc(dst, unsafe.Pointer(&v), 0)
}

func (c *pinnedCodec[T]) Decode(src []byte) (v T, rest []byte, err error) {
	rest, err = c.c.dec(src, unsafe.Pointer(&v), 0)
	if err != nil {
		var zero T
		return zero, src, rootError(c.c.typ, err)
	}
	return v, rest, nil
}
