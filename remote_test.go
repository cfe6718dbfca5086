package spate

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/network"
	"github.com/spate-dev/spate/internal/worker"
	"io"
)

// runPlaced runs the job declared on e as several workers in this process,
// each with its own data-plane endpoint on loopback TCP, with subtasks
// placed by place. It is the worker role without processes and
// JobManager: the same build, wiring and data plane.
func runPlaced(ctx context.Context, e *Env, name string, workers []string, place func(vertex, subtask int) string) error {
	nodes := e.nodes
	e.nodes = nil
	p, err := e.plan(name, nodes)
	if err != nil {
		return err
	}
	credits, err := e.networkCredits()
	if err != nil {
		return err
	}
	eps := map[string]*network.Endpoint{}
	addrs := map[string]string{}
	resolve := func(id string) (string, error) { return addrs[id], nil }
	for _, w := range workers {
		ep, err := network.Listen("127.0.0.1:0", network.Config{ID: w, Resolve: resolve, Credits: credits, TLS: placedTLS(w)})
		if err != nil {
			return err
		}
		defer ep.Close()
		eps[w], addrs[w] = ep, ep.Addr()
	}
	var runs [][]*exec.Task
	for _, w := range workers {
		tasks, err := p.build(e, func(v, s int) bool { return place(v, s) == w })
		if err != nil {
			return err
		}
		local, err := worker.Wire(w, place, p.graph, tasks, eps[w], addrs)
		if err != nil {
			return err
		}
		var ts []*exec.Task
		for _, lt := range local {
			ts = append(ts, lt.Task)
		}
		runs = append(runs, ts)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errs := make([]error, 2*len(workers))
	for i, w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if errs[2*i] = exec.Run(ctx, runs[i]); errs[2*i] != nil {
				cancel(errs[2*i])
			}
		}()
		go func() {
			defer wg.Done()
			if errs[2*i+1] = eps[w].Run(ctx); errs[2*i+1] != nil {
				cancel(errs[2*i+1])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

type keyed struct {
	Key   int64
	Value int64
}

func reduceJob(e *Env, n int64) *Collected[keyed] {
	src := FromSource(e, "gen", counting{n: n, keys: 1000}, NoWatermarks[keyed]())
	sum := Reduce(KeyBy(src, func(v keyed) int64 { return v.Key }), func(a, v keyed) keyed { a.Value += v.Value; return a })
	return Collect(sum)
}

// TestPlacedAcrossTCP runs a keyed job with its source subtasks in one
// worker and the rest in another, so that every record crosses the data
// plane, and with slot-shared placement over two workers; both must give
// the local executor's results.
func TestPlacedAcrossTCP(t *testing.T) {
	const n = 200_000
	local := NewEnv(WithParallelism(2))
	want := reduceJob(local, n)
	if err := local.Execute("local"); err != nil {
		t.Fatal(err)
	}
	placements := map[string]func(v, s int) string{
		"source apart": func(v, s int) string {
			if v == 0 {
				return "a"
			}
			return "b"
		},
		"slot sharing": func(v, s int) string { return fmt.Sprintf("w%d", s) },
	}
	workers := map[string][]string{"source apart": {"a", "b"}, "slot sharing": {"w0", "w1"}}
	for name, place := range placements {
		t.Run(name, func(t *testing.T) {
			e := NewEnv(WithParallelism(2))
			got := reduceJob(e, n)
			if err := runPlaced(context.Background(), e, "placed", workers[name], place); err != nil {
				t.Fatal(err)
			}
			sameResults(t, got.Values(), want.Values())
		})
	}
}

// sameResults fails t unless got and want hold the same records.
func sameResults(t *testing.T, got, want []keyed) {
	t.Helper()
	cmp := func(a, b keyed) int {
		if a.Key != b.Key {
			return int(a.Key - b.Key)
		}
		return int(a.Value - b.Value)
	}
	g, w := slices.SortedFunc(slices.Values(got), cmp), slices.SortedFunc(slices.Values(want), cmp)
	if !slices.Equal(g, w) {
		t.Fatalf("got %d results, want %d; first %v vs %v", len(g), len(w), g[:min(3, len(g))], w[:min(3, len(w))])
	}
}

// TestNetworkCredits runs the job across TCP with a single credit per
// channel, the tightest flow control, and refuses a malformed credit
// setting naming the key.
func TestNetworkCredits(t *testing.T) {
	const n = 50_000
	local := NewEnv(WithParallelism(2))
	want := reduceJob(local, n)
	if err := local.Execute("local"); err != nil {
		t.Fatal(err)
	}
	apart := func(v, s int) string { return map[bool]string{true: "a", false: "b"}[v == 0] }
	e := NewEnv(WithParallelism(2), WithConfig(map[string]string{config.NetworkCredits: "1"}))
	got := reduceJob(e, n)
	if err := runPlaced(context.Background(), e, "one credit", []string{"a", "b"}, apart); err != nil {
		t.Fatal(err)
	}
	sameResults(t, got.Values(), want.Values())
	for _, bad := range []string{"0", "-2", "many"} {
		e := NewEnv(WithParallelism(2), WithConfig(map[string]string{config.NetworkCredits: bad}))
		reduceJob(e, 10)
		err := runPlaced(context.Background(), e, "bad credits", []string{"a", "b"}, apart)
		if err == nil || !strings.Contains(err.Error(), config.NetworkCredits) {
			t.Errorf("%s=%q: %v, want an error naming the key", config.NetworkCredits, bad, err)
		}
	}
}

// BenchmarkKeyByReduceTCP is keyBy + rolling reduce at parallelism 2 with
// the sources in one worker and the reducers in another: every record is
// encoded, crosses loopback TCP with credit-based flow control, and is
// decoded. Compare with BenchmarkKeyByReduce/parallelism=2.
func BenchmarkKeyByReduceTCP(b *testing.B) {
	b.ReportAllocs()
	e := NewEnv(WithParallelism(2))
	src := FromSource(e, "gen", counting{n: int64(b.N), keys: 10_000}, NoWatermarks[keyed]())
	sum := Reduce(KeyBy(src, func(v keyed) int64 { return v.Key }), func(a, v keyed) keyed { a.Value += v.Value; return a })
	SinkTo(sum, Sink[keyed](discardSink[keyed]{}))
	place := func(v, s int) string {
		if v == 0 {
			return "a"
		}
		return "b"
	}
	b.ResetTimer()
	if err := runPlaced(context.Background(), e, "bench", []string{"a", "b"}, place); err != nil {
		b.Fatal(err)
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/secs, "records/s")
	// Four subtasks on a 2-core machine: per core is over the cores.
	b.ReportMetric(float64(b.N)/secs/float64(min(4, runtime.GOMAXPROCS(0))), "records/s/core")
	b.ReportMetric(0, "ns/op")
}

type discardSink[T any] struct{}

func (discardSink[T]) Open(context.Context, SinkInfo) (SinkWriter[T], error) {
	return discardSink[T]{}, nil
}
func (discardSink[T]) Write(T) error     { return nil }
func (discardSink[T]) Close(error) error { return nil }

// counting is a bounded source of n records over keys keys, split by
// stride; the datagen connector cannot be imported here.
type counting struct{ n, keys int64 }

func (c counting) Open(_ context.Context, sp Split) (SourceReader[keyed], error) {
	return &countingReader{c: c, next: int64(sp.Subtask), step: int64(sp.Parallelism)}, nil
}

type countingReader struct {
	c          counting
	next, step int64
}

func (r *countingReader) Read(_ context.Context, buf []keyed) (int, error) {
	n := 0
	for n < len(buf) && r.next < r.c.n {
		buf[n] = keyed{Key: r.next % r.c.keys, Value: r.next}
		r.next += r.step
		n++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *countingReader) Close() error { return nil }

type padded struct {
	Key int64
	Pad string
}

type paddedSource struct{ n int64 }

func (s paddedSource) Open(_ context.Context, sp Split) (SourceReader[padded], error) {
	return &paddedReader{n: s.n, next: int64(sp.Subtask), step: int64(sp.Parallelism), pad: strings.Repeat("x", 256)}, nil
}

type paddedReader struct {
	n, next, step int64
	pad           string
}

func (r *paddedReader) Read(_ context.Context, buf []padded) (int, error) {
	n := 0
	for n < len(buf) && r.next < r.n {
		buf[n] = padded{Key: r.next, Pad: r.pad}
		r.next += r.step
		n++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *paddedReader) Close() error { return nil }

// slowSink counts records and sleeps a millisecond every 100 of them.
type slowSink struct{ count *atomic.Int64 }

func (s slowSink) Open(context.Context, SinkInfo) (SinkWriter[padded], error) { return s, nil }
func (s slowSink) Write(padded) error {
	if s.count.Add(1)%100 == 0 {
		time.Sleep(time.Millisecond)
	}
	return nil
}
func (s slowSink) Close(error) error { return nil }

// TestBackpressureAcrossTCP feeds 400k records of about 270 bytes (about
// 100 MiB) from a fast source in one worker to a slow sink in another. The
// credit-based data plane must hold the producer back: the heap stays far
// below the data's size, and every record arrives.
func TestBackpressureAcrossTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 100 MiB")
	}
	const n = 400_000
	var count atomic.Int64
	e := NewEnv(WithParallelism(2))
	src := FromSource(e, "fast", paddedSource{n: n}, NoWatermarks[padded]())
	SinkTo(src.Rebalance(), Sink[padded](slowSink{count: &count})).Name("slow")
	place := func(v, s int) string {
		if v == 0 {
			return "a"
		}
		return "b"
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()
	err := runPlaced(context.Background(), e, "backpressure", []string{"a", "b"}, place)
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := count.Load(); got != n {
		t.Fatalf("the sink got %d records, want %d", got, n)
	}
	grown := float64(peak.Load()-min(peak.Load(), base.HeapInuse)) / (1 << 20)
	t.Logf("heap grew by at most %.1f MiB while moving %.0f MiB", grown, float64(n*(256+16))/(1<<20))
	if grown > 48 {
		t.Errorf("heap grew by %.1f MiB: the producer was not held back", grown)
	}
}
