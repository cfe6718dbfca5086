package nexmark

import (
	"fmt"
	"math"
	"time"
)

// Id origins and category count of the reference (GeneratorConfig and
// AuctionGenerator). Ids start above zero so that queries find matches even
// on small data sets.
const (
	// FirstPersonID is the id of the first person.
	FirstPersonID = 1000
	// FirstAuctionID is the id of the first auction.
	FirstAuctionID = 1000
	// FirstCategoryID is the smallest auction category.
	FirstCategoryID = 10
	// NumCategories is the number of auction categories.
	NumCategories = 5
)

// Fixed tuning constants of the reference model generators.
const (
	// personIDLead and auctionIDLead are how many not-yet-created person
	// and auction ids a random pick may run ahead of the last created one
	// (PersonGenerator.PERSON_ID_LEAD, AuctionGenerator.AUCTION_ID_LEAD).
	personIDLead  = 10
	auctionIDLead = 10
	// hotSellerBatch, hotAuctionBatch and hotBidderBatch are the
	// reference's HOT_SELLER_RATIO, HOT_AUCTION_RATIO and HOT_BIDDER_RATIO:
	// a hot pick is the first (second for bidders) id of the batch of this
	// many recent ids.
	hotSellerBatch  = 100
	hotAuctionBatch = 100
	hotBidderBatch  = 100
)

// DefaultBaseTime is the event time of the first event unless
// Config.BaseTime says otherwise: 2015-07-15T00:00:00Z, the BASE_TIME the
// Beam reference uses when it does not use wallclock time.
var DefaultBaseTime = time.Date(2015, time.July, 15, 0, 0, 0, 0, time.UTC)

// RateShape is how the event rate moves between FirstEventRate and
// NextEventRate (the reference's NexmarkUtils.RateShape).
type RateShape uint8

// The rate shapes. They only matter when FirstEventRate != NextEventRate.
const (
	// RateSquare alternates between the two rates, each for half of
	// RatePeriodSec.
	RateSquare RateShape = iota
	// RateSine follows a cosine from FirstEventRate to NextEventRate and
	// back over RatePeriodSec, in ten steps.
	RateSine
)

// String returns "square" or "sine".
func (s RateShape) String() string {
	if s == RateSine {
		return "sine"
	}
	return "square"
}

// Config controls the generator. It mirrors the generator-related fields
// of the reference NexmarkConfiguration. A zero field takes the default
// shown (DefaultConfig returns them all filled in), so a zero Config is the
// reference's default configuration with an unbounded event count; it also
// means that proportions, rates, sizes and ratios cannot be set to zero.
// Negative values are rejected.
type Config struct {
	// NumEvents is the total number of events over all splits; 0 means
	// unbounded.
	NumEvents int64
	// FirstEventRate is the event rate, in events per second of event
	// time, at the start of the stream (default 10_000). It spaces the
	// timestamps; see RateLimited for wallclock pacing.
	FirstEventRate int
	// NextEventRate is the rate the shape moves to (default
	// FirstEventRate, which gives a constant rate).
	NextEventRate int
	// RateShape is the shape of the rate curve when the two rates differ
	// (default RateSquare, as in the Flink reference).
	RateShape RateShape
	// RatePeriodSec is the period of the rate curve in seconds (default
	// 600).
	RatePeriodSec int

	// PersonProportion, AuctionProportion and BidProportion are the
	// relative frequencies of the event kinds (default 1:3:46). Within
	// every block of their sum, events come in the order persons, auctions,
	// bids.
	PersonProportion  int
	AuctionProportion int
	BidProportion     int

	// AvgPersonByteSize, AvgAuctionByteSize and AvgBidByteSize are the
	// idealized average event sizes the Extra padding aims for (defaults
	// 200, 500, 100).
	AvgPersonByteSize  int
	AvgAuctionByteSize int
	AvgBidByteSize     int

	// HotAuctionRatio is the ratio of bids on 'hot' auctions to bids on
	// any other auction (default 2).
	HotAuctionRatio int
	// HotSellersRatio is the ratio of auctions by 'hot' sellers to those
	// by any other person (default 4).
	HotSellersRatio int
	// HotBiddersRatio is the ratio of bids by 'hot' bidders to those by
	// any other person (default 4).
	HotBiddersRatio int
	// NumActivePeople is how many of the most recent people are
	// considered for auctions and bids (default 1000).
	NumActivePeople int
	// NumInFlightAuctions is the average number of auctions open at any
	// time (default 100). It sets how far back a bid may reach and how
	// long auctions last.
	NumInFlightAuctions int
	// OutOfOrderGroupSize is the size of the groups of consecutive events
	// whose ids and timestamps are permuted (default 1: in order).
	OutOfOrderGroupSize int64

	// BaseTime is the event time of the first event (default
	// DefaultBaseTime). Events carry millisecond precision; a finer
	// BaseTime is truncated to the millisecond.
	BaseTime time.Time
	// Seed is XORed into every per-event seed. Zero, the default,
	// reproduces the reference, which seeds each event with its id; any
	// other value gives a different but equally deterministic data set.
	Seed int64

	// RateLimited makes the Source pace its output in wallclock time to
	// the event rate, as the Flink reference source does, instead of
	// producing events as fast as it is read. The Generator ignores it.
	RateLimited bool
}

