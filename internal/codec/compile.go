package codec

import (
	"encoding"
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"runtime"
	"strconv"
	"time"
	"unsafe"
)

// maxDepth bounds the nesting of pointers, slices and maps that Decode
// follows (and Append, which panics beyond it), so that corrupt input or a
// cyclic value cannot exhaust the stack.
const maxDepth = 10000

// encFn appends the encoding of the value at p to dst. depth is the number
// of pointers, slices and maps followed to reach it.
type encFn func(dst []byte, p unsafe.Pointer, depth int) []byte

// decFn decodes a value from the front of src into the zeroed memory at p
// and returns the rest of src.
type decFn func(src []byte, p unsafe.Pointer, depth int) ([]byte, error)

type coderKind uint8

const (
	kindPrim       coderKind = iota // bool, numbers, string
	kindBytes                       // []byte and other slices of byte kind
	kindTime                        // time.Time
	kindStruct                      // derived struct
	kindArray                       // derived array
	kindSlice                       // derived slice
	kindMap                         // derived map
	kindPtr                         // derived pointer
	kindMarshaler                   // encoding.BinaryMarshaler / BinaryUnmarshaler
	kindRegistered                  // codec installed with Register
)

// coder is the compiled encoder and decoder of one type.
type coder struct {
	typ  reflect.Type
	kind coderKind
	enc  encFn
	dec  decFn

	fields []field // kindStruct
	steps  []step  // kindStruct, by finalize
	elem   *coder  // kindArray, kindSlice, kindPtr; map values
	key    *coder  // kindMap

	// Computed by finalize, once every coder of a compilation exists.
	finalized bool
	// min is the least number of bytes an encoded value occupies.
	min int
	// empty reports that values encode to no bytes at all (struct{},
	// [0]T and compositions of them); such types have size 0.
	empty bool
	// pinned reports that the inline part of a value (itself, struct
	// fields and array elements, not what pointers, slices and maps refer
	// to) is handed by address to user methods, so must not live on the
	// stack behind the compiler's back.
	pinned bool
}

type field struct {
	name string
	off  uintptr
	c    *coder
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	marshalerType   = reflect.TypeFor[encoding.BinaryMarshaler]()
	unmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
)

// compile returns the coder of t, compiling it and the types it contains if
// need be. mu is held.
func compile(t reflect.Type) (*coder, error) {
	if r, ok := registry[t]; ok {
		return r.coder, nil
	}
	if c, ok := coders[t]; ok {
		return c, nil
	}
	s := &session{root: t, coders: map[reflect.Type]*coder{}}
	c, err := s.compile(t, t.String())
	if err != nil {
		return nil, err
	}
	for _, c := range s.coders {
		c.finalize()
	}
	for t, c := range s.coders {
		coders[t] = c
	}
	return c, nil
}

// session is one compilation. Its coders are published only if all of them
// compile; until then they may be incomplete, which lets recursive types
// refer to themselves.
type session struct {
	root   reflect.Type
	coders map[reflect.Type]*coder
}

// compile returns the coder of t; path names t's place in the root type,
// for errors.
func (s *session) compile(t reflect.Type, path string) (*coder, error) {
	if r, ok := registry[t]; ok {
		return r.coder, nil
	}
	if c, ok := coders[t]; ok {
		return c, nil
	}
	if c, ok := s.coders[t]; ok {
		return c, nil
	}
	c := &coder{typ: t}
	s.coders[t] = c
	if err := s.build(c, path); err != nil {
		return nil, err
	}
	return c, nil
}

func (s *session) unsupported(t reflect.Type, path, why string) error {
	return &unsupportedError{root: s.root, path: path, typ: t, why: why}
}

