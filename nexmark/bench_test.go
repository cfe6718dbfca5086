package nexmark

import "testing"

// BenchmarkGenerator measures generation of the default mix (1:3:46) with
// Fill, the path the Source uses.
func BenchmarkGenerator(b *testing.B) {
	g, err := NewGenerator(Config{}, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]Event, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for n := 0; n < b.N; n += len(buf) {
		g.Fill(buf[:min(len(buf), b.N-n)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkGeneratorBids measures bids alone, the bulk of the stream (46
// of every 50 events).
func BenchmarkGeneratorBids(b *testing.B) {
	g, err := NewGenerator(Config{}, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	var sum int64
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := range int64(b.N) {
		id := i/46*50 + 4 + i%46 // the i-th bid's event id
		g.rnd.setSeed(id)
		sum += g.bid(id, id/10).Price
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if sum == 0 {
		b.Fatal("no prices")
	}
}

// BenchmarkJSON measures encoding the default mix as JSON lines.
func BenchmarkJSON(b *testing.B) {
	g, err := NewGenerator(Config{}, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	events := make([]Event, 1000)
	g.Fill(events)
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := range b.N {
		buf = events[i%len(events)].AppendJSON(buf[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