// DefaultConfig returns the reference defaults with every field filled in
// and an unbounded event count.
func DefaultConfig() Config {
	return Config{}.withDefaults()
}

func (c Config) withDefaults() Config {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.FirstEventRate, 10_000)
	def(&c.NextEventRate, c.FirstEventRate)
	def(&c.RatePeriodSec, 600)
	def(&c.PersonProportion, 1)
	def(&c.AuctionProportion, 3)
	def(&c.BidProportion, 46)
	def(&c.AvgPersonByteSize, 200)
	def(&c.AvgAuctionByteSize, 500)
	def(&c.AvgBidByteSize, 100)
	def(&c.HotAuctionRatio, 2)
	def(&c.HotSellersRatio, 4)
	def(&c.HotBiddersRatio, 4)
	def(&c.NumActivePeople, 1000)
	def(&c.NumInFlightAuctions, 100)
	if c.OutOfOrderGroupSize == 0 {
		c.OutOfOrderGroupSize = 1
	}
	if c.BaseTime.IsZero() {
		c.BaseTime = DefaultBaseTime
	}
	return c
}

// Validate reports whether c, with defaults applied, is usable.
func (c Config) Validate() error {
	_, err := newParams(c)
	return err
}

// params is a Config with defaults applied and the derived quantities the
// generator needs (the reference's GeneratorConfig).
type params struct {
	cfg Config

	person, auction, total int64 // proportions and their sum
	baseMs                 int64 // BaseTime in ms since the epoch

	// Constant rate (the Flink reference): delayUs is the inter-event
	// delay in microseconds, kept as a double as Flink does.
	delayUs float64
	// Stepped rate (the Beam reference, used when the rates differ).
	stepDelaysUs   []int64
	stepLengthSec  int64
	eventsPerEpoch int64
	epochPeriodMs  int64
}