// build fills in c for its type.
func (s *session) build(c *coder, path string) error {
	t := c.typ
	if t.Kind() == reflect.Struct && t.ConvertibleTo(timeType) {
		c.kind, c.enc, c.dec = kindTime, encTime, decTime
		return nil
	}
	if pt := reflect.PointerTo(t); t.Kind() != reflect.Interface && pt.Implements(marshalerType) && pt.Implements(unmarshalerType) && !promoted(t) {
		buildMarshaler(c)
		return nil
	}
	switch t.Kind() {
	case reflect.Bool:
		c.kind, c.enc, c.dec = kindPrim, encBool, decBool
	case reflect.Int:
		c.kind, c.enc, c.dec = kindPrim, encInt[int], decInt[int]
	case reflect.Int8:
		c.kind, c.enc, c.dec = kindPrim, encInt[int8], decInt[int8]
	case reflect.Int16:
		c.kind, c.enc, c.dec = kindPrim, encInt[int16], decInt[int16]
	case reflect.Int32:
		c.kind, c.enc, c.dec = kindPrim, encInt[int32], decInt[int32]
	case reflect.Int64:
		c.kind, c.enc, c.dec = kindPrim, encInt[int64], decInt[int64]
	case reflect.Uint:
		c.kind, c.enc, c.dec = kindPrim, encUint[uint], decUint[uint]
	case reflect.Uint8:
		c.kind, c.enc, c.dec = kindPrim, encUint[uint8], decUint[uint8]
	case reflect.Uint16:
		c.kind, c.enc, c.dec = kindPrim, encUint[uint16], decUint[uint16]
	case reflect.Uint32:
		c.kind, c.enc, c.dec = kindPrim, encUint[uint32], decUint[uint32]
	case reflect.Uint64:
		c.kind, c.enc, c.dec = kindPrim, encUint[uint64], decUint[uint64]
	case reflect.Float32:
		c.kind, c.enc, c.dec = kindPrim, encFloat32, decFloat32
	case reflect.Float64:
		c.kind, c.enc, c.dec = kindPrim, encFloat64, decFloat64
	case reflect.Complex64:
		c.kind, c.enc, c.dec = kindPrim, encComplex64, decComplex64
	case reflect.Complex128:
		c.kind, c.enc, c.dec = kindPrim, encComplex128, decComplex128
	case reflect.String:
		c.kind, c.enc, c.dec = kindPrim, encString, decString
	case reflect.Uintptr:
		return s.unsupported(t, path, "uintptr values are memory addresses and cannot be encoded")
	case reflect.UnsafePointer:
		return s.unsupported(t, path, "unsafe pointers cannot be encoded")
	case reflect.Chan:
		return s.unsupported(t, path, "channels cannot be encoded")
	case reflect.Func:
		return s.unsupported(t, path, "functions cannot be encoded")
	case reflect.Interface:
		return s.unsupported(t, path, "interface values have no fixed type to encode")
	case reflect.Struct:
		return s.buildStruct(c, path)
	case reflect.Array:
		return s.buildArray(c, path)
	case reflect.Slice:
		return s.buildSlice(c, path)
	case reflect.Map:
		return s.buildMap(c, path)
	case reflect.Pointer:
		return s.buildPtr(c, path)
	default:
		return s.unsupported(t, path, "values of kind "+t.Kind().String()+" cannot be encoded")
	}
	return nil
}

// promoted reports whether struct type t has its BinaryMarshaler and
// BinaryUnmarshaler methods only by promotion from embedded fields: using
// them would drop t's other fields, so t is derived field by field instead
// (and the embedded field uses its methods).
func promoted(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	embeds := false
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous && (f.Type.Implements(marshalerType) || reflect.PointerTo(f.Type).Implements(marshalerType)) {
			embeds = true
		}
	}
	return embeds && !declares(t, "MarshalBinary") && !declares(t, "UnmarshalBinary")
}

// declares reports whether t or *t declares the method name itself, rather
// than by promotion: the compiler generates the wrappers of promoted
// methods.
func declares(t reflect.Type, name string) bool {
	for _, tt := range []reflect.Type{t, reflect.PointerTo(t)} {
		m, ok := tt.MethodByName(name)
		if !ok {
			continue
		}
		f := runtime.FuncForPC(m.Func.Pointer())
		if f == nil {
			return true
		}
		if file, _ := f.FileLine(f.Entry()); file != "<autogenerated>" {
			return true
		}
	}
	return false
}

func (s *session) buildStruct(c *coder, path string) error {
	t := c.typ
	c.kind = kindStruct
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == "_" && f.Type.Size() == 0 {
			continue // padding or a marker such as [0]func()
		}
		fc, err := s.compile(f.Type, path+"."+f.Name)
		if err != nil {
			return err
		}
		c.fields = append(c.fields, field{name: f.Name, off: f.Offset, c: fc})
	}
	// enc and dec come with finalize, once the fields' coders are
	// complete (see buildProgram).
	return nil
}

