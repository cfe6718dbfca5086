// Package queries implements the Nexmark benchmark queries q0 to q8 on Spate,
// after the Flink SQL versions in github.com/nexmark/nexmark
// (nexmark-flink/src/main/resources/queries), using only Spate's public API.
//
// Every query takes the stream of Nexmark events, with event-time
// timestamps and watermarks already assigned (see Events), and returns its
// results. Window sizes are the Flink project's: q5 counts bids per auction
// in 10-second windows sliding by 2 seconds, q7 and q8 use 10-second
// tumbling windows.
//
// Queries whose SQL result is an updating table (q4's average per
// category, q6's average per seller) emit a changelog: one record per
// update, the last one per key being the final value.
package queries

import (
	"cmp"
	"math"
	"slices"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/nexmark"
)

// Window parameters of the windowed queries, in milliseconds.
const (
	Q5WindowMs = 10_000 // q5 sliding window size
	Q5SlideMs  = 2_000  // q5 slide
	Q7WindowMs = 10_000 // q7 tumbling window
	Q8WindowMs = 10_000 // q8 tumbling window
	Q6LastN    = 10     // q6 averages a seller's last this many winning bids
)

// Events reads the Nexmark events of cfg from a source at the
// environment's parallelism, with event-time timestamps from the events'
// DateTime and watermarks that trail the largest timestamp seen by one
// millisecond (each split of the generator is in event-time order).
func Events(env *spate.Env, cfg nexmark.Config) spate.Stream[nexmark.Event] {
	ws := spate.ForBoundedOutOfOrderness[nexmark.Event](0).
		WithTimestampAssigner(func(e nexmark.Event, _ int64) int64 { return e.UnixMilli() })
	return spate.FromSource(env, "Nexmark", nexmark.NewSource(cfg), ws)
}

// Q0Result is a bid, passed through unchanged (q0: pass-through).
type Q0Result struct {
	Auction  int64  `json:"auction"`
	Bidder   int64  `json:"bidder"`
	Price    int64  `json:"price"`
	DateTime int64  `json:"dateTime"` // ms since the epoch
	Extra    string `json:"extra"`
}

// Q0 is the pass-through query: every bid.
func Q0(_ *spate.Env, events spate.Stream[nexmark.Event]) spate.Stream[Q0Result] {
	return spate.FlatMap(events, func(e nexmark.Event, emit func(Q0Result)) {
		if b := e.Bid; b != nil {
			emit(Q0Result{Auction: b.Auction, Bidder: b.Bidder, Price: b.Price, DateTime: b.DateTime.UnixMilli(), Extra: b.Extra})
		}
	}).Name("Q0")
}

// DollarToEuro is q1's exchange rate.
const DollarToEuro = 0.908

// Q1Result is a bid with its price in euros.
type Q1Result struct {
	Auction  int64   `json:"auction"`
	Bidder   int64   `json:"bidder"`
	Price    float64 `json:"price"`
	DateTime int64   `json:"dateTime"`
	Extra    string  `json:"extra"`
}

// Q1 converts every bid's price from dollars to euros.
func Q1(_ *spate.Env, events spate.Stream[nexmark.Event]) spate.Stream[Q1Result] {
	return spate.FlatMap(events, func(e nexmark.Event, emit func(Q1Result)) {
		if b := e.Bid; b != nil {
			emit(Q1Result{Auction: b.Auction, Bidder: b.Bidder, Price: DollarToEuro * float64(b.Price), DateTime: b.DateTime.UnixMilli(), Extra: b.Extra})
		}
	}).Name("Q1")
}

// Q2Result is a bid on a selected auction.
type Q2Result struct {
	Auction int64 `json:"auction"`
	Price   int64 `json:"price"`
}

// Q2 selects the bids on auctions whose id is a multiple of 123.
func Q2(_ *spate.Env, events spate.Stream[nexmark.Event]) spate.Stream[Q2Result] {
	return spate.FlatMap(events, func(e nexmark.Event, emit func(Q2Result)) {
		if b := e.Bid; b != nil && b.Auction%123 == 0 {
			emit(Q2Result{Auction: b.Auction, Price: b.Price})
		}
	}).Name("Q2")
}

