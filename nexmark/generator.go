package nexmark

import (
	"fmt"
	"math"
	"time"
	"unsafe"
)

// Generator produces one split of the Nexmark event sequence.
//
// The global sequence is indexed by event number 0, 1, 2, ... (bounded by
// Config.NumEvents when it is set). Split k of n holds the event numbers
// congruent to k modulo n, in increasing order: splitting is by stride, so
// every split covers the whole event-time range at 1/n of the rate and the
// union of the splits is exactly the unsplit sequence, value for value.
// (The reference's GeneratorConfig.split instead cuts the id range into n
// contiguous pieces that each restart at the base time; see the package
// documentation.)
//
// A Generator is deterministic: the same Config, split and splits always
// produce the same events. It is not safe for concurrent use.
type Generator struct {
	p      *params
	pos    int64 // event number of the next event
	stride int64
	end    int64 // event numbers stop before end
	rnd    javaRandom
	ch     *channelTable
	buf    []byte // scratch for building a person's or auction's strings

	// Bids are allocated in blocks of bidBlock: bidSlab holds the unused
	// Bids of the current block. Their Extra texts are written into arena,
	// a block of arenaBlock bytes, and handed out as strings that point
	// into it (see arenaString).
	bidSlab []Bid
	arena   []byte
}

// bidBlock is how many bids share one allocation for their structs, and
// arenaBlock the size of the allocations their Extra texts share (about 30
// bids' with the default sizes). Allocating bids one by one costs about as
// much as generating them; sharing bounds the memory a single retained bid
// can pin to about 4 KB with the default sizes. Persons and auctions,
// which queries keep in join state, are allocated individually.
const (
	bidBlock   = 16
	arenaBlock = 2048
)

// NewGenerator returns the generator of split number split (0-based) out of
// splits disjoint splits of the sequence described by cfg.
func NewGenerator(cfg Config, split, splits int) (*Generator, error) {
	if splits < 1 || split < 0 || split >= splits {
		return nil, fmt.Errorf("nexmark: invalid split %d of %d", split, splits)
	}
	p, err := newParams(cfg)
	if err != nil {
		return nil, err
	}
	end := int64(math.MaxInt64)
	if p.cfg.NumEvents > 0 {
		end = p.cfg.NumEvents
	}
	return &Generator{
		p:      p,
		pos:    int64(split),
		stride: int64(splits),
		end:    end,
		ch:     channels(),
		buf:    make([]byte, 0, 512),
	}, nil
}

// Config returns the generator's configuration with defaults applied.
func (g *Generator) Config() Config {
	return g.p.cfg
}

// NextEventNumber returns the global event number of the next event, or
// -1 if the split is exhausted.
func (g *Generator) NextEventNumber() int64 {
	if g.pos >= g.end {
		return -1
	}
	return g.pos
}

// Watermark returns a lower bound on the event time of every event the
// generator has yet to produce (the reference's NextEvent.watermark). With
// OutOfOrderGroupSize 1 it is the next event's own time.
func (g *Generator) Watermark() time.Time {
	return msTime(g.p.timestampMs(g.p.watermarkEventNumber(g.pos)))
}

// Next returns the next event of the split, or false when the split is
// exhausted.
func (g *Generator) Next() (Event, bool) {
	if g.pos >= g.end {
		return Event{}, false
	}
	e := g.event(g.pos)
	g.advance()
	return e, true
}

// Fill stores the next events of the split in buf and returns how many it
// stored: len(buf) unless the split runs out, 0 once it has.
func (g *Generator) Fill(buf []Event) int {
	for i := range buf {
		if g.pos >= g.end {
			return i
		}
		buf[i] = g.event(g.pos)
		g.advance()
	}
	return len(buf)
}

// arenaString returns a string of n random characters, nextExactString's,
// written in the current arena block (in a new one if it does not have n
// bytes left). The string points into the block: its bytes are never
// written again, because the arena only appends to a block, and a new
// block replaces a full one.
func (g *Generator) arenaString(n int) string {
	if n == 0 {
		return ""
	}
	if cap(g.arena)-len(g.arena) < n {
		g.arena = make([]byte, 0, max(arenaBlock, n))
	}
	start := len(g.arena)
	g.arena = g.arena[:start+n]
	b := g.arena[start:]
	fillExactString(b, &g.rnd)
	return unsafe.String(unsafe.SliceData(b), n)
}

func (g *Generator) advance() {
	if g.pos > g.end-g.stride {
		g.pos = g.end
	} else {
		g.pos += g.stride
	}
}

// event generates the event with the given global event number, following
// the reference's NexmarkGenerator.nextEvent with the first event id 0: the
// event id is the (out-of-order adjusted) event number, it seeds a fresh
// java.util.Random, and its position within the proportion block chooses
// the event kind.
func (g *Generator) event(eventNumber int64) Event {
	p := g.p
	id := p.adjustedEventNumber(eventNumber)
	ts := p.timestampMs(id)
	g.rnd.setSeed(id ^ p.cfg.Seed)
	rem := id % p.total
	switch {
	case rem < p.person:
		return Event{Person: g.person(id, ts)}
	case rem < p.person+p.auction:
		return Event{Auction: g.auction(eventNumber, id, ts)}
	default:
		return Event{Bid: g.bid(id, ts)}
	}
}

func msTime(ms int64) time.Time {
	return time.UnixMilli(ms).UTC()
}

