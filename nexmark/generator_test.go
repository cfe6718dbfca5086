package nexmark

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/first_events.golden")

// generateAll returns every event of split 0 of 1.
func generateAll(t testing.TB, cfg Config) []Event {
	t.Helper()
	g, err := NewGenerator(cfg, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	buf := make([]Event, 1000)
	for {
		n := g.Fill(buf)
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

func jsonLines(t testing.TB, events []Event) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJSONLines(&b, events...); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGolden pins the first events of the default configuration. The file
// was checked against a Java program built from the reference generator
// code (see TestMatchesJavaReference).
func TestGolden(t *testing.T) {
	got := jsonLines(t, generateAll(t, Config{NumEvents: 20}))
	const path = "testdata/first_events.golden"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("first events differ from %s (run with -update to rewrite):\n%s", path, got)
	}
}

// TestMatchesJavaReference compares the JSON lines of the first 100,000
// events with those printed by a Java program transcribing the reference
// generator (Beam's Generator.nextEvent seeding new java.util.Random(eventId)
// for each event, the Flink model generators with channel and url, Flink's
// inter-event delay, Flink's JSON timestamp formatter), run on OpenJDK 17,
// with this package's documented departures (bidder offset once,
// deterministic channel URLs). Only the SHA-256 of its output is kept here.
func TestMatchesJavaReference(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{NumEvents: 100_000}, "f0a063e6791e3cd634d4ad88957d6ecc5e5ab521fcc4d6fbc20bfebb119e4489"},
		{Config{NumEvents: 100_000, OutOfOrderGroupSize: 7, FirstEventRate: 3000}, "aa41b65b95648cfdf089385f81203a099f30ec4b36391af0e5ff588264083176"},
	} {
		sum := sha256.Sum256(jsonLines(t, generateAll(t, c.cfg)))
		if got := hex.EncodeToString(sum[:]); got != c.want {
			t.Errorf("%+v: sha256 %s, want %s", c.cfg, got, c.want)
		}
	}
}

// TestPricesMatchJava checks nextPrice, which takes a shortcut around
// math.Pow, against Math.round(Math.pow(10.0, r.nextDouble() * 6.0) *
// 100.0) for three draws from new Random(s), s < 1,000,000 (a hash computed
// by OpenJDK 17).
func TestPricesMatchJava(t *testing.T) {
	n := int64(1_000_000)
	if testing.Short() {
		t.Skip("short")
	}
	var h int64
	for s := range n {
		r := newJavaRandom(s)
		for range 3 {
			h = h*1000003 + nextPrice(&r)
		}
	}
	if h != 8353969487621166667 {
		t.Errorf("price hash %d, want 8353969487621166667", h)
	}
}

