package codec_test

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/spate-dev/spate/internal/codec"
)

const fix = "register a codec with spate.RegisterCodec or change the field type"

type (
	Payload struct {
		Key string
		Ch  chan int
	}
	Event struct {
		ID      int
		Payload Payload
	}

	WithFunc    struct{ F func() }
	WithUnsafe  struct{ P unsafe.Pointer }
	WithUintptr struct{ U uintptr }
	WithAny     struct{ V any }
	WithIface   struct {
		R interface{ Read([]byte) (int, error) }
	}
	WithSlice  struct{ Items []Payload }
	WithMapKey struct{ M map[Payload]int }
	WithMapVal struct{ M map[string]func() }
	WithPtr    struct{ P *Payload }
	WithArray  struct{ A [2]chan int }
	WithHidden struct{ c chan int }
	Embedded   struct{ Payload }
	Deep       struct{ W []map[string]*[1]WithAny }
	RecBad     struct {
		Next *RecBad
		F    func()
	}
)

func TestCheckRejects(t *testing.T) {
	tests := []struct {
		typ  reflect.Type
		path string // expected in the message
		why  string // expected in the message
	}{
		{reflect.TypeFor[Event](), "codec_test.Event.Payload.Ch (chan int)", "channels"},
		{reflect.TypeFor[WithFunc](), "codec_test.WithFunc.F (func())", "functions"},
		{reflect.TypeFor[WithUnsafe](), "codec_test.WithUnsafe.P (unsafe.Pointer)", "unsafe pointers"},
		{reflect.TypeFor[WithUintptr](), "codec_test.WithUintptr.U (uintptr)", "uintptr"},
		{reflect.TypeFor[WithAny](), "codec_test.WithAny.V (interface {})", "interface"},
		{reflect.TypeFor[WithIface](), "codec_test.WithIface.R (interface { Read([]uint8) (int, error) })", "interface"},
		{reflect.TypeFor[WithSlice](), "codec_test.WithSlice.Items[].Ch (chan int)", "channels"},
		{reflect.TypeFor[WithMapKey](), "codec_test.WithMapKey.M[key].Ch (chan int)", "channels"},
		{reflect.TypeFor[WithMapVal](), "codec_test.WithMapVal.M[value] (func())", "functions"},
		{reflect.TypeFor[WithPtr](), "codec_test.WithPtr.P.Ch (chan int)", "channels"},
		{reflect.TypeFor[*Event](), "*codec_test.Event.Payload.Ch (chan int)", "channels"},
		{reflect.TypeFor[WithArray](), "codec_test.WithArray.A[] (chan int)", "channels"},
		{reflect.TypeFor[WithHidden](), "codec_test.WithHidden.c (chan int)", "channels"},
		{reflect.TypeFor[Embedded](), "codec_test.Embedded.Payload.Ch (chan int)", "channels"},
		{reflect.TypeFor[Deep](), "codec_test.Deep.W[][value][].V (interface {})", "interface"},
		{reflect.TypeFor[RecBad](), "codec_test.RecBad.F (func())", "functions"},
		{reflect.TypeFor[[]chan int](), "[]chan int[] (chan int)", "channels"},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			err := codec.Check(tt.typ)
			if err == nil {
				t.Fatalf("Check(%s) = nil, want an error", tt.typ)
			}
			msg := err.Error()
			for _, want := range []string{"cannot encode " + tt.typ.String() + ": ", tt.path, tt.why, fix} {
				if !strings.Contains(msg, want) {
					t.Errorf("Check(%s) = %q, want %q in it", tt.typ, msg, want)
				}
			}
		})
	}
}

func TestCheckRejectsTopLevel(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[chan int](),
		reflect.TypeFor[func()](),
		reflect.TypeFor[unsafe.Pointer](),
		reflect.TypeFor[uintptr](),
		reflect.TypeFor[any](),
		reflect.TypeFor[error](),
	} {
		err := codec.Check(typ)
		if err == nil || !strings.Contains(err.Error(), "cannot encode "+typ.String()) || !strings.Contains(err.Error(), fix) {
			t.Errorf("Check(%s) = %v", typ, err)
		}
	}
	if err := codec.Check(nil); err == nil {
		t.Error("Check(nil) = nil")
	}
}

func TestForRejects(t *testing.T) {
	check := func(name string, err error, path string) {
		t.Helper()
		if err == nil {
			t.Errorf("For[%s]: no error", name)
			return
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fix) {
			t.Errorf("For[%s]: %q, want %q and the fix in it", name, err, path)
		}
	}
	c, err := codec.For[Event]()
	if c != nil {
		t.Errorf("For[Event] returned a codec with its error")
	}
	check("Event", err, "codec_test.Event.Payload.Ch (chan int)")
	_, err = codec.For[WithAny]()
	check("WithAny", err, "codec_test.WithAny.V (interface {})")
	_, err = codec.For[chan int]()
	check("chan int", err, "chan int")
	_, err = codec.For[uintptr]()
	check("uintptr", err, "uintptr")
	_, err = codec.For[any]()
	check("any", err, "interface")
	// Cached errors are reported again.
	_, err = codec.For[Event]()
	check("Event", err, "codec_test.Event.Payload.Ch (chan int)")
}