func (s *session) buildArray(c *coder, path string) error {
	t := c.typ
	c.kind = kindArray
	n := t.Len()
	if n == 0 {
		// Nothing to encode; the element type does not matter.
		c.enc = func(dst []byte, _ unsafe.Pointer, _ int) []byte { return dst }
		c.dec = func(src []byte, _ unsafe.Pointer, _ int) ([]byte, error) { return src, nil }
		return nil
	}
	ec, err := s.compile(t.Elem(), path+"[]")
	if err != nil {
		return err
	}
	c.elem = ec
	if ec.kind == kindPrim && t.Elem().Kind() == reflect.Uint8 {
		c.enc = func(dst []byte, p unsafe.Pointer, _ int) []byte {
			return append(dst, unsafe.Slice((*byte)(p), n)...)
		}
		c.dec = func(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
			if len(src) < n {
				return nil, fmt.Errorf("decode %s: %d bytes wanted, %d left: %w", t, n, len(src), errEOF)
			}
			copy(unsafe.Slice((*byte)(p), n), src)
			return src[n:], nil
		}
		return nil
	}
	size := t.Elem().Size()
	c.enc = func(dst []byte, p unsafe.Pointer, depth int) []byte {
		if ec.empty {
			return dst
		}
		for i := range n {
			dst = ec.enc(dst, unsafe.Add(p, uintptr(i)*size), depth)
		}
		return dst
	}
	c.dec = func(src []byte, p unsafe.Pointer, depth int) ([]byte, error) {
		if ec.empty {
			return src, nil
		}
		var err error
		for i := range n {
			if src, err = ec.dec(src, unsafe.Add(p, uintptr(i)*size), depth); err != nil {
				return nil, withPath(err, "["+strconv.Itoa(i)+"]")
			}
		}
		return src, nil
	}
	return nil
}

// sliceHeader is the memory layout of a slice.
type sliceHeader struct {
	data unsafe.Pointer
	len  int
	cap  int
}

// zeroArray gives empty, non-nil slices somewhere to point.
var zeroArray [0]uint64

func (s *session) buildSlice(c *coder, path string) error {
	t := c.typ
	et := t.Elem()
	ec, err := s.compile(et, path+"[]")
	if err != nil {
		return err
	}
	if ec.kind == kindPrim && et.Kind() == reflect.Uint8 {
		c.kind, c.enc, c.dec = kindBytes, encBytes, decBytes
		return nil
	}
	c.kind = kindSlice
	c.elem = ec
	size := et.Size()
	alloc := sliceAllocator(t)
	c.enc = func(dst []byte, p unsafe.Pointer, depth int) []byte {
		h := (*sliceHeader)(p)
		if h.data == nil {
			return append(dst, 0)
		}
		dst = appendUvarint(dst, uint64(h.len)+1)
		depth++
		if depth > maxDepth {
			panic(fmt.Sprintf("codec: encode %s: value nested more than %d levels deep (cyclic?)", t, maxDepth))
		}
		if ec.empty {
			return dst
		}
		for i := range h.len {
			dst = ec.enc(dst, unsafe.Add(h.data, uintptr(i)*size), depth)
		}
		return dst
	}
	c.dec = func(src []byte, p unsafe.Pointer, depth int) ([]byte, error) {
		n, src, err := readLen(src, t)
		if err != nil || n < 0 {
			return src, err // nil slice, or error
		}
		depth++
		if depth > maxDepth {
			return nil, errTooDeep(t)
		}
		if err := checkCount(n, ec, nil, len(src), t); err != nil {
			return nil, err
		}
		h := (*sliceHeader)(p)
		if n == 0 {
			h.data = unsafe.Pointer(&zeroArray)
			return src, nil
		}
		data := alloc(n)
		if ec.empty {
			// Size zero: nothing to decode, and no memory however long.
			h.data, h.len, h.cap = data, n, n
			return src, nil
		}
		for i := range n {
			if src, err = ec.dec(src, unsafe.Add(data, uintptr(i)*size), depth); err != nil {
				return nil, withPath(err, "["+strconv.Itoa(i)+"]")
			}
		}
		h.data, h.len, h.cap = data, n, n
		return src, nil
	}
	return nil
}

