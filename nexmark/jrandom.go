package nexmark

import "math"

// javaRandom is a bit-for-bit reimplementation of java.util.Random, the
// 48-bit linear congruential generator the reference generator seeds with
// each event's id. Only the methods the generator needs are provided; each
// follows the algorithm specified in the java.util.Random documentation.
type javaRandom struct {
	seed int64
}

const (
	jrMultiplier = 0x5DEECE66D
	jrAddend     = 0xB
	jrMask       = 1<<48 - 1
)

// newJavaRandom returns the equivalent of new java.util.Random(seed).
func newJavaRandom(seed int64) javaRandom {
	var r javaRandom
	r.setSeed(seed)
	return r
}

// setSeed is Random.setSeed: the seed is scrambled with the multiplier and
// truncated to 48 bits.
func (r *javaRandom) setSeed(seed int64) {
	r.seed = (seed ^ jrMultiplier) & jrMask
}

// next is Random.next(bits): advance the LCG and return its top bits.
func (r *javaRandom) next(bits uint) int32 {
	return int32(r.step() >> (48 - bits))
}

// step advances the LCG and returns the new 48-bit state.
func (r *javaRandom) step() int64 {
	r.seed = (r.seed*jrMultiplier + jrAddend) & jrMask
	return r.seed
}

// nextInt is Random.nextInt().
func (r *javaRandom) nextInt() int32 {
	return r.next(32)
}

// nextIntn is Random.nextInt(bound), including the power-of-two fast path
// and the rejection loop that removes modulo bias. bound must be positive:
// callers guarantee it (Java would throw IllegalArgumentException). It is
// kept small enough to inline, so that constant bounds compile to
// multiplications instead of divisions.
func (r *javaRandom) nextIntn(bound int32) int32 {
	m := bound - 1
	v := int32(r.step() >> 17)
	if bound&m == 0 {
		return int32((int64(bound) * int64(v)) >> 31)
	}
	// int32 arithmetic wraps in Go exactly as in Java, which the rejection
	// test relies on.
	for v-v%bound+m < 0 {
		v = int32(r.step() >> 17)
	}
	return v % bound
}

// nextLong is Random.nextLong().
func (r *javaRandom) nextLong() int64 {
	hi := int64(r.next(32))
	lo := int64(r.next(32))
	return hi<<32 + lo
}

// nextDouble is Random.nextDouble(): 53 random bits scaled into [0, 1).
func (r *javaRandom) nextDouble() float64 {
	hi := int64(r.next(26))
	lo := int64(r.next(27))
	return float64(hi<<27+lo) * (1.0 / (1 << 53))
}

// nextBoolean is Random.nextBoolean().
func (r *javaRandom) nextBoolean() bool {
	return r.next(1) != 0
}

// javaRound is Java's Math.round(double): the closest long, ties rounding
// towards positive infinity, computed exactly (x - floor(x) is exact for
// every double, so no double rounding of x+0.5 can occur). NaN maps to 0
// and out-of-range values saturate, as in Java.
func javaRound(x float64) int64 {
	if math.IsNaN(x) {
		return 0
	}
	f := math.Floor(x)
	if x-f >= 0.5 {
		f++
	}
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}