// Q3Result is a seller in Oregon, Idaho or California and one of their
// auctions in category 10.
type Q3Result struct {
	Name  string `json:"name"`
	City  string `json:"city"`
	State string `json:"state"`
	ID    int64  `json:"id"` // the auction
}

type q3Person struct {
	ID                int64
	Name, City, State string
}

type q3Auction struct{ ID, Seller int64 }

// Q3 joins the people of OR, ID and CA with the auctions of category 10
// they sell (an unwindowed inner join: both sides are kept in keyed state).
func Q3(_ *spate.Env, events spate.Stream[nexmark.Event]) spate.Stream[Q3Result] {
	persons := spate.FlatMap(events, func(e nexmark.Event, emit func(q3Person)) {
		if p := e.Person; p != nil && (p.State == "OR" || p.State == "ID" || p.State == "CA") {
			emit(q3Person{ID: p.ID, Name: p.Name, City: p.City, State: p.State})
		}
	}).Name("Q3 persons")
	auctions := spate.FlatMap(events, func(e nexmark.Event, emit func(q3Auction)) {
		if a := e.Auction; a != nil && a.Category == 10 {
			emit(q3Auction{ID: a.ID, Seller: a.Seller})
		}
	}).Name("Q3 auctions")
	return spate.KeyedCoProcess(
		spate.KeyBy(persons, func(p q3Person) int64 { return p.ID }),
		spate.KeyBy(auctions, func(a q3Auction) int64 { return a.Seller }),
		func() spate.KeyedCoProcessFunction[int64, q3Person, q3Auction, Q3Result] { return &q3Join{} },
	).Name("Q3 join")
}

type q3Join struct {
	person  *spate.ValueState[int64, q3Person]
	pending *spate.ListState[int64, int64]
}

func (j *q3Join) Open(ctx *spate.KeyedContext[int64, Q3Result]) error {
	j.person = spate.NewValueState[q3Person](ctx.State(), "person")
	j.pending = spate.NewListState[int64](ctx.State(), "auctions")
	return nil
}

func (j *q3Join) ProcessElement1(ctx *spate.KeyedContext[int64, Q3Result], p q3Person) error {
	j.person.Update(p)
	for _, id := range j.pending.Get() {
		ctx.Collect(Q3Result{Name: p.Name, City: p.City, State: p.State, ID: id})
	}
	j.pending.Clear()
	return nil
}

func (j *q3Join) ProcessElement2(ctx *spate.KeyedContext[int64, Q3Result], a q3Auction) error {
	if p, ok := j.person.Value(); ok {
		ctx.Collect(Q3Result{Name: p.Name, City: p.City, State: p.State, ID: a.ID})
	} else {
		j.pending.Add(a.ID)
	}
	return nil
}

// auctionInfo and bidInfo are the parts of auctions and bids that the
// winning-bids core of q4 and q6 needs; times are ms since the epoch.
type auctionInfo struct {
	ID, Seller, Category, DateTime, Expires int64
}

type bidInfo struct {
	Auction, Price, DateTime int64
}

// winningBid is the highest bid on an auction made while it was open
// (between its DateTime and Expires, both included; the earliest of equal
// highest bids, as q9's SQL orders them), emitted when the auction closes,
// at its Expires. BidTime is the winning bid's DateTime.
type winningBid struct {
	Auction, Seller, Category, Price, Expires, BidTime int64
}

// winningBids is the core shared by q4 and q6: it joins each auction with
// the bids on it made while it was open and emits, when the watermark
// passes the auction's expiry, its highest bid. Auctions without such bids
// emit nothing.
func winningBids(events spate.Stream[nexmark.Event]) spate.Stream[winningBid] {
	auctions := spate.FlatMap(events, func(e nexmark.Event, emit func(auctionInfo)) {
		if a := e.Auction; a != nil {
			emit(auctionInfo{ID: a.ID, Seller: a.Seller, Category: a.Category, DateTime: a.DateTime.UnixMilli(), Expires: a.Expires.UnixMilli()})
		}
	}).Name("Auctions")
	bids := spate.FlatMap(events, func(e nexmark.Event, emit func(bidInfo)) {
		if b := e.Bid; b != nil {
			emit(bidInfo{Auction: b.Auction, Price: b.Price, DateTime: b.DateTime.UnixMilli()})
		}
	}).Name("Bids")
	return spate.KeyedCoProcess(
		spate.KeyBy(auctions, func(a auctionInfo) int64 { return a.ID }),
		spate.KeyBy(bids, func(b bidInfo) int64 { return b.Auction }),
		func() spate.KeyedCoProcessFunction[int64, auctionInfo, bidInfo, winningBid] { return &winner{} },
	).Name("WinningBids")
}