// mapValue returns the map m of type t as a reflect.Value. It copies the
// map pointer to the heap, so that reflect never holds the address of the
// encoded value, which may be on the stack (see compiledCodec).
func mapValue(t reflect.Type, m unsafe.Pointer) reflect.Value {
	return reflect.NewAt(t, unsafe.Pointer(&m)).Elem()
}

// sliceAllocator returns a function allocating the backing array of an
// n-element slice of type t. Arrays of strings and of pointer-free elements
// are allocated without reflect.
func sliceAllocator(t reflect.Type) func(n int) unsafe.Pointer {
	et := t.Elem()
	size := et.Size()
	viaReflect := func(n int) unsafe.Pointer { return reflect.MakeSlice(t, n, n).UnsafePointer() }
	switch {
	case et.Kind() == reflect.String:
		return func(n int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]string, n))) }
	case size == 0 || hasPointers(et) || et.Align() > 8:
		return viaReflect
	}
	// Memory without pointers, in words so that it is aligned.
	return func(n int) unsafe.Pointer {
		hi, bytes := bits.Mul64(uint64(n), uint64(size))
		if hi != 0 || bytes > math.MaxInt-7 {
			return viaReflect(n) // panics: too large
		}
		return unsafe.Pointer(unsafe.SliceData(make([]uint64, (bytes+7)/8)))
	}
}

// hasPointers reports whether values of type t contain pointers.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	}
	return true
}

func (s *session) buildMap(c *coder, path string) error {
	t := c.typ
	kc, err := s.compile(t.Key(), path+"[key]")
	if err != nil {
		return err
	}
	vc, err := s.compile(t.Elem(), path+"[value]")
	if err != nil {
		return err
	}
	c.kind, c.key, c.elem = kindMap, kc, vc
	c.enc = func(dst []byte, p unsafe.Pointer, depth int) []byte {
		m := *(*unsafe.Pointer)(p)
		if m == nil {
			return append(dst, 0)
		}
		depth++
		if depth > maxDepth {
			panic(fmt.Sprintf("codec: encode %s: value nested more than %d levels deep (cyclic?)", t, maxDepth))
		}
		mv := mapValue(t, m)
		n := mv.Len()
		dst = appendUvarint(dst, uint64(n)+1)
		if n == 0 {
			return dst
		}
		k := reflect.New(t.Key()).Elem()
		v := reflect.New(t.Elem()).Elem()
		kp, vp := k.Addr().UnsafePointer(), v.Addr().UnsafePointer()
		for it := mv.MapRange(); it.Next(); {
			k.SetIterKey(it)
			v.SetIterValue(it)
			dst = kc.enc(dst, kp, depth)
			dst = vc.enc(dst, vp, depth)
		}
		return dst
	}
	c.dec = func(src []byte, p unsafe.Pointer, depth int) ([]byte, error) {
		n, src, err := readLen(src, t)
		if err != nil || n < 0 {
			return src, err // nil map, or error
		}
		depth++
		if depth > maxDepth {
			return nil, errTooDeep(t)
		}
		if err := checkCount(n, kc, vc, len(src), t); err != nil {
			return nil, err
		}
		mv := reflect.MakeMapWithSize(t, n)
		if n > 0 {
			k := reflect.New(t.Key()).Elem()
			v := reflect.New(t.Elem()).Elem()
			kp, vp := k.Addr().UnsafePointer(), v.Addr().UnsafePointer()
			for i := range n {
				if i > 0 {
					k.SetZero()
					v.SetZero()
				}
				if src, err = kc.dec(src, kp, depth); err != nil {
					return nil, withPath(err, "[key "+strconv.Itoa(i)+"]")
				}
				if src, err = vc.dec(src, vp, depth); err != nil {
					return nil, withPath(err, "[value "+strconv.Itoa(i)+"]")
				}
				mv.SetMapIndex(k, v)
			}
		}
		*(*unsafe.Pointer)(p) = mv.UnsafePointer()
		return src, nil
	}
	return nil
}