func newParams(c Config) (*params, error) {
	c = c.withDefaults()
	for _, f := range []struct {
		name string
		v    int
	}{
		{"FirstEventRate", c.FirstEventRate},
		{"NextEventRate", c.NextEventRate},
		{"RatePeriodSec", c.RatePeriodSec},
		{"PersonProportion", c.PersonProportion},
		{"AuctionProportion", c.AuctionProportion},
		{"BidProportion", c.BidProportion},
		{"AvgPersonByteSize", c.AvgPersonByteSize},
		{"AvgAuctionByteSize", c.AvgAuctionByteSize},
		{"AvgBidByteSize", c.AvgBidByteSize},
		{"HotAuctionRatio", c.HotAuctionRatio},
		{"HotSellersRatio", c.HotSellersRatio},
		{"HotBiddersRatio", c.HotBiddersRatio},
		{"NumActivePeople", c.NumActivePeople},
		{"NumInFlightAuctions", c.NumInFlightAuctions},
	} {
		if f.v < 0 || f.v > math.MaxInt32/2 {
			return nil, fmt.Errorf("nexmark: Config.%s = %d out of range", f.name, f.v)
		}
	}
	if c.NumEvents < 0 {
		return nil, fmt.Errorf("nexmark: Config.NumEvents = %d is negative", c.NumEvents)
	}
	if c.OutOfOrderGroupSize < 0 {
		return nil, fmt.Errorf("nexmark: Config.OutOfOrderGroupSize = %d is negative", c.OutOfOrderGroupSize)
	}
	if c.RateShape != RateSquare && c.RateShape != RateSine {
		return nil, fmt.Errorf("nexmark: unknown RateShape %d", c.RateShape)
	}
	if c.PersonProportion+c.AuctionProportion+c.BidProportion > math.MaxInt32/2 {
		return nil, fmt.Errorf("nexmark: proportions too large")
	}
	p := &params{
		cfg:     c,
		person:  int64(c.PersonProportion),
		auction: int64(c.AuctionProportion),
		total:   int64(c.PersonProportion + c.AuctionProportion + c.BidProportion),
		baseMs:  c.BaseTime.UnixMilli(),
	}
	if c.FirstEventRate == c.NextEventRate {
		// Flink's GeneratorConfig: 1e6 / rate * numEventGenerators with a
		// single (global) generator timeline.
		p.delayUs = 1_000_000.0 / float64(c.FirstEventRate)
		return p, nil
	}
	// Beam's RateShape.interEventDelayUs and stepLengthSec.
	n := 2
	if c.RateShape == RateSine {
		n = 10
		mid := float64(c.FirstEventRate+c.NextEventRate) / 2
		amp := float64(c.FirstEventRate-c.NextEventRate) / 2
		for i := 0; i < n; i++ {
			r := 2 * math.Pi * float64(i) / float64(n)
			p.stepDelaysUs = append(p.stepDelaysUs, rateToPeriodUs(javaRound(mid+amp*math.Cos(r))))
		}
	} else {
		p.stepDelaysUs = []int64{rateToPeriodUs(int64(c.FirstEventRate)), rateToPeriodUs(int64(c.NextEventRate))}
	}
	p.stepLengthSec = int64((c.RatePeriodSec + n - 1) / n)
	for _, d := range p.stepDelaysUs {
		k := p.stepLengthSec * 1_000_000 / d
		p.eventsPerEpoch += k
		p.epochPeriodMs += k * d / 1000
	}
	if p.eventsPerEpoch == 0 {
		return nil, fmt.Errorf("nexmark: RatePeriodSec %d too short for the event rates", c.RatePeriodSec)
	}
	return p, nil
}

// rateToPeriodUs is Beam's RateUnit.PER_SECOND.rateToPeriodUs: the rounded
// inter-event delay in microseconds.
func rateToPeriodUs(rate int64) int64 {
	if rate <= 0 {
		rate = 1
	}
	return (1_000_000 + rate/2) / rate
}

// timestampMs is the event time, in ms since the epoch, of the event with
// the given event number (GeneratorConfig.timestampForEvent).
func (p *params) timestampMs(eventNumber int64) int64 {
	if p.stepDelaysUs == nil {
		return p.baseMs + int64(float64(eventNumber)*p.delayUs)/1000
	}
	epoch := eventNumber / p.eventsPerEpoch
	n := eventNumber % p.eventsPerEpoch
	var offsetMs int64
	for _, d := range p.stepDelaysUs {
		k := p.stepLengthSec * 1_000_000 / d
		if n < k {
			return p.baseMs + epoch*p.epochPeriodMs + offsetMs + n*d/1000
		}
		n -= k
		offsetMs += k * d / 1000
	}
	panic("nexmark: internal error: eventsPerEpoch inconsistent")
}

// adjustedEventNumber is GeneratorConfig.nextAdjustedEventNumber: the
// event number, permuted within groups of OutOfOrderGroupSize.
func (p *params) adjustedEventNumber(eventNumber int64) int64 {
	n := p.cfg.OutOfOrderGroupSize
	if n == 1 {
		return eventNumber
	}
	return eventNumber/n*n + eventNumber*953%n
}

// watermarkEventNumber is GeneratorConfig.nextEventNumberForWatermark.
func (p *params) watermarkEventNumber(eventNumber int64) int64 {
	n := p.cfg.OutOfOrderGroupSize
	return eventNumber / n * n
}

// lastBase0PersonID is PersonGenerator.lastBase0PersonId: the last person
// id (minus FirstPersonID) created at or before eventID.
func (p *params) lastBase0PersonID(eventID int64) int64 {
	epoch := eventID / p.total
	offset := eventID % p.total
	if offset >= p.person {
		offset = p.person - 1
	}
	return epoch*p.person + offset
}

