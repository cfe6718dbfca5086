package codec

import (
	"encoding/binary"
	"math/bits"
	"reflect"
	"unsafe"
)

// A struct is encoded and decoded by a program: one step per field, with
// the fields of nested structs spliced in (at their offsets in the outer
// struct), run by one loop. The fields most records are made of (bools,
// numbers and strings) are handled in the loop itself; the others call
// their coder. This saves a function call per field and per nested
// struct, and decodes varints of up to eight bytes without a branch per
// byte.
//
// The loop's handling of a field is a fast path only: what it does not
// take (a varint longer than eight bytes or near the end of the input, a
// value out of the field's range, malformed or truncated input) goes to
// the field's coder, which decodes it or reports the error, with the same
// result as without the fast path.

// stepKind is how a program step handles its field.
type stepKind uint8

const (
	// The integers first: one comparison tells them apart.
	stepInt8 stepKind = iota
	stepInt16
	stepInt32
	stepInt64
	stepUint8
	stepUint16
	stepUint32
	stepUint64
	stepBool
	stepFloat32
	stepFloat64 // and complex64: 8 bytes
	stepString
	stepCall // the field's coder
)

// step is one field of a struct's program.
type step struct {
	kind stepKind
	off  uintptr // from the start of the outermost struct
	enc  encFn   // the field's coder's
	dec  decFn
	// path holds the selectors from the outermost struct to the field,
	// innermost first, for errors.
	path []string
}

// stepKindOf returns the step kind for a field of coder c.
func stepKindOf(c *coder) stepKind {
	if c.kind != kindPrim {
		return stepCall
	}
	t := c.typ
	switch t.Kind() {
	case reflect.Bool:
		return stepBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch t.Size() {
		case 1:
			return stepInt8
		case 2:
			return stepInt16
		case 4:
			return stepInt32
		}
		return stepInt64
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		switch t.Size() {
		case 1:
			return stepUint8
		case 2:
			return stepUint16
		case 4:
			return stepUint32
		}
		return stepUint64
	case reflect.Float32:
		return stepFloat32
	case reflect.Float64, reflect.Complex64:
		return stepFloat64
	case reflect.String:
		return stepString
	}
	return stepCall
}

// buildProgram makes the steps of struct coder c, whose fields are
// finalized, and sets c.enc and c.dec to run them.
func (c *coder) buildProgram() {
	var steps []step
	for i := range c.fields {
		f := &c.fields[i]
		sel := "." + f.name
		if f.c.kind == kindStruct {
			for _, s := range f.c.steps {
				s.off += f.off
				s.path = append(s.path[:len(s.path):len(s.path)], sel)
				steps = append(steps, s)
			}
			continue
		}
		if f.c.empty {
			continue
		}
		steps = append(steps, step{kind: stepKindOf(f.c), off: f.off, enc: f.c.enc, dec: f.c.dec, path: []string{sel}})
	}
	c.steps = steps
	c.enc = func(dst []byte, p unsafe.Pointer, depth int) []byte {
		return encodeSteps(dst, steps, p, depth)
	}
	c.dec = func(src []byte, p unsafe.Pointer, depth int) ([]byte, error) {
		return decodeSteps(src, steps, p, depth)
	}
}

// wrap places err at the step's field.
func (s *step) wrap(err error) error {
	for _, sel := range s.path {
		err = withPath(err, sel)
	}
	return err
}