// TestInvariants checks the reference's structural rules over a million
// events.
func TestInvariants(t *testing.T) {
	n := int64(1_000_000)
	if testing.Short() {
		n = 100_000
	}
	cfg := DefaultConfig()
	cfg.NumEvents = n
	g, err := NewGenerator(cfg, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	base := DefaultBaseTime.UnixMilli()
	lastPerson, lastAuction := int64(-1), int64(-1) // base-0 ids so far
	var prevTs int64
	buf := make([]Event, 777)
	var num int64
	kinds := [3]int{}
	for {
		k := g.Fill(buf)
		if k == 0 {
			break
		}
		for _, e := range buf[:k] {
			ts := e.UnixMilli()
			// Timestamps: base + n * 100us, truncated to ms.
			if want := base + num/10; ts != want {
				t.Fatalf("event %d at %d, want %d", num, ts, want)
			}
			if ts < prevTs {
				t.Fatalf("event %d goes back in time", num)
			}
			prevTs = ts
			// Kinds: 1 person, 3 auctions, 46 bids in every block of 50.
			wantKind := KindBid
			switch off := num % 50; {
			case off == 0:
				wantKind = KindPerson
			case off <= 3:
				wantKind = KindAuction
			}
			if e.Kind() != wantKind {
				t.Fatalf("event %d is a %s, want %s", num, e.Kind(), wantKind)
			}
			kinds[e.Kind()]++
			// A random person pick lies among the NumActivePeople most
			// recent people or up to personIDLead ahead.
			checkPerson := func(what string, id int64) {
				t.Helper()
				b0 := id - FirstPersonID
				if b0 < max(0, lastPerson+1-int64(cfg.NumActivePeople)) || b0 > lastPerson+personIDLead {
					t.Fatalf("event %d: %s %d outside [%d, %d]", num, what, id,
						max(0, lastPerson+1-int64(cfg.NumActivePeople))+FirstPersonID, lastPerson+personIDLead+FirstPersonID)
				}
			}
			switch {
			case e.Person != nil:
				p := e.Person
				lastPerson++
				if p.ID != lastPerson+FirstPersonID {
					t.Fatalf("event %d: person id %d, want %d", num, p.ID, lastPerson+FirstPersonID)
				}
				if len(p.CreditCard) != 19 || p.Name == "" || p.City == "" || len(p.State) != 2 {
					t.Fatalf("event %d: malformed person %+v", num, p)
				}
			case e.Auction != nil:
				a := e.Auction
				lastAuction++
				if a.ID != lastAuction+FirstAuctionID {
					t.Fatalf("event %d: auction id %d, want %d", num, a.ID, lastAuction+FirstAuctionID)
				}
				checkPerson("seller", a.Seller)
				if a.Category < FirstCategoryID || a.Category >= FirstCategoryID+NumCategories {
					t.Fatalf("event %d: category %d", num, a.Category)
				}
				if a.InitialBid < 100 || a.InitialBid > 100_000_000 || a.Reserve < a.InitialBid {
					t.Fatalf("event %d: prices %d, %d", num, a.InitialBid, a.Reserve)
				}
				if !a.Expires.After(a.DateTime) {
					t.Fatalf("event %d: expires %v before %v", num, a.Expires, a.DateTime)
				}
			case e.Bid != nil:
				b := e.Bid
				// A bid is for one of the last NumInFlightAuctions
				// auctions or up to auctionIDLead ahead.
				a0 := b.Auction - FirstAuctionID
				if a0 < max(0, lastAuction-int64(cfg.NumInFlightAuctions)) || a0 > lastAuction+auctionIDLead {
					t.Fatalf("event %d: bid on auction %d, last auction %d", num, b.Auction, lastAuction+FirstAuctionID)
				}
				checkPerson("bidder", b.Bidder)
				if b.Price < 100 || b.Price > 100_000_000 {
					t.Fatalf("event %d: price %d", num, b.Price)
				}
				if b.Channel == "" || b.URL == "" {
					t.Fatalf("event %d: no channel or url", num)
				}
				if n := len(b.Extra); n < 54 || n > 81 {
					t.Fatalf("event %d: extra of %d bytes, want 54..81", num, n)
				}
			}
			num++
		}
	}
	if num != n {
		t.Fatalf("generated %d events, want %d", num, n)
	}
	if want := n / 50; int64(kinds[KindPerson]) != want || int64(kinds[KindAuction]) != 3*want || int64(kinds[KindBid]) != 46*want {
		t.Errorf("kinds %v, want 1:3:46 of %d", kinds, n)
	}
}

// TestSplits checks that the splits partition the sequence: the union of
// splits 0..n-1 interleaved by stride is exactly the unsplit sequence.
func TestSplits(t *testing.T) {
	const total = 20_000
	cfg := Config{NumEvents: total}
	want := generateAll(t, cfg)
	for splits := 1; splits <= 4; splits++ {
		merged := make([]Event, total)
		count := 0
		for k := range splits {
			g, err := NewGenerator(cfg, k, splits)
			if err != nil {
				t.Fatal(err)
			}
			for j := 0; ; j++ {
				e, ok := g.Next()
				if !ok {
					break
				}
				merged[k+j*splits] = e
				count++
			}
		}
		if count != total {
			t.Fatalf("%d splits: %d events, want %d", splits, count, total)
		}
		if !bytes.Equal(jsonLines(t, merged), jsonLines(t, want)) {
			t.Fatalf("%d splits: union differs from the unsplit sequence", splits)
		}
	}
}

func TestDeterminism(t *testing.T) {
	cfg := Config{NumEvents: 30_000}
	a := jsonLines(t, generateAll(t, cfg))
	// A second generator, reading one event at a time.
	g, err := NewGenerator(cfg, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for e, ok := g.Next(); ok; e, ok = g.Next() {
		evs = append(evs, e)
	}
	if b := jsonLines(t, evs); !bytes.Equal(a, b) {
		t.Fatal("two generators with the same config differ")
	}
	// A different Seed keeps ids and times but changes the content.
	cfg.Seed = 12345
	seeded := generateAll(t, cfg)
	if bytes.Equal(a, jsonLines(t, seeded)) {
		t.Fatal("Seed had no effect")
	}
	for i, e := range seeded {
		if e.Kind() != evs[i].Kind() || !e.EventTime().Equal(evs[i].EventTime()) {
			t.Fatalf("event %d: Seed changed its kind or time", i)
		}
	}
}

func TestOutOfOrder(t *testing.T) {
	// At 1,000 events/s each event has its own millisecond.
	cfg := Config{NumEvents: 10_000, OutOfOrderGroupSize: 10, FirstEventRate: 1000}
	g, err := NewGenerator(cfg, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	seen := map[int64]bool{}
	for {
		wm := g.Watermark()
		e, ok := g.Next()
		if !ok {
			break
		}
		if e.EventTime().Before(wm) {
			t.Fatalf("event %d at %v before watermark %v", len(times), e.EventTime(), wm)
		}
		times = append(times, e.EventTime())
		if e.Person != nil {
			seen[e.Person.ID] = true
		}
	}
	// Within each group of ten the events are a permutation: the group's
	// times are those of the in-order stream.
	inOrder := generateAll(t, Config{NumEvents: 10_000, FirstEventRate: 1000})
	disorder := 0
	for i := 0; i < len(times); i += 10 {
		group := map[time.Time]int{}
		for j := i; j < i+10; j++ {
			group[inOrder[j].EventTime()]++
			group[times[j]]--
			if !times[j].Equal(inOrder[j].EventTime()) {
				disorder++
			}
		}
		for ts, c := range group {
			if c != 0 {
				t.Fatalf("group at %d: time %v unbalanced", i, ts)
			}
		}
	}
	if disorder == 0 {
		t.Error("OutOfOrderGroupSize 10 produced an in-order stream")
	}
	if len(seen) != 10_000/50 {
		t.Errorf("%d distinct persons, want %d", len(seen), 10_000/50)
	}
}

func TestRateShape(t *testing.T) {
	// Square wave between 10,000/s and 1,000/s with a 20 s period: 10 s at
	// each rate.
	cfg := Config{NumEvents: 200_000, FirstEventRate: 10_000, NextEventRate: 1_000, RatePeriodSec: 20}
	evs := generateAll(t, cfg)
	base := DefaultBaseTime
	at := func(i int) time.Duration { return evs[i].EventTime().Sub(base) }
	if at(99_999) != 9999*time.Millisecond || at(100_000) != 10*time.Second || at(110_000) != 20*time.Second || at(110_001) != 20*time.Second {
		t.Errorf("square wave times: %v %v %v %v", at(99_999), at(100_000), at(110_000), at(110_001))
	}
	for i := 1; i < len(evs); i++ {
		if at(i) < at(i-1) {
			t.Fatalf("event %d goes back in time", i)
		}
	}
	cfg.RateShape = RateSine
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(generateAll(t, Config{NumEvents: 1000, FirstEventRate: 100, NextEventRate: 10_000, RateShape: RateSine})) != 1000 {
		t.Error("sine shape generated the wrong count")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{NumEvents: -1},
		{FirstEventRate: -5},
		{HotAuctionRatio: -1},
		{OutOfOrderGroupSize: -2},
		{RateShape: 7},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	for _, s := range [][2]int{{0, 0}, {-1, 2}, {2, 2}} {
		if _, err := NewGenerator(Config{}, s[0], s[1]); err == nil {
			t.Errorf("split %d of %d: no error", s[0], s[1])
		}
	}
	def := DefaultConfig()
	if def.FirstEventRate != 10_000 || def.BidProportion != 46 || def.AvgAuctionByteSize != 500 ||
		def.NumActivePeople != 1000 || def.OutOfOrderGroupSize != 1 || !def.BaseTime.Equal(DefaultBaseTime) {
		t.Errorf("unexpected defaults %+v", def)
	}
}

func TestUnbounded(t *testing.T) {
	g, err := NewGenerator(Config{}, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]Event, 100)
	for range 10 {
		if n := g.Fill(buf); n != len(buf) {
			t.Fatalf("unbounded generator filled %d", n)
		}
	}
	if got := g.NextEventNumber(); got != 3+1000*4 {
		t.Errorf("NextEventNumber %d, want %d", got, 3+1000*4)
	}
}
