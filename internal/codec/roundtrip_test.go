package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/codec"
)

type (
	Word    string
	Celsius float64
	IDs     []uint32
	Matrix  [2][3]float32
	Flags   map[Word]bool
	MyTime  time.Time

	// count has only unexported fields.
	count struct {
		word string
		n    int
	}

	Small struct {
		Key   string
		Value int64
		Ts    time.Time
	}

	Node struct {
		V    int
		Next *Node
	}

	Tree struct {
		Name   string
		Kids   []Tree
		ByName map[string]*Tree
	}

	Inner struct {
		A int8
		B []string
		c *count
	}

	Outer struct {
		Name    Word
		In      Inner
		InPtr   *Inner
		Ins     []Inner
		ByKey   map[string]Inner
		ByPoint map[[2]int]*Inner
		Temps   [3]Celsius
		Raw     []byte
		When    time.Time
		Took    time.Duration
		hidden  count
		_       [0]func() // not comparable, not encoded
		Empty   struct{}
		Empties []struct{}
	}

	// Vec implements encoding.BinaryMarshaler and BinaryUnmarshaler with a
	// text form, so that the test can see the methods are used.
	Vec struct{ x, y int }

	WithVec struct {
		Name string
		V    Vec
		VP   *Vec
		Vs   []Vec
	}

	AllKinds struct {
		B    bool
		I    int
		I8   int8
		I16  int16
		I32  int32
		I64  int64
		U    uint
		U8   uint8
		U16  uint16
		U32  uint32
		U64  uint64
		F32  float32
		F64  float64
		C64  complex64
		C128 complex128
		S    string
		Bs   []byte
		T    time.Time
		D    time.Duration
		A    [4]byte
		Sl   []int16
		M    map[int64]string
		P    *float64
	}
)

func (v Vec) MarshalBinary() ([]byte, error) {
	return fmt.Appendf(nil, "vec(%d,%d)", v.x, v.y), nil
}

func (v *Vec) UnmarshalBinary(b []byte) error {
	_, err := fmt.Sscanf(string(b), "vec(%d,%d)", &v.x, &v.y)
	return err
}

type (
	EmbVec struct {
		Vec
		N int
	}
	Stamped struct {
		time.Time
		Note string
	}
	EmbPtr struct {
		*Vec
		S string
	}
	// OwnVec declares MarshalBinary and inherits UnmarshalBinary... which
	// it overrides too, to stay consistent.
	OwnVec struct {
		Vec
		N int
	}
)

func (o OwnVec) MarshalBinary() ([]byte, error) { return fmt.Appendf(nil, "own%d", o.N), nil }

func (o *OwnVec) UnmarshalBinary(b []byte) error {
	_, err := fmt.Sscanf(string(b), "own%d", &o.N)
	o.Vec = Vec{6, 7}
	return err
}

func ptr[T any](v T) *T { return &v }

func TestRoundTripPrimitives(t *testing.T) {
	t.Run("bool", func(t *testing.T) {
		roundTrip(t, true)
		roundTrip(t, false)
	})
	t.Run("int", func(t *testing.T) {
		for _, v := range []int64{0, 1, -1, 63, -64, 64, 1 << 40, math.MaxInt64, math.MinInt64} {
			roundTrip(t, v)
			roundTrip(t, int(v))
			roundTrip(t, time.Duration(v))
		}
		for _, v := range []int8{0, 1, -1, math.MaxInt8, math.MinInt8} {
			roundTrip(t, v)
		}
		for _, v := range []int16{0, -300, math.MaxInt16, math.MinInt16} {
			roundTrip(t, v)
		}
		for _, v := range []int32{0, -70000, math.MaxInt32, math.MinInt32} {
			roundTrip(t, v)
		}
	})
	t.Run("uint", func(t *testing.T) {
		for _, v := range []uint64{0, 1, 127, 128, 1 << 40, math.MaxUint64} {
			roundTrip(t, v)
			roundTrip(t, uint(v))
		}
		for _, v := range []uint8{0, 1, math.MaxUint8} {
			roundTrip(t, v)
		}
		for _, v := range []uint16{0, 300, math.MaxUint16} {
			roundTrip(t, v)
		}
		for _, v := range []uint32{0, 70000, math.MaxUint32} {
			roundTrip(t, v)
		}
	})
	t.Run("float", func(t *testing.T) {
		for _, v := range []float64{0, math.Copysign(0, -1), 1.5, -3e300, math.Inf(1), math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64} {
			roundTrip(t, v)
			roundTrip(t, float32(v))
			roundTrip(t, Celsius(v))
			roundTrip(t, complex(v, -v))
			roundTrip(t, complex64(complex(v, 2)))
		}
		if n := len(roundTrip(t, 1.5)); n != 8 {
			t.Errorf("float64 takes %d bytes, want 8", n)
		}
	})
	t.Run("string", func(t *testing.T) {
		for _, v := range []string{"", "a", "héllo, wörld", strings.Repeat("x", 300), "\x00\xff"} {
			roundTrip(t, v)
			roundTrip(t, Word(v))
		}
	})
	t.Run("bytes", func(t *testing.T) {
		for _, v := range [][]byte{nil, {}, {0}, []byte("abc"), bytes.Repeat([]byte{1, 2}, 200)} {
			roundTrip(t, v)
			roundTrip(t, json(v))
		}
	})
}