func encodeSteps(dst []byte, steps []step, p unsafe.Pointer, depth int) []byte {
	for i := range steps {
		s := &steps[i]
		q := unsafe.Add(p, s.off)
		var u uint64
		switch s.kind {
		case stepBool:
			if *(*bool)(q) {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
			continue
		case stepInt8:
			u = zigzag(int64(*(*int8)(q)))
		case stepInt16:
			u = zigzag(int64(*(*int16)(q)))
		case stepInt32:
			u = zigzag(int64(*(*int32)(q)))
		case stepInt64:
			u = zigzag(*(*int64)(q))
		case stepUint8:
			u = uint64(*(*uint8)(q))
		case stepUint16:
			u = uint64(*(*uint16)(q))
		case stepUint32:
			u = uint64(*(*uint32)(q))
		case stepUint64:
			u = *(*uint64)(q)
		case stepFloat32:
			dst = binary.LittleEndian.AppendUint32(dst, *(*uint32)(q))
			continue
		case stepFloat64:
			dst = binary.LittleEndian.AppendUint64(dst, *(*uint64)(q))
			continue
		case stepString:
			str := *(*string)(q)
			dst = append(appendUvarint(dst, uint64(len(str))), str...)
			continue
		default:
			dst = s.enc(dst, q, depth)
			continue
		}
		// An integer, as a varint.
		for u >= 0x80 {
			dst = append(dst, byte(u)|0x80)
			u >>= 7
		}
		dst = append(dst, byte(u))
	}
	return dst
}

func decodeSteps(src []byte, steps []step, p unsafe.Pointer, depth int) ([]byte, error) {
	for i := range steps {
		s := &steps[i]
		q := unsafe.Add(p, s.off)
		if s.kind <= stepUint64 {
			// An integer: a varint of one byte, or of up to eight when
			// eight bytes are left (as uvarint8, inlined).
			var u uint64
			n := 0
			if len(src) > 0 && src[0] < 0x80 {
				u, n = uint64(src[0]), 1
			} else if len(src) >= 8 {
				w := binary.LittleEndian.Uint64(src)
				if stop := ^w & 0x8080808080808080; stop != 0 {
					last := bits.TrailingZeros64(stop)
					w &= ^uint64(0) >> (63 - last)
					u = w&0x7f | w>>1&(0x7f<<7) | w>>2&(0x7f<<14) | w>>3&(0x7f<<21) |
						w>>4&(0x7f<<28) | w>>5&(0x7f<<35) | w>>6&(0x7f<<42) | w>>7&(0x7f<<49)
					n = (last + 1) / 8
				}
			}
			if n > 0 {
				// Stored even if out of range: then the field's coder
				// reports the error, and the value is dropped.
				ok := true
				switch s.kind {
				case stepInt64:
					*(*int64)(q) = unzigzag(u)
				case stepUint64:
					*(*uint64)(q) = u
				case stepInt32:
					x := unzigzag(u)
					*(*int32)(q) = int32(x)
					ok = int64(int32(x)) == x
				case stepUint32:
					*(*uint32)(q) = uint32(u)
					ok = u <= 0xffffffff
				case stepInt16:
					x := unzigzag(u)
					*(*int16)(q) = int16(x)
					ok = int64(int16(x)) == x
				case stepUint16:
					*(*uint16)(q) = uint16(u)
					ok = u <= 0xffff
				case stepInt8:
					x := unzigzag(u)
					*(*int8)(q) = int8(x)
					ok = int64(int8(x)) == x
				case stepUint8:
					*(*uint8)(q) = uint8(u)
					ok = u <= 0xff
				}
				if ok {
					src = src[n:]
					continue
				}
			}
		} else {
			switch s.kind {
			case stepBool:
				if len(src) > 0 && src[0] <= 1 {
					*(*bool)(q) = src[0] == 1
					src = src[1:]
					continue
				}
			case stepFloat32:
				if len(src) >= 4 {
					*(*uint32)(q) = binary.LittleEndian.Uint32(src)
					src = src[4:]
					continue
				}
			case stepFloat64:
				if len(src) >= 8 {
					*(*uint64)(q) = binary.LittleEndian.Uint64(src)
					src = src[8:]
					continue
				}
			case stepString:
				if len(src) > 0 && src[0] < 0x80 && int(src[0]) < len(src) {
					n := 1 + int(src[0])
					*(*string)(q) = string(src[1:n])
					src = src[n:]
					continue
				}
			}
		}
		// The field's coder: for other kinds, and for what the fast
		// paths above leave, including every error.
		var err error
		if src, err = s.dec(src, q, depth); err != nil {
			return nil, s.wrap(err)
		}
	}
	return src, nil
}