type winner struct {
	// auction is the open auction and its best bid so far, in one state
	// so that a bid costs one state lookup.
	auction *spate.ValueState[int64, openAuction]
	pending *spate.ListState[int64, bidInfo] // bids seen before their auction
}

// pendingPurgeMs is the granularity of the timers that drop the bids that
// no auction can accept any more.
const pendingPurgeMs = 1000

type openAuction struct {
	Auction  auctionInfo
	Best     int64 // the highest price offered while open, if HasBest
	BestTime int64 // the time of the earliest bid at that price
	HasBest  bool
}

func (w *winner) Open(ctx *spate.KeyedContext[int64, winningBid]) error {
	w.auction = spate.NewValueState[openAuction](ctx.State(), "auction")
	w.pending = spate.NewListState[bidInfo](ctx.State(), "pending")
	return nil
}

// offer reports whether b is a new best bid of o, and makes it so. Of
// equal highest bids the earliest wins, whatever order they arrive in.
func offer(o *openAuction, b bidInfo) bool {
	if b.DateTime < o.Auction.DateTime || b.DateTime > o.Auction.Expires {
		return false
	}
	if o.HasBest && (b.Price < o.Best || b.Price == o.Best && b.DateTime >= o.BestTime) {
		return false
	}
	o.Best, o.BestTime, o.HasBest = b.Price, b.DateTime, true
	return true
}

func (w *winner) ProcessElement1(ctx *spate.KeyedContext[int64, winningBid], a auctionInfo) error {
	o := openAuction{Auction: a}
	ctx.RegisterEventTimeTimer(a.Expires)
	for _, b := range w.pending.Get() {
		offer(&o, b)
	}
	w.pending.Clear()
	w.auction.Update(o)
	return nil
}

func (w *winner) ProcessElement2(ctx *spate.KeyedContext[int64, winningBid], b bidInfo) error {
	if o, ok := w.auction.Value(); ok {
		if offer(&o, b) {
			w.auction.Update(o)
		}
		return nil
	}
	// The auction has not arrived (yet): it may still, from another split,
	// while the watermark is below the bid's time. Once the watermark
	// passes it, the auction can only be later than the bid. (Most such
	// bids are on auctions that have closed already.) The bid is dropped
	// at the end of its second of event time rather than at its own
	// millisecond, so that the bids of a key share a timer per second.
	w.pending.Add(b)
	ctx.RegisterEventTimeTimer(b.DateTime - mod(b.DateTime, pendingPurgeMs) + pendingPurgeMs)
	return nil
}

func (w *winner) OnTimer(ctx *spate.KeyedContext[int64, winningBid], ts int64) error {
	o, ok := w.auction.Value()
	if !ok {
		// Drop the bids that no auction arriving from now on can accept.
		bids := w.pending.Get()
		kept := bids[:0:0]
		for _, b := range bids {
			if b.DateTime > ts {
				kept = append(kept, b)
			}
		}
		if len(kept) == 0 {
			w.pending.Clear()
		} else {
			w.pending.Update(kept)
		}
		return nil
	}
	a := o.Auction
	if ts < a.Expires {
		return nil
	}
	if o.HasBest {
		ctx.Collect(winningBid{Auction: a.ID, Seller: a.Seller, Category: a.Category, Price: o.Best, Expires: a.Expires, BidTime: o.BestTime})
	}
	w.auction.Clear()
	w.pending.Clear()
	return nil
}

