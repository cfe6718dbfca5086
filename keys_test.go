package spate_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

// point is a struct key with a float field.
type point struct {
	Name string
	X    float64
}

// countPerKey keys recs by themselves at parallelism 4 and returns, for
// each record, the subtask it reached, the count of its key's records so
// far (keyed state) and whether the key it saw had its sign bit set.
func countPerKey[K comparable](t *testing.T, recs []K, negative func(K) bool) []string {
	t.Helper()
	env := newEnv(4)
	ks := spate.KeyBy(spate.FromSlice(env, recs), func(k K) K { return k })
	out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[K, K, string] {
		var n *spate.ValueState[K, int]
		return &genericKeyed[K, string]{
			open: func(ctx *spate.KeyedContext[K, string]) error {
				n = spate.NewValueState[int](ctx.State(), "n")
				return nil
			},
			process: func(ctx *spate.KeyedContext[K, string], _ K) error {
				c, _ := n.Value()
				n.Update(c + 1)
				ctx.Collect(fmt.Sprintf("subtask=%d count=%d negative=%v", ctx.Subtask(), c+1, negative(ctx.Key())))
				return nil
			},
		}
	})
	got := spate.Collect(out)
	execute(t, env)
	return sorted(got.Values())
}

type genericKeyed[K comparable, O any] struct {
	open    func(ctx *spate.KeyedContext[K, O]) error
	process func(ctx *spate.KeyedContext[K, O], v K) error
}

func (f *genericKeyed[K, O]) Open(ctx *spate.KeyedContext[K, O]) error { return f.open(ctx) }
func (f *genericKeyed[K, O]) ProcessElement(ctx *spate.KeyedContext[K, O], v K) error {
	return f.process(ctx, v)
}

// TestSignedZeroKeysAreOneKey keys records by -0.0 and +0.0 (as floats of
// both sizes and inside a struct): they are one key, so they meet in one
// subtask and one state entry, and the operator sees +0.0. At parallelism
// 4 their bits hash to different subtasks.
func TestSignedZeroKeysAreOneKey(t *testing.T) {
	negZero := math.Copysign(0, -1)
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) []string
	}{
		{"float64", func(t *testing.T) []string {
			return countPerKey(t, []float64{0, negZero, 0, negZero}, math.Signbit)
		}},
		{"float32", func(t *testing.T) []string {
			return countPerKey(t, []float32{0, float32(negZero), 0, float32(negZero)}, func(f float32) bool { return math.Signbit(float64(f)) })
		}},
		{"struct", func(t *testing.T) []string {
			return countPerKey(t, []point{{"p", 0}, {"p", negZero}, {"p", 0}, {"p", negZero}}, func(p point) bool { return math.Signbit(p.X) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.run(t)
			subtask := strings.Fields(got[0])[0]
			var want []string
			for c := 1; c <= 4; c++ {
				want = append(want, fmt.Sprintf("%s count=%d negative=false", subtask, c))
			}
			if !slices.Equal(got, want) {
				t.Errorf("-0.0 and +0.0 keys:\n got %q\nwant %q (one subtask, one count)", got, want)
			}
		})
	}
}

// TestNaNKeysAreRefused keys a record by NaN, alone and inside a struct:
// the job fails, naming the keyed operator, instead of keeping state no
// later record could ever find.
func TestNaNKeysAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(env *spate.Env) spate.Stream[string]
	}{
		{"float64", func(env *spate.Env) spate.Stream[string] {
			ks := spate.KeyBy(spate.FromSlice(env, []float64{1, 2, math.NaN(), 3}), func(f float64) float64 { return f })
			return spate.Map(spate.Reduce(ks, func(a, v float64) float64 { return a + v }).Name("Sum per key"), func(f float64) string { return fmt.Sprint(f) })
		}},
		{"struct", func(env *spate.Env) spate.Stream[string] {
			ks := spate.KeyBy(spate.FromSlice(env, []point{{"a", 1}, {"b", math.NaN()}}), func(p point) point { return p })
			return spate.Map(spate.Reduce(ks, func(a, v point) point { return a }).Name("Sum per key"), func(p point) string { return p.Name })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(2)
			spate.Collect(tc.run(env))
			err := env.Execute(t.Name())
			if err == nil {
				t.Fatal("Execute succeeded with a NaN key; want it refused")
			}
			for _, s := range []string{"NaN", `"Sum per key"`} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
}
