package codec

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"reflect"
	"unsafe"
)

// errEOF is wrapped by the errors about truncated input.
var errEOF = io.ErrUnexpectedEOF

type signed interface {
	int | int8 | int16 | int32 | int64
}
type unsigned interface {
	uint | uint8 | uint16 | uint32 | uint64
}

func appendUvarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func appendVarint(dst []byte, v int64) []byte {
	return appendUvarint(dst, zigzag(v))
}

// zigzag maps signed integers to unsigned ones, small magnitudes to small
// values, for signed varints; unzigzag undoes it.
func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// uvarint decodes a varint from the front of src and returns it with the
// number of bytes it took: 0 if src is too short, negative on overflow.
func uvarint(src []byte) (uint64, int) {
	if len(src) > 0 && src[0] < 0x80 {
		return uint64(src[0]), 1
	}
	return binary.Uvarint(src)
}

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func varint(src []byte) (int64, int) {
	u, n := uvarint(src)
	return int64(u>>1) ^ -int64(u&1), n // unzigzag, within the inlining budget
}

// varintError is the error for uvarint's n <= 0.
func varintError(n int, what string) error {
	if n == 0 {
		return fmt.Errorf("decode %s: %w", what, errEOF)
	}
	return fmt.Errorf("decode %s: varint overflows 64 bits", what)
}

// readLen reads the length prefix of a slice or map: -1 stands for nil.
func readLen(src []byte, t reflect.Type) (int, []byte, error) {
	v, k := uvarint(src)
	if k <= 0 {
		return 0, nil, varintError(k, t.String()+" length")
	}
	if v == 0 {
		return -1, src[k:], nil
	}
	if v-1 > math.MaxInt {
		return 0, nil, fmt.Errorf("decode %s length: %d elements is too many", t, v-1)
	}
	return int(v - 1), src[k:], nil
}

// readBytes reads a length-prefixed byte string, as written for
// BinaryMarshaler types, without copying it.
func readBytes(src []byte, t reflect.Type) ([]byte, []byte, error) {
	n, k := uvarint(src)
	if k <= 0 {
		return nil, nil, varintError(k, t.String()+" length")
	}
	src = src[k:]
	if n > uint64(len(src)) {
		return nil, nil, fmt.Errorf("decode %s length: %d bytes wanted, %d left: %w", t, n, len(src), errEOF)
	}
	return src[:n:n], src[n:], nil
}