// Q4Result is the average winning price of the closed auctions of a
// category, over Count auctions (integer division, as SQL's AVG of BIGINT).
type Q4Result struct {
	Category int64 `json:"id"`
	Final    int64 `json:"final"`
	Count    int64 `json:"count"`
}

// Q4 is the average closing price per category: the winning bid of each
// auction (see winningBids), averaged per category. It is a rolling
// average: a new value for the category each time one of its auctions
// closes with a bid.
func Q4(_ *spate.Env, events spate.Stream[nexmark.Event]) spate.Stream[Q4Result] {
	type acc struct{ Sum, Count int64 }
	keyed := spate.KeyBy(winningBids(events), func(w winningBid) int64 { return w.Category })
	return spate.KeyedProcess(keyed, func() spate.KeyedProcessFunction[int64, winningBid, Q4Result] {
		var st *spate.ValueState[int64, acc]
		return openKeyed(func(ctx *spate.KeyedContext[int64, Q4Result]) {
			st = spate.NewValueState[acc](ctx.State(), "avg")
		}, func(ctx *spate.KeyedContext[int64, Q4Result], w winningBid) error {
			a, _ := st.Value()
			a.Sum += w.Price
			a.Count++
			st.Update(a)
			ctx.Collect(Q4Result{Category: w.Category, Final: a.Sum / a.Count, Count: a.Count})
			return nil
		})
	}).Name("Q4 average")
}

// keyedFn is a keyed process function made of an open and a process
// function.
type keyedFn[K comparable, T, O any] struct {
	open    func(ctx *spate.KeyedContext[K, O])
	process func(ctx *spate.KeyedContext[K, O], v T) error
}

func openKeyed[K comparable, T, O any](open func(ctx *spate.KeyedContext[K, O]), process func(ctx *spate.KeyedContext[K, O], v T) error) spate.KeyedProcessFunction[K, T, O] {
	return &keyedFn[K, T, O]{open: open, process: process}
}

func (f *keyedFn[K, T, O]) Open(ctx *spate.KeyedContext[K, O]) error {
	f.open(ctx)
	return nil
}

func (f *keyedFn[K, T, O]) ProcessElement(ctx *spate.KeyedContext[K, O], v T) error {
	return f.process(ctx, v)
}

// Q5Result is an auction with the most bids (Num) in the sliding window
// [WindowStart, WindowEnd); ties all appear.
type Q5Result struct {
	Auction     int64 `json:"auction"`
	Num         int64 `json:"num"`
	WindowStart int64 `json:"starttime"`
	WindowEnd   int64 `json:"endtime"`
}

type countBids struct{}

func (countBids) CreateAccumulator() int64       { return 0 }
func (countBids) Add(acc int64, _ bidInfo) int64 { return acc + 1 }
func (countBids) Result(acc int64) int64         { return acc }
func (countBids) Merge(a, b int64) int64         { return a + b }

// Q5 is "hot items": per 10-second window sliding by 2 seconds, the
// auctions with the most bids.
func Q5(_ *spate.Env, events spate.Stream[nexmark.Event]) spate.Stream[Q5Result] {
	bids := spate.FlatMap(events, func(e nexmark.Event, emit func(bidInfo)) {
		if b := e.Bid; b != nil {
			emit(bidInfo{Auction: b.Auction, Price: b.Price, DateTime: b.DateTime.UnixMilli()})
		}
	}).Name("Bids")
	counts := spate.AggregateWindowWith(
		spate.Windowed(spate.KeyBy(bids, func(b bidInfo) int64 { return b.Auction }),
			spate.SlidingEventTimeWindows(Q5WindowMs*1e6, Q5SlideMs*1e6)),
		countBids{},
		func(auction int64, w spate.Window, n int64) Q5Result {
			return Q5Result{Auction: auction, Num: n, WindowStart: w.Start, WindowEnd: w.End}
		}).Name("Q5 counts")
	byWindow := spate.KeyBy(counts, func(r Q5Result) int64 { return r.WindowEnd })
	return spate.KeyedProcess(byWindow, func() spate.KeyedProcessFunction[int64, Q5Result, Q5Result] { return &q5Max{} }).Name("Q5 max")
}