// json is a named byte slice.
type json []byte

func TestRoundTripTime(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	base := time.Date(2024, 3, 10, 6, 59, 59, 999999999, time.UTC)
	times := []time.Time{
		{},
		time.Unix(0, 0),
		time.Unix(0, 0).UTC(),
		base,
		base.In(ny),
		base.Add(time.Hour).In(ny), // after the DST switch
		base.In(time.FixedZone("IST", 5*3600+30*60)),
		base.In(time.FixedZone("LMT", -17762)), // offset with seconds
		base.In(time.FixedZone("zero", 0)),
		base.Local(),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(-500, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Now(), // with a monotonic reading
	}
	for i, v := range times {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			roundTrip(t, v)
			roundTrip(t, MyTime(v))
			roundTrip(t, &v)
			roundTrip(t, Small{Key: "k", Ts: v})
		})
	}
	t.Run("zero", func(t *testing.T) {
		c, _ := codec.For[time.Time]()
		got, _, err := c.Decode(c.Append(nil, time.Time{}))
		if err != nil || !got.IsZero() || got != (time.Time{}) {
			t.Errorf("zero time decoded as %v (IsZero %v), %v", got, got.IsZero(), err)
		}
	})
	t.Run("monotonic dropped", func(t *testing.T) {
		c, _ := codec.For[time.Time]()
		now := time.Now()
		got, _, _ := c.Decode(c.Append(nil, now))
		if strings.Contains(got.String(), "m=") || !got.Equal(now) {
			t.Errorf("decoded %v from %v", got, now)
		}
	})
	t.Run("utc", func(t *testing.T) {
		c, _ := codec.For[time.Time]()
		got, _, _ := c.Decode(c.Append(nil, base))
		if got != base {
			t.Errorf("decoded %#v, want %#v", got, base)
		}
	})
}