func encBool(dst []byte, p unsafe.Pointer, _ int) []byte {
	if *(*bool)(p) {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func decBool(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
	if len(src) == 0 {
		return nil, fmt.Errorf("decode bool: %w", errEOF)
	}
	switch src[0] {
	case 0:
	case 1:
		*(*bool)(p) = true
	default:
		return nil, fmt.Errorf("decode bool: invalid byte %#x", src[0])
	}
	return src[1:], nil
}

func encInt[T signed](dst []byte, p unsafe.Pointer, _ int) []byte {
	return appendVarint(dst, int64(*(*T)(p)))
}

func decInt[T signed](src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
	x, n := varint(src)
	if n <= 0 {
		return nil, varintError(n, reflect.TypeFor[T]().String())
	}
	if int64(T(x)) != x {
		return nil, fmt.Errorf("decode %s: value %d out of range", reflect.TypeFor[T](), x)
	}
	*(*T)(p) = T(x)
	return src[n:], nil
}

func encUint[T unsigned](dst []byte, p unsafe.Pointer, _ int) []byte {
	return appendUvarint(dst, uint64(*(*T)(p)))
}

func decUint[T unsigned](src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
	x, n := uvarint(src)
	if n <= 0 {
		return nil, varintError(n, reflect.TypeFor[T]().String())
	}
	if uint64(T(x)) != x {
		return nil, fmt.Errorf("decode %s: value %d out of range", reflect.TypeFor[T](), x)
	}
	*(*T)(p) = T(x)
	return src[n:], nil
}

func encFloat32(dst []byte, p unsafe.Pointer, _ int) []byte {
	return binary.LittleEndian.AppendUint32(dst, *(*uint32)(p))
}

func decFloat32(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
	if len(src) < 4 {
		return nil, fmt.Errorf("decode float32: 4 bytes wanted, %d left: %w", len(src), errEOF)
	}
	*(*uint32)(p) = binary.LittleEndian.Uint32(src)
	return src[4:], nil
}

func encFloat64(dst []byte, p unsafe.Pointer, _ int) []byte {
	return binary.LittleEndian.AppendUint64(dst, *(*uint64)(p))
}

func decFloat64(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
	if len(src) < 8 {
		return nil, fmt.Errorf("decode float64: 8 bytes wanted, %d left: %w", len(src), errEOF)
	}
	*(*uint64)(p) = binary.LittleEndian.Uint64(src)
	return src[8:], nil
}

func encComplex64(dst []byte, p unsafe.Pointer, _ int) []byte {
	return binary.LittleEndian.AppendUint64(dst, *(*uint64)(p))
}

func decComplex64(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
	if len(src) < 8 {
		return nil, fmt.Errorf("decode complex64: 8 bytes wanted, %d left: %w", len(src), errEOF)
	}
	*(*uint64)(p) = binary.LittleEndian.Uint64(src)
	return src[8:], nil
}

func encComplex128(dst []byte, p unsafe.Pointer, _ int) []byte {
	w := (*[2]uint64)(p)
	return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(dst, w[0]), w[1])
}

func decComplex128(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
	if len(src) < 16 {
		return nil, fmt.Errorf("decode complex128: 16 bytes wanted, %d left: %w", len(src), errEOF)
	}
	w := (*[2]uint64)(p)
	w[0] = binary.LittleEndian.Uint64(src)
	w[1] = binary.LittleEndian.Uint64(src[8:])
	return src[16:], nil
}

func encString(dst []byte, p unsafe.Pointer, _ int) []byte {
	s := *(*string)(p)
	return append(appendUvarint(dst, uint64(len(s))), s...)
}

func decString(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
	n, k := uvarint(src)
	if k <= 0 {
		return nil, varintError(k, "string length")
	}
	src = src[k:]
	if n > uint64(len(src)) {
		return nil, fmt.Errorf("decode string length: %d bytes wanted, %d left: %w", n, len(src), errEOF)
	}
	*(*string)(p) = string(src[:n])
	return src[n:], nil
}

func encBytes(dst []byte, p unsafe.Pointer, _ int) []byte {
	b := *(*[]byte)(p)
	if b == nil {
		return append(dst, 0)
	}
	return append(appendUvarint(dst, uint64(len(b))+1), b...)
}

func decBytes(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
	v, k := uvarint(src)
	if k <= 0 {
		return nil, varintError(k, "bytes length")
	}
	src = src[k:]
	if v == 0 {
		return src, nil // nil
	}
	if n := v - 1; n > uint64(len(src)) {
		return nil, fmt.Errorf("decode bytes length: %d bytes wanted, %d left: %w", n, len(src), errEOF)
	}
	b := make([]byte, v-1)
	copy(b, src)
	*(*[]byte)(p) = b
	return src[len(b):], nil
}

// The codecs For returns for primitive types, time.Time and []byte: no
// function values, no reflection. T has the layout of the type they are
// named after; typ is T, for errors.

type boolCodec[T any] struct{ typ reflect.Type }

func (boolCodec[T]) Append(dst []byte, v T) []byte {
	return encBool(dst, unsafe.Pointer(&v), 0)
}

func (c boolCodec[T]) Decode(src []byte) (v T, rest []byte, err error) {
	if len(src) > 0 && src[0] <= 1 {
		*(*bool)(unsafe.Pointer(&v)) = src[0] == 1
		return v, src[1:], nil
	}
	_, err = decBool(src, unsafe.Pointer(new(bool)), 0)
	return v, src, rootError(c.typ, err)
}

type intCodec[T any, I signed] struct{ typ reflect.Type }

func (intCodec[T, I]) Append(dst []byte, v T) []byte {
	return appendVarint(dst, int64(*(*I)(unsafe.Pointer(&v))))
}

func (c intCodec[T, I]) Decode(src []byte) (v T, rest []byte, err error) {
	x, n := varint(src)
	if n <= 0 {
		return v, src, rootError(c.typ, varintError(n, c.typ.Kind().String()))
	}
	if int64(I(x)) != x {
		return v, src, rootError(c.typ, fmt.Errorf("decode %s: value %d out of range", c.typ.Kind(), x))
	}
	*(*I)(unsafe.Pointer(&v)) = I(x)
	return v, src[n:], nil
}

type uintCodec[T any, U unsigned] struct{ typ reflect.Type }

func (uintCodec[T, U]) Append(dst []byte, v T) []byte {
	return appendUvarint(dst, uint64(*(*U)(unsafe.Pointer(&v))))
}

func (c uintCodec[T, U]) Decode(src []byte) (v T, rest []byte, err error) {
	x, n := uvarint(src)
	if n <= 0 {
		return v, src, rootError(c.typ, varintError(n, c.typ.Kind().String()))
	}
	if uint64(U(x)) != x {
		return v, src, rootError(c.typ, fmt.Errorf("decode %s: value %d out of range", c.typ.Kind(), x))
	}
	*(*U)(unsafe.Pointer(&v)) = U(x)
	return v, src[n:], nil
}

type float32Codec[T any] struct{ typ reflect.Type }

func (float32Codec[T]) Append(dst []byte, v T) []byte {
	return binary.LittleEndian.AppendUint32(dst, *(*uint32)(unsafe.Pointer(&v)))
}

func (c float32Codec[T]) Decode(src []byte) (v T, rest []byte, err error) {
	if rest, err = decFloat32(src, unsafe.Pointer(&v), 0); err != nil {
		return v, src, rootError(c.typ, err)
	}
	return v, rest, nil
}

type float64Codec[T any] struct{ typ reflect.Type }

func (float64Codec[T]) Append(dst []byte, v T) []byte {
	return binary.LittleEndian.AppendUint64(dst, *(*uint64)(unsafe.Pointer(&v)))
}

func (c float64Codec[T]) Decode(src []byte) (v T, rest []byte, err error) {
	if len(src) < 8 {
		_, err = decFloat64(src, nil, 0)
		return v, src, rootError(c.typ, err)
	}
	*(*uint64)(unsafe.Pointer(&v)) = binary.LittleEndian.Uint64(src)
	return v, src[8:], nil
}

type complex64Codec[T any] struct{ typ reflect.Type }

func (complex64Codec[T]) Append(dst []byte, v T) []byte {
	return binary.LittleEndian.AppendUint64(dst, *(*uint64)(unsafe.Pointer(&v)))
}

func (c complex64Codec[T]) Decode(src []byte) (v T, rest []byte, err error) {
	if rest, err = decComplex64(src, unsafe.Pointer(&v), 0); err != nil {
		return v, src, rootError(c.typ, err)
	}
	return v, rest, nil
}

type complex128Codec[T any] struct{ typ reflect.Type }

func (complex128Codec[T]) Append(dst []byte, v T) []byte {
	return encComplex128(dst, unsafe.Pointer(&v), 0)
}

func (c complex128Codec[T]) Decode(src []byte) (v T, rest []byte, err error) {
	if rest, err = decComplex128(src, unsafe.Pointer(&v), 0); err != nil {
		return v, src, rootError(c.typ, err)
	}
	return v, rest, nil
}

type stringCodec[T any] struct{ typ reflect.Type }

func (stringCodec[T]) Append(dst []byte, v T) []byte {
	s := *(*string)(unsafe.Pointer(&v))
	return append(appendUvarint(dst, uint64(len(s))), s...)
}

func (c stringCodec[T]) Decode(src []byte) (v T, rest []byte, err error) {
	var s string
	if rest, err = decString(src, unsafe.Pointer(&s), 0); err != nil {
		return v, src, rootError(c.typ, err)
	}
	*(*string)(unsafe.Pointer(&v)) = s
	return v, rest, nil
}

type bytesCodec[T any] struct{ typ reflect.Type }

func (bytesCodec[T]) Append(dst []byte, v T) []byte {
	return encBytes(dst, unsafe.Pointer(&v), 0)
}

func (c bytesCodec[T]) Decode(src []byte) (v T, rest []byte, err error) {
	var b []byte
	if rest, err = decBytes(src, unsafe.Pointer(&b), 0); err != nil {
		return v, src, rootError(c.typ, err)
	}
	*(*[]byte)(unsafe.Pointer(&v)) = b
	return v, rest, nil
}