// q5Max gathers the counts of a window and, once the watermark has passed
// the window's end (so that every count has arrived), emits the largest.
type q5Max struct {
	counts *spate.ListState[int64, Q5Result]
}

func (m *q5Max) Open(ctx *spate.KeyedContext[int64, Q5Result]) error {
	m.counts = spate.NewListState[Q5Result](ctx.State(), "counts")
	return nil
}

func (m *q5Max) ProcessElement(ctx *spate.KeyedContext[int64, Q5Result], r Q5Result) error {
	m.counts.Add(r)
	ctx.RegisterEventTimeTimer(r.WindowEnd - 1)
	return nil
}

func (m *q5Max) OnTimer(ctx *spate.KeyedContext[int64, Q5Result], _ int64) error {
	counts := m.counts.Get()
	var most int64
	for _, r := range counts {
		most = max(most, r.Num)
	}
	for _, r := range counts {
		if r.Num == most {
			ctx.Collect(r)
		}
	}
	m.counts.Clear()
	return nil
}

// Q6Result is the average selling price of a seller's last (up to) ten
// winning bids, emitted when Auction closes.
type Q6Result struct {
	Seller   int64 `json:"seller"`
	AvgPrice int64 `json:"avg_price"`
	Auction  int64 `json:"auction"`
}

// Q6 is the average selling price per seller over the last ten winning
// bids of their closed auctions, emitted at each close, as Beam's Query6
// and the Nexmark SQL (AVG(price) OVER (PARTITION BY seller ORDER BY the
// winning bid's time)) define it: "last" is by the winning bid's time
// (then price), not by when the auction closed, so an auction that closes
// late with an early winning bid may not count at all. Closes are taken in
// event-time order (the auctions' expiry, then id), so the output is
// deterministic whatever the parallelism. The average is SQL's AVG of
// BIGINT: integer division.
func Q6(_ *spate.Env, events spate.Stream[nexmark.Event]) spate.Stream[Q6Result] {
	keyed := spate.KeyBy(winningBids(events), func(w winningBid) int64 { return w.Seller })
	return spate.KeyedProcess(keyed, func() spate.KeyedProcessFunction[int64, winningBid, Q6Result] { return &q6Avg{} }).Name("Q6 average")
}

type q6Avg struct {
	pending *spate.ListState[int64, winningBid]
	// last holds the seller's last Q6LastN winning bids, ordered by time.
	last *spate.ListState[int64, timedPrice]
}

// timedPrice is a winning bid's time and price.
type timedPrice struct{ Time, Price int64 }

func (q *q6Avg) Open(ctx *spate.KeyedContext[int64, Q6Result]) error {
	q.pending = spate.NewListState[winningBid](ctx.State(), "pending")
	q.last = spate.NewListState[timedPrice](ctx.State(), "last")
	return nil
}

func (q *q6Avg) ProcessElement(ctx *spate.KeyedContext[int64, Q6Result], w winningBid) error {
	q.pending.Add(w)
	ctx.RegisterEventTimeTimer(w.Expires)
	return nil
}

func (q *q6Avg) OnTimer(ctx *spate.KeyedContext[int64, Q6Result], ts int64) error {
	var due, rest []winningBid
	for _, w := range q.pending.Get() {
		if w.Expires <= ts {
			due = append(due, w)
		} else {
			rest = append(rest, w)
		}
	}
	if len(rest) == 0 {
		q.pending.Clear()
	} else {
		q.pending.Update(rest)
	}
	sortClosed(due)
	last := slices.Clone(q.last.Get())
	for _, w := range due {
		last = addLast(last, timedPrice{Time: w.BidTime, Price: w.Price})
		ctx.Collect(Q6Result{Seller: w.Seller, AvgPrice: averagePrice(last), Auction: w.Auction})
	}
	q.last.Update(last)
	return nil
}

// sortClosed orders winning bids as their auctions close.
func sortClosed(ws []winningBid) {
	slices.SortFunc(ws, func(a, b winningBid) int {
		return cmp.Or(cmp.Compare(a.Expires, b.Expires), cmp.Compare(a.Auction, b.Auction))
	})
}