func TestRoundTripComposite(t *testing.T) {
	t.Run("unexported", func(t *testing.T) {
		roundTrip(t, count{"hello", 3})
		roundTrip(t, []count{{"a", 1}, {"b", -2}})
		roundTrip(t, map[count]count{{"k", 1}: {"v", 2}})
	})
	t.Run("named", func(t *testing.T) {
		roundTrip(t, IDs{1, 2, 3})
		roundTrip(t, IDs(nil))
		roundTrip(t, IDs{})
		roundTrip(t, Matrix{{1, 2, 3}, {4, 5, float32(math.NaN())}})
		roundTrip(t, Flags{"a": true, "b": false})
		roundTrip(t, Flags(nil))
		roundTrip(t, Flags{})
	})
	t.Run("slices", func(t *testing.T) {
		roundTrip(t, []int(nil))
		roundTrip(t, []int{})
		roundTrip(t, []int{1, -2, 3})
		roundTrip(t, [][]string{nil, {}, {"a"}, {"b", "c"}})
		roundTrip(t, []*int{nil, ptr(1)})
		roundTrip(t, []struct{}{{}, {}, {}})
		roundTrip(t, make([]struct{}, 1000))
		roundTrip(t, [][0]int{{}, {}})
		roundTrip(t, []time.Time{time.Unix(1, 2), {}})
	})
	t.Run("arrays", func(t *testing.T) {
		roundTrip(t, [3]int{1, 2, 3})
		roundTrip(t, [0]string{})
		roundTrip(t, [2][]byte{nil, {1}})
		roundTrip(t, [16]byte{1, 2, 3, 255})
		if n := len(roundTrip(t, [16]byte{})); n != 16 {
			t.Errorf("[16]byte takes %d bytes", n)
		}
	})
	t.Run("maps", func(t *testing.T) {
		roundTrip(t, map[string]int(nil))
		roundTrip(t, map[string]int{})
		roundTrip(t, map[string]int{"a": 1, "b": 2, "c": 3})
		roundTrip(t, map[int][]string{1: nil, 2: {"x"}})
		roundTrip(t, map[[2]int]*string{{1, 2}: ptr("x"), {3, 4}: nil})
		roundTrip(t, map[struct{}]struct{}{{}: {}})
		roundTrip(t, map[float64]int{math.NaN(): 1, 1.5: 2})
		big := map[int]string{}
		for i := range 1000 {
			big[i] = strconv.Itoa(i)
		}
		roundTrip(t, big)
	})
	t.Run("pointers", func(t *testing.T) {
		roundTrip(t, (*int)(nil))
		roundTrip(t, ptr(42))
		roundTrip(t, ptr(ptr("x")))
		roundTrip(t, ptr((*string)(nil)))
		roundTrip(t, &count{"c", 1})
		roundTrip(t, ptr(struct{}{}))
	})
	t.Run("recursive", func(t *testing.T) {
		roundTrip(t, (*Node)(nil))
		roundTrip(t, Node{V: 1})
		roundTrip(t, &Node{1, &Node{2, &Node{3, nil}}})
		var long *Node
		for i := range 5000 {
			long = &Node{i, long}
		}
		roundTrip(t, long)
		leaf := &Tree{Name: "leaf"}
		roundTrip(t, Tree{
			Name:   "root",
			Kids:   []Tree{{Name: "a"}, {Name: "b", Kids: []Tree{{Name: "c"}}}},
			ByName: map[string]*Tree{"leaf": leaf, "nil": nil},
		})
	})
	t.Run("nested", func(t *testing.T) {
		in := Inner{A: -5, B: []string{"x", ""}, c: &count{"w", 9}}
		full := Outer{
			Name:    "outer",
			In:      in,
			InPtr:   &in,
			Ins:     []Inner{in, {}, {c: &count{}}},
			ByKey:   map[string]Inner{"k": in, "": {}},
			ByPoint: map[[2]int]*Inner{{1, 2}: &in, {0, 0}: nil},
			Temps:   [3]Celsius{-40, 0, 100.5},
			Raw:     []byte{0, 1, 2},
			When:    time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600)),
			Took:    1500 * time.Millisecond,
			hidden:  count{"secret", 7},
			Empties: []struct{}{{}, {}},
		}
		roundTrip(t, full)
		roundTrip(t, Outer{})
		roundTrip(t, &full)
		roundTrip(t, []Outer{full, {}})
	})
	t.Run("all kinds", func(t *testing.T) {
		roundTrip(t, AllKinds{})
		roundTrip(t, AllKinds{
			B: true, I: -1, I8: -2, I16: -3, I32: -4, I64: -5,
			U: 1, U8: 2, U16: 3, U32: 4, U64: 5,
			F32: 1.25, F64: -2.5, C64: 1 + 2i, C128: -3 - 4i,
			S: "s", Bs: []byte("bs"), T: time.Unix(1e9, 5).UTC(), D: time.Minute,
			A: [4]byte{9, 8, 7, 6}, Sl: []int16{-1, 1}, M: map[int64]string{-1: "neg"}, P: ptr(2.5),
		})
	})
}

