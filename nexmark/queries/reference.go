package queries

import (
	"cmp"
	"slices"

	"github.com/spate-dev/spate/nexmark"
)

// The Ref functions compute the queries' results over a finite list of
// events in plain Go, without the engine, as the SQL defines them: they
// are the reference the engine's results are tested against. Where a query
// emits a changelog (q4) its reference is the final value per key.

// RefQ0 is the reference of Q0.
func RefQ0(events []nexmark.Event) []Q0Result {
	var out []Q0Result
	for _, e := range events {
		if b := e.Bid; b != nil {
			out = append(out, Q0Result{b.Auction, b.Bidder, b.Price, b.DateTime.UnixMilli(), b.Extra})
		}
	}
	return out
}

// RefQ1 is the reference of Q1.
func RefQ1(events []nexmark.Event) []Q1Result {
	var out []Q1Result
	for _, e := range events {
		if b := e.Bid; b != nil {
			out = append(out, Q1Result{b.Auction, b.Bidder, DollarToEuro * float64(b.Price), b.DateTime.UnixMilli(), b.Extra})
		}
	}
	return out
}

// RefQ2 is the reference of Q2.
func RefQ2(events []nexmark.Event) []Q2Result {
	var out []Q2Result
	for _, e := range events {
		if b := e.Bid; b != nil && b.Auction%123 == 0 {
			out = append(out, Q2Result{b.Auction, b.Price})
		}
	}
	return out
}

// RefQ3 is the reference of Q3.
func RefQ3(events []nexmark.Event) []Q3Result {
	persons := map[int64][]*nexmark.Person{}
	for _, e := range events {
		if p := e.Person; p != nil && (p.State == "OR" || p.State == "ID" || p.State == "CA") {
			persons[p.ID] = append(persons[p.ID], p)
		}
	}
	var out []Q3Result
	for _, e := range events {
		if a := e.Auction; a != nil && a.Category == 10 {
			for _, p := range persons[a.Seller] {
				out = append(out, Q3Result{p.Name, p.City, p.State, a.ID})
			}
		}
	}
	return out
}

// refWinningBids is the highest bid on each auction made between its
// DateTime and Expires (the earliest of equal highest bids), for the
// auctions that have one.
func refWinningBids(events []nexmark.Event) []winningBid {
	type bid struct{ price, time int64 }
	best := map[int64]bid{}
	auctions := map[int64]*nexmark.Auction{}
	for _, e := range events {
		if a := e.Auction; a != nil {
			auctions[a.ID] = a
		}
	}
	for _, e := range events {
		b := e.Bid
		if b == nil {
			continue
		}
		a := auctions[b.Auction]
		if a == nil || b.DateTime.Before(a.DateTime) || b.DateTime.After(a.Expires) {
			continue
		}
		ts := b.DateTime.UnixMilli()
		if p, ok := best[a.ID]; !ok || b.Price > p.price || b.Price == p.price && ts < p.time {
			best[a.ID] = bid{b.Price, ts}
		}
	}
	var out []winningBid
	for id, p := range best {
		a := auctions[id]
		out = append(out, winningBid{Auction: id, Seller: a.Seller, Category: a.Category, Price: p.price, Expires: a.Expires.UnixMilli(), BidTime: p.time})
	}
	return out
}

// RefQ4 is the reference of Q4: the final average per category.
func RefQ4(events []nexmark.Event) []Q4Result {
	type acc struct{ sum, n int64 }
	cats := map[int64]*acc{}
	for _, w := range refWinningBids(events) {
		a := cats[w.Category]
		if a == nil {
			a = &acc{}
			cats[w.Category] = a
		}
		a.sum += w.Price
		a.n++
	}
	var out []Q4Result
	for c, a := range cats {
		out = append(out, Q4Result{Category: c, Final: a.sum / a.n, Count: a.n})
	}
	return out
}