func TestCheckAccepts(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[Outer](),
		reflect.TypeFor[Node](),
		reflect.TypeFor[Tree](),
		reflect.TypeFor[AllKinds](),
		reflect.TypeFor[WithVec](),
		reflect.TypeFor[Order](),
		reflect.TypeFor[Shape](), // registered interface
		reflect.TypeFor[struct{ _ [0]func() }](),
	} {
		if err := codec.Check(typ); err != nil {
			t.Errorf("Check(%s): %v", typ, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	type Rec struct {
		ID   int
		Name string
		Tags []string
		M    map[string]int
	}
	tests := []struct {
		name string
		in   []byte
		want []string
		eof  bool
	}{
		{"empty", nil, []string{"codec: decode codec_test.Rec.ID", "unexpected EOF"}, true},
		{"string length", []byte{2, 0xfe, 0x4d, 'a', 'b', 'c'}, []string{"codec_test.Rec.Name: decode string length: 9982 bytes wanted, 3 left"}, true},
		{"slice length", []byte{2, 0, 0xff, 0xff, 0x03, 'a'}, []string{"codec_test.Rec.Tags", "65534 elements", "1 bytes left"}, true},
		{"slice element", []byte{2, 0, 3, 1, 'a', 5, 'b'}, []string{"codec_test.Rec.Tags[1]: decode string length: 5 bytes wanted, 1 left"}, true},
		{"map length", []byte{2, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, []string{"codec_test.Rec.M", "elements of at least 2 bytes wanted, 0 bytes left"}, true},
		{"huge length", []byte{2, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []string{"codec_test.Rec.M", "too many"}, false},
		{"varint overflow", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []string{"codec_test.Rec.ID", "overflows"}, false},
	}
	c, err := codec.For[Rec]()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, rest, err := c.Decode(tt.in)
			if err == nil {
				t.Fatalf("Decode(%x) = %+v, %x, want an error", tt.in, v, rest)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Decode(%x): %q, want %q in it", tt.in, err, want)
				}
			}
			if got := errors.Is(err, io.ErrUnexpectedEOF); got != tt.eof {
				t.Errorf("Decode(%x): errors.Is(%q, io.ErrUnexpectedEOF) = %v", tt.in, err, got)
			}
		})
	}

	t.Run("primitives", func(t *testing.T) {
		decErr := func(name string, err error, want string) {
			t.Helper()
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want %q in it", name, err, want)
			}
		}
		_, _, err := must(codec.For[string]()).Decode([]byte{0x8f, 0x4e, 'a', 'b', 'c'})
		decErr("string", err, "codec: decode string: decode string length: 9999 bytes wanted, 3 left: unexpected EOF")
		_, _, err = must(codec.For[bool]()).Decode([]byte{7})
		decErr("bool", err, "invalid byte 0x7")
		_, _, err = must(codec.For[int8]()).Decode([]byte{0x80, 0x02})
		decErr("int8", err, "out of range")
		_, _, err = must(codec.For[uint16]()).Decode([]byte{0x80, 0x80, 0x04})
		decErr("uint16", err, "out of range")
		_, _, err = must(codec.For[float64]()).Decode([]byte{1, 2, 3})
		decErr("float64", err, "8 bytes wanted, 3 left")
		_, _, err = must(codec.For[*int]()).Decode([]byte{2})
		decErr("*int", err, "invalid byte 0x2")
		_, _, err = must(codec.For[Word]()).Decode([]byte{5, 'a'})
		decErr("Word", err, "codec: decode codec_test.Word: decode string length")
		_, _, err = must(codec.For[[]byte]()).Decode([]byte{10, 'a'})
		decErr("[]byte", err, "decode bytes length: 9 bytes wanted, 1 left")
		_, _, err = must(codec.For[[4]byte]()).Decode([]byte{1})
		decErr("[4]byte", err, "4 bytes wanted, 1 left")
		_, _, err = must(codec.For[map[struct{}]struct{}]()).Decode([]byte{3})
		decErr("map[struct{}]struct{}", err, "at most 1")
		_, _, err = must(codec.For[MyTime]()).Decode([]byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f})
		decErr("MyTime", err, "codec: decode codec_test.MyTime: decode time nanoseconds")
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestTruncated decodes every proper prefix of valid encodings: each must
// fail with io.ErrUnexpectedEOF, without panicking.
func TestTruncated(t *testing.T) {
	in := Inner{A: 1, B: []string{"xy"}, c: &count{"c", 2}}
	truncate(t, Outer{
		Name: "o", In: in, InPtr: &in, Ins: []Inner{in}, ByKey: map[string]Inner{"k": in},
		ByPoint: map[[2]int]*Inner{{1, 2}: &in}, Temps: [3]Celsius{1, 2, 3}, Raw: []byte{1},
		When: time.Unix(1, 2).In(time.FixedZone("", 60)), Took: 3, hidden: count{"h", 4},
	})
	truncate(t, "hello")
	truncate(t, int64(-1234567))
	truncate(t, []byte("bytes"))
	truncate(t, time.Unix(1e9, 1).In(time.FixedZone("", 7200)))
	truncate(t, &Node{1, &Node{2, nil}})
	truncate(t, WithVec{Name: "n", V: Vec{1, 2}})
	truncate(t, AllKinds{S: "x", Bs: []byte{1}, M: map[int64]string{1: "a"}, P: ptr(1.0), C128: 1i})
}

func truncate[T any](t *testing.T, v T) {
	t.Helper()
	c := must(codec.For[T]())
	b := c.Append(nil, v)
	for i := range len(b) {
		got, _, err := c.Decode(b[:i:i])
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Decode of %s truncated to %d of %d bytes: %+v, %v; want io.ErrUnexpectedEOF", reflect.TypeFor[T](), i, len(b), got, err)
		}
	}
}

