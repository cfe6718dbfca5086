package keygroup

import (
	"fmt"
	"math"
	"testing"
)

func TestRangesCoverAllKeyGroupsOnce(t *testing.T) {
	for _, tc := range []struct{ maxPar, par int }{{128, 1}, {128, 2}, {128, 3}, {128, 128}, {10, 7}, {32768, 5}} {
		t.Run(fmt.Sprintf("max=%d,p=%d", tc.maxPar, tc.par), func(t *testing.T) {
			owner := make([]int, tc.maxPar)
			for i := range owner {
				owner[i] = -1
			}
			for s := 0; s < tc.par; s++ {
				start, end := Range(s, tc.maxPar, tc.par)
				for kg := start; kg < end; kg++ {
					if owner[kg] != -1 {
						t.Fatalf("key group %d owned by %d and %d", kg, owner[kg], s)
					}
					owner[kg] = s
					if got := Subtask(kg, tc.maxPar, tc.par); got != s {
						t.Fatalf("Subtask(%d) = %d, Range says %d", kg, got, s)
					}
				}
			}
			for kg, s := range owner {
				if s == -1 {
					t.Fatalf("key group %d owned by nobody", kg)
				}
			}
		})
	}
}

func TestHasherStableAndSpread(t *testing.T) {
	hs := Hasher[string](nil)
	if hs("hello") != String("hello") {
		t.Fatal("string hasher differs from String")
	}
	counts := make([]int, 4)
	for i := 0; i < 10000; i++ {
		kg := Of(hs(fmt.Sprintf("key-%d", i)), 128)
		counts[Subtask(kg, 128, 4)]++
	}
	for s, c := range counts {
		if c < 2000 || c > 3000 {
			t.Errorf("subtask %d got %d of 10000 keys; want roughly 2500", s, c)
		}
	}
	type pair struct{ A, B int }
	enc := func(dst []byte, k pair) []byte { return fmt.Appendf(dst, "%d/%d", k.A, k.B) }
	hp := Hasher[pair](enc)
	if hp(pair{1, 2}) != hp(pair{1, 2}) || hp(pair{1, 2}) == hp(pair{2, 1}) {
		t.Error("struct hasher not deterministic or not distinguishing")
	}
	hi := Hasher[int64](nil)
	if hi(42) != Uint64(42) {
		t.Error("int64 hasher differs from Uint64")
	}
}

func TestCanonical(t *testing.T) {
	negZero := math.Copysign(0, -1)
	type inner struct {
		A [2]float32
		C complex128
	}
	type outer struct {
		Name string
		In   inner
		P    *float64 // a pointer is compared by address: left alone
		F    float64
	}
	t.Run("no floats", func(t *testing.T) {
		if Canonical[string]() != nil || Canonical[struct {
			A int
			B string
		}]() != nil {
			t.Error("Canonical of a type without floats is not nil")
		}
	})
	t.Run("float64", func(t *testing.T) {
		c := Canonical[float64]()
		k := negZero
		if nan := c(&k); nan || math.Signbit(k) {
			t.Errorf("-0.0 became %v (NaN reported: %v), want +0.0", k, nan)
		}
		k = math.NaN()
		if !c(&k) {
			t.Error("NaN not reported")
		}
		k = -1.5
		if c(&k) || k != -1.5 {
			t.Errorf("-1.5 became %v", k)
		}
	})
	t.Run("nested", func(t *testing.T) {
		c := Canonical[outer]()
		p := negZero
		k := outer{Name: "x", In: inner{A: [2]float32{1, float32(negZero)}, C: complex(negZero, negZero)}, P: &p, F: negZero}
		if c(&k) {
			t.Fatal("NaN reported for a key without one")
		}
		if math.Signbit(float64(k.In.A[1])) || math.Signbit(real(k.In.C)) || math.Signbit(imag(k.In.C)) || math.Signbit(k.F) || k.In.A[0] != 1 || k.Name != "x" {
			t.Errorf("not canonical: %+v", k)
		}
		if !math.Signbit(p) {
			t.Error("the float behind a pointer was changed")
		}
		k.In.C = complex(1, math.NaN())
		if !c(&k) {
			t.Error("NaN in a complex part not reported")
		}
	})
	t.Run("hash", func(t *testing.T) {
		h := Hasher[float64](nil)
		if h(0) != h(negZero) {
			t.Error("-0.0 and +0.0 hash differently")
		}
	})
}
