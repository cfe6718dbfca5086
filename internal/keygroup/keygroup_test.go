package keygroup

import (
	"fmt"
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