// addLast inserts p into last, ordered by time then price (Beam's
// Bid.ASCENDING_TIME_THEN_PRICE), and keeps the latest Q6LastN.
func addLast(last []timedPrice, p timedPrice) []timedPrice {
	i, _ := slices.BinarySearchFunc(last, p, compareTimedPrice)
	last = slices.Insert(last, i, p)
	if len(last) > Q6LastN {
		last = slices.Delete(last, 0, len(last)-Q6LastN)
	}
	return last
}

func compareTimedPrice(a, b timedPrice) int {
	return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.Price, b.Price))
}

func averagePrice(ps []timedPrice) int64 {
	var s int64
	for _, p := range ps {
		s += p.Price
	}
	return s / int64(len(ps))
}

// Q7Result is a bid with the highest price of a 10-second window.
type Q7Result struct {
	Auction  int64  `json:"auction"`
	Bidder   int64  `json:"bidder"`
	Price    int64  `json:"price"`
	DateTime int64  `json:"dateTime"`
	Extra    string `json:"extra"`
}

// Q7 is "highest bid": per 10-second tumbling window [end-10s, end), the
// bids at the window's highest price. As in the SQL, which joins on
// B.dateTime BETWEEN end - 10s AND end, a bid exactly at end also matches
// the window that ends there if its price equals that window's highest.
// The maximum is global, so the bids go to one subtask; each source
// subtask first drops the bids that its own earlier bids already outbid
// (see q7Local).
func Q7(_ *spate.Env, events spate.Stream[nexmark.Event]) spate.Stream[Q7Result] {
	bids := spate.Process(events, func() spate.ProcessFunction[nexmark.Event, Q7Result] {
		return &q7Local{end: math.MinInt64}
	}).Name("Bids")
	keyed := spate.KeyBy(bids, func(Q7Result) int8 { return 0 })
	return spate.KeyedProcess(keyed, func() spate.KeyedProcessFunction[int8, Q7Result, Q7Result] { return &q7Max{} }).Name("Q7 highest")
}

// q7Local is the local (per upstream subtask) half of q7's maximum: it
// passes on a bid only if no earlier bid of the same window seen by this
// subtask has a higher price, since such a bid cannot be at its window's
// highest price. It tracks the latest window only (a bid of an earlier
// window passes), and passes every bid exactly at a window's start, which
// also belongs to the end of the previous window. The filter changes how
// many bids reach q7Max, not the result.
type q7Local struct {
	end, max int64 // the latest window end seen and its highest price
}

func (l *q7Local) ProcessElement(ctx *spate.Context[Q7Result], e nexmark.Event) error {
	b := e.Bid
	if b == nil {
		return nil
	}
	ts := b.DateTime.UnixMilli()
	end := ts - mod(ts, Q7WindowMs) + Q7WindowMs
	keep := true
	switch {
	case end == l.end:
		if b.Price < l.max {
			keep = false
		} else {
			l.max = b.Price
		}
	case end > l.end:
		l.end, l.max = end, b.Price
	}
	if keep || ts == end-Q7WindowMs {
		ctx.Collect(Q7Result{Auction: b.Auction, Bidder: b.Bidder, Price: b.Price, DateTime: ts, Extra: b.Extra})
	}
	return nil
}

type q7Window struct {
	Max  int64
	Bids []Q7Result // the bids of the window at price Max
}

type q7Max struct {
	wins  *spate.MapState[int8, int64, q7Window]   // by window end
	edges *spate.MapState[int8, int64, []Q7Result] // bids exactly at a window end, by that end
}

func (q *q7Max) Open(ctx *spate.KeyedContext[int8, Q7Result]) error {
	q.wins = spate.NewMapState[int64, q7Window](ctx.State(), "windows")
	q.edges = spate.NewMapState[int64, []Q7Result](ctx.State(), "edges")
	return nil
}