func (s *session) buildPtr(c *coder, path string) error {
	t := c.typ
	et := t.Elem()
	ec, err := s.compile(et, path)
	if err != nil {
		return err
	}
	c.kind, c.elem = kindPtr, ec
	c.enc = func(dst []byte, p unsafe.Pointer, depth int) []byte {
		q := *(*unsafe.Pointer)(p)
		if q == nil {
			return append(dst, 0)
		}
		depth++
		if depth > maxDepth {
			panic(fmt.Sprintf("codec: encode %s: value nested more than %d levels deep (cyclic?)", t, maxDepth))
		}
		return ec.enc(append(dst, 1), q, depth)
	}
	c.dec = func(src []byte, p unsafe.Pointer, depth int) ([]byte, error) {
		if len(src) == 0 {
			return nil, fmt.Errorf("decode %s nil flag: %w", t, errEOF)
		}
		switch src[0] {
		case 0:
			return src[1:], nil
		case 1:
		default:
			return nil, fmt.Errorf("decode %s nil flag: invalid byte %#x", t, src[0])
		}
		depth++
		if depth > maxDepth {
			return nil, errTooDeep(t)
		}
		q := reflect.New(et).UnsafePointer()
		rest, err := ec.dec(src[1:], q, depth)
		if err != nil {
			return nil, err
		}
		*(*unsafe.Pointer)(p) = q
		return rest, nil
	}
	return nil
}

// buildMarshaler makes c use the type's MarshalBinary and UnmarshalBinary
// methods, with a length prefix.
func buildMarshaler(c *coder) {
	t := c.typ
	c.kind = kindMarshaler
	c.enc = func(dst []byte, p unsafe.Pointer, _ int) []byte {
		b, err := reflect.NewAt(t, p).Interface().(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			panic(fmt.Errorf("codec: encode %s: MarshalBinary: %w", t, err))
		}
		dst = appendUvarint(dst, uint64(len(b)))
		return append(dst, b...)
	}
	c.dec = func(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
		b, rest, err := readBytes(src, t)
		if err != nil {
			return nil, err
		}
		if err := reflect.NewAt(t, p).Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("decode %s: UnmarshalBinary: %w", t, err)
		}
		return rest, nil
	}
}

// finalize computes min, empty and pinned, and a struct's program (its enc
// and dec), which depend on the coders of the inline parts (struct fields,
// array elements): these cannot form cycles, so the recursion ends.
func (c *coder) finalize() {
	if c.finalized {
		return
	}
	c.finalized = true
	switch c.kind {
	case kindPrim:
		switch c.typ.Kind() {
		case reflect.Float32:
			c.min = 4
		case reflect.Float64, reflect.Complex64:
			c.min = 8
		case reflect.Complex128:
			c.min = 16
		default:
			c.min = 1
		}
	case kindBytes, kindTime, kindSlice, kindMap, kindPtr:
		c.min = 1
	case kindMarshaler:
		c.min, c.pinned = 1, true
	case kindRegistered:
		// min is set by Register.
	case kindStruct:
		c.empty = true
		for i := range c.fields {
			f := &c.fields[i]
			f.c.finalize()
			c.min = addSat(c.min, f.c.min)
			c.empty = c.empty && f.c.empty
			c.pinned = c.pinned || f.c.pinned
		}
		c.buildProgram()
	case kindArray:
		n := c.typ.Len()
		if c.elem == nil { // [0]T
			c.empty = true
			return
		}
		c.elem.finalize()
		c.min = mulSat(c.elem.min, n)
		c.empty = c.elem.empty
		c.pinned = c.elem.pinned
	}
}

func addSat(a, b int) int {
	if s := a + b; s >= a {
		return s
	}
	return int(^uint(0) >> 1)
}

func mulSat(a, n int) int {
	if a == 0 || n <= int(^uint(0)>>1)/a {
		return a * n
	}
	return int(^uint(0) >> 1)
}

// checkCount checks that n elements (or map entries, with val non-nil) can
// be in the left bytes of input, so that corrupt lengths cannot make
// Decode allocate more memory than its input justifies.
func checkCount(n int, elem, val *coder, left int, t reflect.Type) error {
	per := elem.min
	empty := elem.empty && elem.typ.Size() == 0
	if val != nil {
		per = addSat(per, val.min)
		empty = empty && val.empty && val.typ.Size() == 0
	}
	if empty {
		// Values of size zero take neither bytes nor memory; a map of
		// them holds at most one entry.
		if val != nil && n > 1 {
			return fmt.Errorf("decode %s length: %d entries of zero size, at most 1 possible", t, n)
		}
		return nil
	}
	per = max(per, 1)
	if n > left/per {
		return fmt.Errorf("decode %s length: %d elements of at least %d bytes wanted, %d bytes left: %w", t, n, per, left, errEOF)
	}
	return nil
}