func TestTooDeep(t *testing.T) {
	// A linked list deeper than Decode follows: 1 (present) 0 (V=0) ...
	b := []byte{}
	for range 20000 {
		b = append(b, 1, 0)
	}
	b = append(b, 0)
	_, _, err := must(codec.For[*Node]()).Decode(b)
	if err == nil || !strings.Contains(err.Error(), "levels deep") {
		t.Fatalf("Decode of a 20000-deep list: %v", err)
	}
	if len(err.Error()) > 1000 {
		t.Errorf("error message is %d bytes long", len(err.Error()))
	}

	// Encoding a cycle panics with a message, rather than overflowing the
	// stack.
	n := &Node{V: 1}
	n.Next = n
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "cyclic") {
			t.Errorf("Append of a cycle: recovered %v", r)
		}
	}()
	must(codec.For[*Node]()).Append(nil, n)
}

func TestDecodeHugeEmpty(t *testing.T) {
	// 2^62 elements of size zero: accepted, without time or memory.
	in := []byte{0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40}
	v, rest, err := must(codec.For[[]struct{}]()).Decode(in)
	if err != nil || len(v) != 1<<62 || len(rest) != 0 {
		t.Errorf("Decode of 2^62 struct{}: len %d, rest %x, %v", len(v), rest, err)
	}
	type E struct {
		A struct{}
		B [0]int
		C [3]struct{}
	}
	v2, _, err := must(codec.For[[]E]()).Decode(in)
	if err != nil || len(v2) != 1<<62 {
		t.Errorf("Decode of 2^62 E: len %d, %v", len(v2), err)
	}
	_, _, err = must(codec.For[[]int]()).Decode(in)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Decode of 2^62 ints: %v", err)
	}
	var big [1 << 16]struct{}
	roundTrip(t, big)
}

type (
	Handler       interface{ Handle() }
	Fixable       struct{ H Handler }
	handlerCodec  struct{}
	nopHandler    struct{}
	handlerHolder struct{ Hs []Handler }
)

func (nopHandler) Handle() {}

func (handlerCodec) Append(dst []byte, h Handler) []byte {
	if h == nil {
		return append(dst, 0)
	}
	return append(dst, 1)
}

func (handlerCodec) Decode(src []byte) (Handler, []byte, error) {
	if len(src) == 0 {
		return nil, nil, io.ErrUnexpectedEOF
	}
	if src[0] == 0 {
		return nil, src[1:], nil
	}
	return nopHandler{}, src[1:], nil
}

// handlerRegistered is set once Handler is registered (go test -count=n).
var handlerRegistered bool

// TestRegisterFixesRejection: a cached rejection goes once the offending
// type gets a codec.
func TestRegisterFixesRejection(t *testing.T) {
	if !handlerRegistered {
		if _, err := codec.For[Fixable](); err == nil || !strings.Contains(err.Error(), "codec_test.Fixable.H (codec_test.Handler)") {
			t.Errorf("For[Fixable] before Register: %v", err)
		}
	}
	codec.Register[Handler](handlerCodec{})
	handlerRegistered = true
	roundTrip(t, Fixable{nopHandler{}})
	roundTrip(t, Fixable{})
	roundTrip(t, handlerHolder{[]Handler{nil, nopHandler{}}})
}