func (q *q7Max) ProcessElement(ctx *spate.KeyedContext[int8, Q7Result], b Q7Result) error {
	end := b.DateTime - mod(b.DateTime, Q7WindowMs) + Q7WindowMs
	w, ok := q.wins.Get(end)
	switch {
	case !ok || b.Price > w.Max:
		w.Max, w.Bids = b.Price, append(w.Bids[:0:0], b)
	case b.Price == w.Max:
		w.Bids = append(w.Bids, b)
	}
	q.wins.Put(end, w)
	ctx.RegisterEventTimeTimer(end)
	if b.DateTime == end-Q7WindowMs {
		// Also at the end of the previous window, whose bids may not all
		// have arrived yet (they come from several upstream subtasks).
		e, _ := q.edges.Get(b.DateTime)
		q.edges.Put(b.DateTime, append(e, b))
		ctx.RegisterEventTimeTimer(b.DateTime)
	}
	return nil
}

// OnTimer fires once the watermark has reached a window's end: then every
// bid of the window and every bid at its end has arrived.
func (q *q7Max) OnTimer(ctx *spate.KeyedContext[int8, Q7Result], end int64) error {
	w, ok := q.wins.Get(end)
	edges, _ := q.edges.Get(end)
	q.wins.Remove(end)
	q.edges.Remove(end)
	if !ok {
		return nil // bids at the end of an empty window match nothing
	}
	for _, b := range w.Bids {
		ctx.Collect(b)
	}
	for _, b := range edges {
		if b.Price == w.Max {
			ctx.Collect(b)
		}
	}
	return nil
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Q8Result is a person who registered and opened an auction within the
// same 10-second tumbling window, which starts at StartTime.
type Q8Result struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	StartTime int64  `json:"stime"`
}

type q8Key struct{ ID, Start int64 }

type q8Person struct {
	ID, Start int64
	Name      string
}

// Q8 monitors new users: the people who opened an auction in the
// 10-second tumbling window in which they registered (a window join of
// persons and auction sellers on id and window).
func Q8(_ *spate.Env, events spate.Stream[nexmark.Event]) spate.Stream[Q8Result] {
	start := func(ts int64) int64 { return ts - mod(ts, Q8WindowMs) }
	persons := spate.FlatMap(events, func(e nexmark.Event, emit func(q8Person)) {
		if p := e.Person; p != nil {
			emit(q8Person{ID: p.ID, Start: start(p.DateTime.UnixMilli()), Name: p.Name})
		}
	}).Name("Persons")
	sellers := spate.FlatMap(events, func(e nexmark.Event, emit func(q8Key)) {
		if a := e.Auction; a != nil {
			emit(q8Key{ID: a.Seller, Start: start(a.DateTime.UnixMilli())})
		}
	}).Name("Sellers")
	return spate.KeyedCoProcess(
		spate.KeyBy(persons, func(p q8Person) q8Key { return q8Key{ID: p.ID, Start: p.Start} }),
		spate.KeyBy(sellers, func(k q8Key) q8Key { return k }),
		func() spate.KeyedCoProcessFunction[q8Key, q8Person, q8Key, Q8Result] { return &q8Join{} },
	).Name("Q8 join")
}

type q8Join struct {
	person *spate.ValueState[q8Key, q8Person]
	seller *spate.ValueState[q8Key, bool]
}

func (j *q8Join) Open(ctx *spate.KeyedContext[q8Key, Q8Result]) error {
	j.person = spate.NewValueState[q8Person](ctx.State(), "person")
	j.seller = spate.NewValueState[bool](ctx.State(), "seller")
	return nil
}

func (j *q8Join) ProcessElement1(ctx *spate.KeyedContext[q8Key, Q8Result], p q8Person) error {
	j.person.Update(p)
	ctx.RegisterEventTimeTimer(p.Start + Q8WindowMs - 1)
	return nil
}

func (j *q8Join) ProcessElement2(ctx *spate.KeyedContext[q8Key, Q8Result], k q8Key) error {
	j.seller.Update(true)
	ctx.RegisterEventTimeTimer(k.Start + Q8WindowMs - 1)
	return nil
}

func (j *q8Join) OnTimer(ctx *spate.KeyedContext[q8Key, Q8Result], _ int64) error {
	p, ok := j.person.Value()
	if _, sold := j.seller.Value(); ok && sold {
		ctx.Collect(Q8Result{ID: p.ID, Name: p.Name, StartTime: p.Start})
	}
	j.person.Clear()
	j.seller.Clear()
	return nil
}