func TestBinaryMarshaler(t *testing.T) {
	enc := roundTrip(t, Vec{3, -4})
	if !bytes.Contains(enc, []byte("vec(3,-4)")) {
		t.Errorf("Vec encoded as %q, want MarshalBinary's text", enc)
	}
	roundTrip(t, &Vec{1, 2})
	enc = roundTrip(t, WithVec{Name: "n", V: Vec{5, 6}, VP: &Vec{7, 8}, Vs: []Vec{{9, 10}}})
	for _, want := range []string{"vec(5,6)", "vec(7,8)", "vec(9,10)"} {
		if !bytes.Contains(enc, []byte(want)) {
			t.Errorf("WithVec encoded as %q, want %q in it", enc, want)
		}
	}
	roundTrip(t, WithVec{})

	// Methods promoted from an embedded field would lose the other fields:
	// the struct is derived, the embedded field uses its methods.
	enc = roundTrip(t, EmbVec{Vec{1, 2}, 3})
	if !bytes.Contains(enc, []byte("vec(1,2)")) {
		t.Errorf("EmbVec encoded as %q", enc)
	}
	roundTrip(t, Stamped{time.Unix(5, 0).UTC(), "note"})
	roundTrip(t, &EmbPtr{&Vec{4, 5}, "x"})
	roundTrip(t, EmbPtr{nil, "x"})
	// A struct declaring one of the methods itself uses them.
	enc = roundTrip(t, OwnVec{Vec{6, 7}, 8})
	if string(enc) != "\x04own8" {
		t.Errorf("OwnVec encoded as %q", enc)
	}
	// A standard library type with the methods.
	roundTrip(t, netip.MustParseAddr("2001:db8::1"))
	roundTrip(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})

	c, _ := codec.For[Vec]()
	if _, _, err := c.Decode([]byte("\x05vec(x")); err == nil || !strings.Contains(err.Error(), "UnmarshalBinary") {
		t.Errorf("Decode of bad Vec: %v, want an UnmarshalBinary error", err)
	}
}

// Money has a registered codec writing it as text.
type Money struct {
	Cents    int64
	Currency string
}

type moneyCodec struct{}

func (moneyCodec) Append(dst []byte, m Money) []byte {
	s := fmt.Sprintf("%s:%d", m.Currency, m.Cents)
	return append(append(dst, byte(len(s))), s...)
}

func (moneyCodec) Decode(src []byte) (Money, []byte, error) {
	if len(src) == 0 || int(src[0]) > len(src)-1 {
		return Money{}, nil, io.ErrUnexpectedEOF
	}
	s := string(src[1 : 1+src[0]])
	cur, cents, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(cents, 10, 64)
	if !ok || err != nil {
		return Money{}, nil, fmt.Errorf("bad money %q", s)
	}
	return Money{n, cur}, src[1+src[0]:], nil
}

// Shape is an interface with a registered codec.
type Shape interface{ Area() float64 }

type Square struct{ Side float64 }
type Circle struct{ R float64 }

func (s Square) Area() float64 { return s.Side * s.Side }
func (c Circle) Area() float64 { return math.Pi * c.R * c.R }

type shapeCodec struct{}

func (shapeCodec) Append(dst []byte, s Shape) []byte {
	switch s := s.(type) {
	case nil:
		return append(dst, 0)
	case Square:
		return binary.LittleEndian.AppendUint64(append(dst, 1), math.Float64bits(s.Side))
	case Circle:
		return binary.LittleEndian.AppendUint64(append(dst, 2), math.Float64bits(s.R))
	}
	panic("unknown shape")
}

func (shapeCodec) Decode(src []byte) (Shape, []byte, error) {
	if len(src) == 0 {
		return nil, nil, io.ErrUnexpectedEOF
	}
	if src[0] == 0 {
		return nil, src[1:], nil
	}
	if len(src) < 9 {
		return nil, nil, io.ErrUnexpectedEOF
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(src[1:]))
	switch src[0] {
	case 1:
		return Square{f}, src[9:], nil
	case 2:
		return Circle{f}, src[9:], nil
	}
	return nil, nil, fmt.Errorf("unknown shape tag %d", src[0])
}

type Order struct {
	ID     int
	Total  Money
	Lines  []Money
	ByUser map[string]Money
	Tip    *Money
}

type Drawing struct {
	Title string
	Shape Shape
}

func init() {
	codec.Register[Money](moneyCodec{})
	codec.Register[Shape](shapeCodec{})
}

func TestRegistered(t *testing.T) {
	c, err := codec.For[Money]()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(moneyCodec); !ok {
		t.Errorf("For[Money] = %T, want the registered moneyCodec", c)
	}
	enc := roundTrip(t, Money{150, "EUR"})
	if string(enc) != "\x07EUR:150" {
		t.Errorf("Money encoded as %q", enc)
	}
	o := Order{
		ID:     1,
		Total:  Money{999, "USD"},
		Lines:  []Money{{1, "USD"}, {2, "GBP"}},
		ByUser: map[string]Money{"bob": {3, "CHF"}},
		Tip:    &Money{4, "JPY"},
	}
	enc = roundTrip(t, o)
	for _, want := range []string{"USD:999", "USD:1", "GBP:2", "CHF:3", "JPY:4"} {
		if !bytes.Contains(enc, []byte(want)) {
			t.Errorf("Order encoded as %q, want %q in it", enc, want)
		}
	}
	roundTrip(t, Order{})

	if err := codec.Check(reflect.TypeFor[Drawing]()); err != nil {
		t.Errorf("Check(Drawing) with a registered Shape codec: %v", err)
	}
	roundTrip(t, Drawing{"sq", Square{2}})
	roundTrip(t, Drawing{"c", Circle{0.5}})
	roundTrip(t, Drawing{"none", nil})
	roundTrip[Shape](t, Square{3})

	// Errors of registered codecs are wrapped, with the path.
	cd, _ := codec.For[Order]()
	_, _, err = cd.Decode([]byte{2, 0x05, 'U', 'S', 'D'})
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "codec_test.Order.Total") {
		t.Errorf("Decode of truncated Order: %v", err)
	}
}