// person is PersonGenerator.nextPerson.
func (g *Generator) person(id, ts int64) *Person {
	r := &g.rnd
	first := int(r.nextIntn(int32(len(firstNames))))
	last := int(r.nextIntn(int32(len(lastNames))))
	name := personNames[first*len(lastNames)+last]
	// Email, credit card and extra share one allocation.
	b := appendNextString(g.buf[:0], r, 7, ' ')
	b = append(b, '@')
	b = appendNextString(b, r, 5, ' ')
	b = append(b, ".com"...)
	emailEnd := len(b)
	b = appendCreditCard(b, r)
	cardEnd := len(b)
	city := usCities[r.nextIntn(int32(len(usCities)))]
	state := usStates[r.nextIntn(int32(len(usStates)))]
	size := 8 + len(name) + cardEnd + len(city) + len(state)
	b = appendExtra(b, r, size, g.p.cfg.AvgPersonByteSize)
	g.buf = b
	s := string(b)
	return &Person{
		ID:           g.p.lastBase0PersonID(id) + FirstPersonID,
		Name:         name,
		EmailAddress: s[:emailEnd],
		CreditCard:   s[emailEnd:cardEnd],
		City:         city,
		State:        state,
		DateTime:     msTime(ts),
		Extra:        s[cardEnd:],
	}
}

// auction is AuctionGenerator.nextAuction (without the Flink port's
// extended-bid mode).
func (g *Generator) auction(eventNumber, id, ts int64) *Auction {
	p, r := g.p, &g.rnd
	var seller int64
	if r.nextIntn(int32(p.cfg.HotSellersRatio)) > 0 {
		// The first person of the batch of the last hotSellerBatch people.
		seller = p.lastBase0PersonID(id) / hotSellerBatch * hotSellerBatch
	} else {
		seller = p.nextBase0PersonID(id, r)
	}
	category := FirstCategoryID + int64(r.nextIntn(NumCategories))
	initialBid := nextPrice(r)
	expires := ts + g.auctionLengthMs(eventNumber, ts)
	b := appendNextString(g.buf[:0], r, 20, ' ')
	nameEnd := len(b)
	b = appendNextString(b, r, 100, ' ')
	descEnd := len(b)
	reserve := initialBid + nextPrice(r)
	b = appendExtra(b, r, 8+descEnd+8+8+8+8+8, p.cfg.AvgAuctionByteSize)
	g.buf = b
	s := string(b)
	return &Auction{
		ID:          p.lastBase0AuctionID(id) + FirstAuctionID,
		ItemName:    s[:nameEnd],
		Description: s[nameEnd:descEnd],
		InitialBid:  initialBid,
		Reserve:     reserve,
		DateTime:    msTime(ts),
		Expires:     msTime(expires),
		Seller:      seller + FirstPersonID,
		Category:    category,
		Extra:       s[descEnd:],
	}
}

// auctionLengthMs is AuctionGenerator.nextAuctionLengthMs: a random length
// averaging the time until NumInFlightAuctions more auctions have been
// created, so that about that many are open at any time.
func (g *Generator) auctionLengthMs(eventNumber, ts int64) int64 {
	p := g.p
	current := p.adjustedEventNumber(eventNumber)
	eventsForAuctions := int64(p.cfg.NumInFlightAuctions) * p.total / p.auction
	horizonMs := p.timestampMs(current+eventsForAuctions) - ts
	return 1 + nextLongBelow(&g.rnd, max(horizonMs*2, 1))
}

// bid is the Flink BidGenerator.nextBid (which adds channel and url to the
// Beam bid), with the bidder id offset by FirstPersonID once, as in Beam.
func (g *Generator) bid(id, ts int64) *Bid {
	p, r := g.p, &g.rnd
	var auction int64
	if r.nextIntn(int32(p.cfg.HotAuctionRatio)) > 0 {
		// The first auction of the batch of the last hotAuctionBatch.
		auction = p.lastBase0AuctionID(id) / hotAuctionBatch * hotAuctionBatch
	} else {
		auction = p.nextBase0AuctionID(id, r)
	}
	var bidder int64
	if r.nextIntn(int32(p.cfg.HotBiddersRatio)) > 0 {
		// The second person of the batch of the last hotBidderBatch, so
		// that hot bidders and hot sellers differ.
		bidder = p.lastBase0PersonID(id)/hotBidderBatch*hotBidderBatch + 1
	} else {
		bidder = p.nextBase0PersonID(id, r)
	}
	price := nextPrice(r)
	var channel, url string
	if r.nextIntn(hotChannelsRatio) > 0 {
		i := r.nextIntn(int32(len(hotChannels)))
		channel, url = hotChannels[i], g.ch.hotURLs[i]
	} else {
		c := r.nextIntn(channelsNumber)
		channel, url = g.ch.names[c], g.ch.urls[c]
	}
	extra := g.arenaString(extraLen(r, 8+8+8+8, p.cfg.AvgBidByteSize))
	if len(g.bidSlab) == 0 {
		g.bidSlab = make([]Bid, bidBlock)
	}
	bid := &g.bidSlab[0]
	g.bidSlab = g.bidSlab[1:]
	*bid = Bid{
		Auction:  auction + FirstAuctionID,
		Bidder:   bidder + FirstPersonID,
		Price:    price,
		Channel:  channel,
		URL:      url,
		DateTime: msTime(ts),
		Extra:    extra,
	}
	return bid
}
