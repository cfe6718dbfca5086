package codec_test

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/spate-dev/spate/internal/codec"
)

// roundTrip encodes v after a prefix, decodes it followed by a suffix and
// checks that the value, the prefix and the suffix survive. It returns the
// encoding of v.
func roundTrip[T any](t *testing.T, v T) []byte {
	t.Helper()
	c, err := codec.For[T]()
	if err != nil {
		t.Fatalf("For[%s]: %v", reflect.TypeFor[T](), err)
	}
	prefix := []byte("pre")
	buf := c.Append(append([]byte(nil), prefix...), v)
	if !bytes.HasPrefix(buf, prefix) {
		t.Fatalf("Append clobbered dst: %q", buf)
	}
	enc := append([]byte(nil), buf[len(prefix):]...)
	buf = append(buf, "post"...)
	got, rest, err := c.Decode(buf[len(prefix):])
	if err != nil {
		t.Fatalf("Decode(%x) of %s: %v", enc, reflect.TypeFor[T](), err)
	}
	if string(rest) != "post" {
		t.Fatalf("Decode of %s left %q, want %q", reflect.TypeFor[T](), rest, "post")
	}
	if msg := diff(v, got); msg != "" {
		t.Fatalf("round trip of %s (%x): %s\nwant %#v\n got %#v", reflect.TypeFor[T](), enc, msg, v, got)
	}
	// The decoded value must not share memory with the input.
	for i := range buf {
		buf[i] = 0xAA
	}
	if msg := diff(v, got); msg != "" {
		t.Fatalf("decoded %s changed with its input: %s", reflect.TypeFor[T](), msg)
	}
	return enc
}

// diff compares a and b deeply, including unexported fields; floats compare
// by bits (so NaN equals itself) and times by instant, offset and IsZero.
// It returns "" if they are equal, else where they differ.
func diff[T any](a, b T) string {
	return diffValue(reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem(), reflect.TypeFor[T]().String(), 0)
}

var timeType = reflect.TypeFor[time.Time]()

func diffValue(a, b reflect.Value, path string, depth int) string {
	if depth > 100000 {
		return path + ": too deep"
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: type %s != %s", path, a.Type(), b.Type())
	}
	switch a.Kind() {
	case reflect.Bool:
		if a.Bool() != b.Bool() {
			return fmt.Sprintf("%s: %v != %v", path, a.Bool(), b.Bool())
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if a.Int() != b.Int() {
			return fmt.Sprintf("%s: %v != %v", path, a.Int(), b.Int())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if a.Uint() != b.Uint() {
			return fmt.Sprintf("%s: %v != %v", path, a.Uint(), b.Uint())
		}
	case reflect.Float32, reflect.Float64:
		if math.Float64bits(a.Float()) != math.Float64bits(b.Float()) {
			return fmt.Sprintf("%s: %v != %v", path, a.Float(), b.Float())
		}
	case reflect.Complex64, reflect.Complex128:
		x, y := a.Complex(), b.Complex()
		if math.Float64bits(real(x)) != math.Float64bits(real(y)) || math.Float64bits(imag(x)) != math.Float64bits(imag(y)) {
			return fmt.Sprintf("%s: %v != %v", path, x, y)
		}
	case reflect.String:
		if a.String() != b.String() {
			return fmt.Sprintf("%s: %q != %q", path, a.String(), b.String())
		}
	case reflect.Array:
		for i := range a.Len() {
			if d := diffValue(a.Index(i), b.Index(i), sub(path, "[", i, "]"), depth+1); d != "" {
				return d
			}
		}
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil %v != %v", path, a.IsNil(), b.IsNil())
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: len %d != %d", path, a.Len(), b.Len())
		}
		for i := range a.Len() {
			if d := diffValue(a.Index(i), b.Index(i), sub(path, "[", i, "]"), depth+1); d != "" {
				return d
			}
		}
	case reflect.Map:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil %v != %v", path, a.IsNil(), b.IsNil())
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: len %d != %d", path, a.Len(), b.Len())
		}
		for it := a.MapRange(); it.Next(); {
			if k := it.Key(); (k.Kind() == reflect.Float32 || k.Kind() == reflect.Float64) && math.IsNaN(k.Float()) {
				continue // cannot be looked up; the length check counts it
			}
			bv := b.MapIndex(it.Key())
			if !bv.IsValid() {
				return fmt.Sprintf("%s: key %v missing", path, it.Key())
			}
			if d := diffValue(it.Value(), bv, sub(path, "[", it.Key(), "]"), depth+1); d != "" {
				return d
			}
		}
	case reflect.Pointer:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil %v != %v", path, a.IsNil(), b.IsNil())
		}
		if !a.IsNil() {
			return diffValue(a.Elem(), b.Elem(), path, depth+1)
		}
	case reflect.Interface:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil %v != %v", path, a.IsNil(), b.IsNil())
		}
		if !a.IsNil() {
			return diffValue(a.Elem(), b.Elem(), path, depth+1)
		}
	case reflect.Struct:
		if a.Type().ConvertibleTo(timeType) {
			x, y := timeOf(a), timeOf(b)
			_, xo := x.Zone()
			_, yo := y.Zone()
			if !x.Equal(y) || xo != yo || x.IsZero() != y.IsZero() {
				return fmt.Sprintf("%s: %v != %v", path, x, y)
			}
			return ""
		}
		for i := range a.NumField() {
			if d := diffValue(a.Field(i), b.Field(i), sub(path, ".", a.Type().Field(i).Name), depth+1); d != "" {
				return d
			}
		}
	default:
		panic("diff: unexpected kind " + a.Kind().String())
	}
	return ""
}

// timeOf reads a time.Time (or a type defined as one) out of v, which may
// be an unexported field.
func timeOf(v reflect.Value) time.Time {
	if v.CanAddr() {
		return *(*time.Time)(unsafe.Pointer(v.UnsafeAddr()))
	}
	c := reflect.New(v.Type())
	c.Elem().Set(v)
	return *(*time.Time)(c.UnsafePointer())
}

// sub extends path, up to a readable length.
func sub(path string, elems ...any) string {
	if len(path) > 200 {
		return path
	}
	return path + fmt.Sprint(elems...)
}