// Late is registered after its codec was derived.
type (
	Late       struct{ X int }
	LateHolder struct{ L Late }
	lateCodec  struct{}
)

func (lateCodec) Append(dst []byte, l Late) []byte { return append(dst, 'L', byte(l.X)) }
func (lateCodec) Decode(src []byte) (Late, []byte, error) {
	if len(src) < 2 || src[0] != 'L' {
		return Late{}, nil, errors.New("not a Late")
	}
	return Late{int(src[1])}, src[2:], nil
}

// lateRegistered is set once Late is registered (go test -count=n runs the
// test more than once).
var lateRegistered bool

func TestRegisterAfterFor(t *testing.T) {
	if !lateRegistered {
		if enc := roundTrip(t, LateHolder{Late{5}}); string(enc) != "\x0a" {
			t.Errorf("derived LateHolder encoded as %q", enc)
		}
	}
	codec.Register[Late](lateCodec{})
	lateRegistered = true
	if enc := roundTrip(t, Late{5}); string(enc) != "L\x05" {
		t.Errorf("registered Late encoded as %q", enc)
	}
	if enc := roundTrip(t, LateHolder{Late{5}}); string(enc) != "L\x05" {
		t.Errorf("LateHolder encoded as %q after Register", enc)
	}
}

func TestRegisterNilPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Register(nil) did not panic")
		}
	}()
	codec.Register[Late](nil)
}

func TestNilAndEmptyKept(t *testing.T) {
	type S struct {
		A []int
		B map[string]int
		C []byte
	}
	for _, v := range []S{{}, {A: []int{}, B: map[string]int{}, C: []byte{}}} {
		c, _ := codec.For[S]()
		got, _, err := c.Decode(c.Append(nil, v))
		if err != nil {
			t.Fatal(err)
		}
		if (got.A == nil) != (v.A == nil) || (got.B == nil) != (v.B == nil) || (got.C == nil) != (v.C == nil) {
			t.Errorf("nil-ness lost: %#v -> %#v", v, got)
		}
	}
}

func TestForCached(t *testing.T) {
	a, _ := codec.For[Outer]()
	b, _ := codec.For[Outer]()
	if a != b {
		t.Error("For returned different codecs for the same type")
	}
}

func TestEncodingSize(t *testing.T) {
	tests := []struct {
		name string
		enc  []byte
		want string
	}{
		{"int64 -1", enc[int64](-1), "\x01"},
		{"int64 1", enc[int64](1), "\x02"},
		{"uint 300", enc[uint](300), "\xac\x02"},
		{"string", enc("abc"), "\x03abc"},
		{"nil slice", enc([]int(nil)), "\x00"},
		{"empty slice", enc([]int{}), "\x01"},
		{"slice", enc([]int{1}), "\x02\x02"},
		{"struct", enc(count{"a", 1}), "\x01a\x02"},
		{"nil pointer", enc((*int)(nil)), "\x00"},
		{"pointer", enc(ptr(1)), "\x01\x02"},
		{"bool", enc(true), "\x01"},
		{"utc time", enc(time.Unix(1, 2).UTC()), "\x02\x04"},
		{"zoned time", enc(time.Unix(1, 2).In(time.FixedZone("", -1))), "\x02\x05\x01"},
	}
	for _, tt := range tests {
		if string(tt.enc) != tt.want {
			t.Errorf("%s: encoded as %q, want %q", tt.name, tt.enc, tt.want)
		}
	}
}

func enc[T any](v T) []byte {
	c, err := codec.For[T]()
	if err != nil {
		panic(err)
	}
	return c.Append(nil, v)
}