// lastBase0AuctionID is AuctionGenerator.lastBase0AuctionId.
func (p *params) lastBase0AuctionID(eventID int64) int64 {
	epoch := eventID / p.total
	offset := eventID % p.total
	switch {
	case offset < p.person:
		epoch--
		offset = p.auction - 1
	case offset >= p.person+p.auction:
		offset = p.auction - 1
	default:
		offset -= p.person
	}
	return epoch*p.auction + offset
}

// nextBase0PersonID is PersonGenerator.nextBase0PersonId: a random recent
// person, possibly up to personIDLead ahead of the last one.
func (p *params) nextBase0PersonID(eventID int64, r *javaRandom) int64 {
	numPeople := p.lastBase0PersonID(eventID) + 1
	active := min(numPeople, int64(p.cfg.NumActivePeople))
	n := nextLongBelow(r, active+personIDLead)
	return numPeople - active + n
}

// nextBase0AuctionID is AuctionGenerator.nextBase0AuctionId: a random
// auction likely to be still open, possibly up to auctionIDLead ahead.
func (p *params) nextBase0AuctionID(eventID int64, r *javaRandom) int64 {
	maxAuction := p.lastBase0AuctionID(eventID)
	minAuction := max(maxAuction-int64(p.cfg.NumInFlightAuctions), 0)
	return minAuction + nextLongBelow(r, maxAuction-minAuction+1+auctionIDLead)
}

// nextLongBelow is LongGenerator.nextLong: a value in [0, n), drawn with
// nextInt when n fits (and with the reference's skewed nextLong fallback
// otherwise).
func nextLongBelow(r *javaRandom, n int64) int64 {
	if n < math.MaxInt32 {
		return int64(r.nextIntn(int32(n)))
	}
	v := r.nextLong() % n
	if v < 0 {
		v = -v
	}
	return v
}

// nextPrice is PriceGenerator.nextPrice, Math.round(Math.pow(10.0,
// random.nextDouble() * 6.0) * 100.0): 10^(6u) dollars in cents, for u
// uniform in [0, 1), so between 100 and 100,000,000 cents.
//
// math.Pow is slow, so the price is first estimated by pow10 (within a
// relative 1e-14 of the exact value, as is the Java expression: Math.pow is
// within 1 ulp), so both round to the same integer unless the estimate lies
// within 1e-5 of a rounding boundary (x.5); only then, about once in 50,000
// prices, is math.Pow used. Over the millions of prices compared, math.Pow
// has matched Java's Math.pow.
func nextPrice(r *javaRandom) int64 {
	y := r.nextDouble() * 6.0
	v := pow10(y) * 100.0
	fl := math.Floor(v)
	f := v - fl
	if f > 0.5-1e-5 && f < 0.5+1e-5 {
		return javaRound(math.Pow(10.0, y) * 100.0)
	}
	// v is at most 1e8, so javaRound(v) is the floor plus one for a
	// fraction above one half.
	if f > 0.5 {
		fl++
	}
	return int64(fl)
}

// pow10 returns 10^y for y in [0, 6), to a relative error below 1e-14 (in
// fact about 2e-16): 10^k for the integer part k, times 10^(j/256) from a
// table for the next eight bits of the fraction, times 10^r for the rest
// r < 1/256 from a degree-5 Taylor polynomial of exp(r ln 10), whose
// truncation error is below (ln(10)/256)^6/720 < 1e-15. The splits of y are
// exact. It is about three times as fast as math.Exp.
func pow10(y float64) float64 {
	k := int(y)
	frac := y - float64(k)
	j := int(frac * 256)
	x := (frac - float64(j)*(1.0/256)) * math.Ln10
	p := 1 + x*(1+x*(1.0/2+x*(1.0/6+x*(1.0/24+x*(1.0/120)))))
	return pow10Int[k&7] * pow10Frac[j&255] * p
}

var pow10Int = [8]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7}

// pow10Frac[j] is 10^(j/256), within an ulp.
var pow10Frac = func() (t [256]float64) {
	for j := range t {
		t[j] = math.Pow(10, float64(j)/256)
	}
	return t
}()
