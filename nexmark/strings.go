package nexmark

import (
	"math/bits"
	"slices"
	"strconv"
	"sync"
)

// Value lists of the reference PersonGenerator.
var (
	usStates   = []string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = []string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	firstNames = []string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = []string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
)

// personNames holds every "First Last" combination, indexed
// first*len(lastNames)+last, so that names cost no allocation.
var personNames = func() []string {
	names := make([]string, 0, len(firstNames)*len(lastNames))
	for _, f := range firstNames {
		for _, l := range lastNames {
			names = append(names, f+" "+l)
		}
	}
	return names
}()

// Channels of the Flink reference BidGenerator.
const (
	hotChannelsRatio = 2      // HOT_CHANNELS_RATIO
	channelsNumber   = 10_000 // CHANNELS_NUMBER
)

var hotChannels = []string{"Google", "Facebook", "Baidu", "Apple"}

// channelTable holds the URLs of the hot channels and the names and URLs of
// the numbered channels. The reference draws these URLs from unseeded
// java.util.Random instances (so they differ from run to run); here each is
// drawn from a javaRandom seeded with a fixed function of the channel, so
// they are deterministic. Their shape is the reference's:
// https://www.nexmark.com/<part>/<part>/<part>/item.htm?query=1, with
// "&channel_id=<|reverse(n)|>" appended for nine in ten numbered channels.
type channelTable struct {
	hotURLs []string
	names   []string
	urls    []string
}

var channels = sync.OnceValue(func() *channelTable {
	t := &channelTable{
		hotURLs: make([]string, len(hotChannels)),
		names:   make([]string, channelsNumber),
		urls:    make([]string, channelsNumber),
	}
	var buf []byte
	for i := range hotChannels {
		r := newJavaRandom(mixSeed(-int64(i) - 1))
		buf = appendBaseURL(buf[:0], &r)
		t.hotURLs[i] = string(buf)
	}
	for c := range channelsNumber {
		t.names[c] = "channel-" + strconv.Itoa(c)
		r := newJavaRandom(mixSeed(int64(c) + 1))
		buf = appendBaseURL(buf[:0], &r)
		if r.nextIntn(10) > 0 {
			// Math.abs(Integer.reverse(c)), with Java's int wrap-around.
			id := int32(bits.Reverse32(uint32(c)))
			if id < 0 {
				id = -id
			}
			buf = append(buf, "&channel_id="...)
			buf = strconv.AppendInt(buf, int64(id), 10)
		}
		t.urls[c] = string(buf)
	}
	return t
})

// mixSeed spreads small integers over the seed space so that neighbouring
// channels do not get correlated java.util.Random streams.
func mixSeed(x int64) int64 {
	return int64(uint64(x) * 0x9E3779B97F4A7C15)
}

// appendBaseURL is the Flink BidGenerator.getBaseUrl.
func appendBaseURL(dst []byte, r *javaRandom) []byte {
	dst = append(dst, "https://www.nexmark.com/"...)
	for range 3 {
		dst = appendNextString(dst, r, 5, '_')
		dst = append(dst, '/')
	}
	return append(dst, "item.htm?query=1"...)
}

// appendNextString appends StringsGenerator.nextString(random, maxLength,
// special): between 3 and maxLength-1 characters, each a lowercase letter
// or, with probability 1/13, special; then String.trim() is applied.
func appendNextString(dst []byte, r *javaRandom, maxLength int32, special byte) []byte {
	n := 3 + r.nextIntn(maxLength-3)
	start := len(dst)
	for ; n > 0; n-- {
		if r.nextIntn(13) == 0 {
			dst = append(dst, special)
		} else {
			dst = append(dst, byte('a'+r.nextIntn(26)))
		}
	}
	// String.trim removes every leading and trailing char <= ' '.
	s := dst[start:]
	i, j := 0, len(s)
	for i < j && s[i] <= ' ' {
		i++
	}
	for j > i && s[j-1] <= ' ' {
		j--
	}
	if i > 0 {
		copy(s, s[i:j])
	}
	return dst[:start+j-i]
}

// appendExactString appends StringsGenerator.nextExactString: length
// characters (see fillExactString).
func appendExactString(dst []byte, r *javaRandom, length int) []byte {
	start := len(dst)
	dst = slices.Grow(dst, length)[:start+length]
	fillExactString(dst[start:], r)
	return dst
}

// fillExactString fills out with StringsGenerator.nextExactString(random,
// len(out)): six characters per nextInt(), each 'a' + rnd%26 with rnd then
// divided by 26. As in Java, a negative draw yields characters below 'a'
// ('H' to '`'), so the text may contain a backslash.
func fillExactString(out []byte, r *javaRandom) {
	seed := r.seed // a local copy stays in a register
	for len(out) >= 6 {
		// rnd is r.nextInt(). Java's truncated division keeps the sign of
		// rnd, so the six characters are 'a' plus or minus the six low
		// base-26 digits of |rnd|, taken three at a time from
		// digitTriples. Each byte of "aaa" exceeds any digit, so adding or
		// subtracting the packed digits never carries between bytes. m is
		// all ones for a negative rnd, making (w^m)-m the negation of w
		// without a branch.
		seed = (seed*jrMultiplier + jrAddend) & jrMask
		rnd := int32(seed >> 16)
		m := uint32(rnd >> 31)
		u := (uint32(rnd) ^ m) - m
		lo := 0x616161 + (digitTriples[u%17576] ^ m) - m
		hi := 0x616161 + (digitTriples[u/17576%17576] ^ m) - m
		_ = out[5]
		out[0], out[1], out[2] = byte(lo), byte(lo>>8), byte(lo>>16)
		out[3], out[4], out[5] = byte(hi), byte(hi>>8), byte(hi>>16)
		out = out[6:]
	}
	r.seed = seed
	if len(out) > 0 {
		rnd := r.nextInt()
		for i := range out {
			out[i] = byte('a' + rnd%26)
			rnd /= 26
		}
	}
}

// digitTriples[x] holds the three base-26 digits of x (x < 26^3), least
// significant first, one per byte.
var digitTriples = func() *[17576]uint32 {
	var t [17576]uint32
	for x := range uint32(17576) {
		t[x] = x%26 | x/26%26<<8 | x/676<<16
	}
	return &t
}()

// appendExtra appends StringsGenerator.nextExtra: padding such that
// currentSize plus its length averages desiredAverageSize.
func appendExtra(dst []byte, r *javaRandom, currentSize, desiredAverageSize int) []byte {
	return appendExactString(dst, r, extraLen(r, currentSize, desiredAverageSize))
}

// extraLen is the first half of StringsGenerator.nextExtra: it draws the
// length of the padding, whose characters nextExactString then draws.
func extraLen(r *javaRandom, currentSize, desiredAverageSize int) int {
	if currentSize > desiredAverageSize {
		return 0
	}
	desired := desiredAverageSize - currentSize
	delta := int(javaRound(float64(desired) * 0.2))
	size := desired - delta
	if delta != 0 {
		size += int(r.nextIntn(int32(2 * delta)))
	}
	return size
}

// appendCreditCard appends PersonGenerator.nextCreditCard: four
// zero-padded groups of four digits separated by spaces.
func appendCreditCard(dst []byte, r *javaRandom) []byte {
	for i := range 4 {
		if i > 0 {
			dst = append(dst, ' ')
		}
		v := r.nextIntn(10000)
		dst = append(dst, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	return dst
}