// RefQ5 is the reference of Q5.
func RefQ5(events []nexmark.Event) []Q5Result {
	type key struct{ start, auction int64 }
	counts := map[key]int64{}
	for _, e := range events {
		b := e.Bid
		if b == nil {
			continue
		}
		ts := b.DateTime.UnixMilli()
		for start := ts - mod(ts, Q5SlideMs); start > ts-Q5WindowMs; start -= Q5SlideMs {
			counts[key{start, b.Auction}]++
		}
	}
	most := map[int64]int64{}
	for k, n := range counts {
		most[k.start] = max(most[k.start], n)
	}
	var out []Q5Result
	for k, n := range counts {
		if n == most[k.start] {
			out = append(out, Q5Result{Auction: k.auction, Num: n, WindowStart: k.start, WindowEnd: k.start + Q5WindowMs})
		}
	}
	return out
}

// RefQ6 is the reference of Q6, straight from its definition: a seller's
// auctions with a winning bid, in the order they close (expiry, then id),
// each with the average price of the ten latest winning bids, by the
// bid's time (then price), among the seller's auctions closed so far.
func RefQ6(events []nexmark.Event) []Q6Result {
	bySeller := map[int64][]winningBid{}
	for _, w := range refWinningBids(events) {
		bySeller[w.Seller] = append(bySeller[w.Seller], w)
	}
	var out []Q6Result
	for seller, ws := range bySeller {
		slices.SortFunc(ws, func(a, b winningBid) int {
			return cmp.Or(cmp.Compare(a.Expires, b.Expires), cmp.Compare(a.Auction, b.Auction))
		})
		for i, w := range ws {
			closed := slices.Clone(ws[:i+1])
			slices.SortFunc(closed, func(a, b winningBid) int {
				return cmp.Or(cmp.Compare(a.BidTime, b.BidTime), cmp.Compare(a.Price, b.Price))
			})
			closed = closed[max(0, len(closed)-Q6LastN):]
			var sum int64
			for _, c := range closed {
				sum += c.Price
			}
			out = append(out, Q6Result{Seller: seller, AvgPrice: sum / int64(len(closed)), Auction: w.Auction})
		}
	}
	return out
}

// RefQ7 is the reference of Q7: the SQL's join of each bid with the
// windows ending at E such that E-10s <= dateTime <= E, on price = the
// window's highest.
func RefQ7(events []nexmark.Event) []Q7Result {
	most := map[int64]int64{} // by window end
	for _, e := range events {
		if b := e.Bid; b != nil {
			ts := b.DateTime.UnixMilli()
			end := ts - mod(ts, Q7WindowMs) + Q7WindowMs
			if m, ok := most[end]; !ok || b.Price > m {
				most[end] = b.Price
			}
		}
	}
	var out []Q7Result
	for _, e := range events {
		b := e.Bid
		if b == nil {
			continue
		}
		ts := b.DateTime.UnixMilli()
		for end := ts - mod(ts, Q7WindowMs); end <= ts+Q7WindowMs; end += Q7WindowMs {
			if m, ok := most[end]; ok && end-Q7WindowMs <= ts && ts <= end && b.Price == m {
				out = append(out, Q7Result{b.Auction, b.Bidder, b.Price, ts, b.Extra})
			}
		}
	}
	return out
}

// RefQ8 is the reference of Q8.
func RefQ8(events []nexmark.Event) []Q8Result {
	type key struct{ id, start int64 }
	sellers := map[key]bool{}
	for _, e := range events {
		if a := e.Auction; a != nil {
			ts := a.DateTime.UnixMilli()
			sellers[key{a.Seller, ts - mod(ts, Q8WindowMs)}] = true
		}
	}
	seen := map[Q8Result]bool{} // the SQL groups by id, name and window
	var out []Q8Result
	for _, e := range events {
		if p := e.Person; p != nil {
			ts := p.DateTime.UnixMilli()
			r := Q8Result{ID: p.ID, Name: p.Name, StartTime: ts - mod(ts, Q8WindowMs)}
			if sellers[key{p.ID, r.StartTime}] && !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}
