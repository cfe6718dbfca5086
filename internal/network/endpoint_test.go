package network

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// flow is one stream from one endpoint to another in a test.
type flow struct {
	from, to *Endpoint
	id       uint32
	gen      streamGen
	src, dst chan exec.Msg
}

// register sets up the flow at both endpoints.
func (f *flow) register(srcCap, dstCap int) {
	f.src = make(chan exec.Msg, srcCap)
	f.dst = make(chan exec.Msg, dstCap)
	f.from.Send(f.to.cfg.ID, f.to.Addr(), f.id, f.src, 2)
	f.to.Receive(f.from.cfg.ID, f.id, f.dst, 2)
}

// exchange runs the endpoints and every flow to completion and fails the
// test on any error. keep, if set, receives the data batches of flows[0].
func exchange(t *testing.T, eps []*Endpoint, flows []*flow, keep *[][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	runs := make([]<-chan error, len(eps))
	for i, e := range eps {
		runs[i] = start(ctx, e)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(flows))
	for i, f := range flows {
		wg.Add(2)
		go func() {
			defer wg.Done()
			f.gen.produce(ctx, f.src)
		}()
		go func() {
			defer wg.Done()
			var k *[][]byte
			if i == 0 {
				k = keep
			}
			if err := f.gen.consume(ctx, f.dst, k); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	for i, e := range eps {
		if err := wait(t, e.cfg.ID, runs[i], 150*time.Second); err != nil {
			t.Errorf("Run of %s: %v", e.cfg.ID, err)
			cancel()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestExchangeInOrder sends 100k messages over several streams in both
// directions between two endpoints and checks that each stream arrives
// complete and in order, watermarks, idleness and ends in band.
func TestExchangeInOrder(t *testing.T) {
	before := runtime.NumGoroutine()
	a := listen(t, "w1", Config{})
	b := listen(t, "w2", Config{Credits: 4})
	const streams = 3
	const total = 100_000
	var flows []*flow
	for dir, pair := range [][2]*Endpoint{{a, b}, {b, a}} {
		for s := range streams {
			// The same stream numbers in both directions: they are
			// different streams.
			f := &flow{from: pair[0], to: pair[1], id: uint32(s + 1),
				gen: streamGen{tag: fmt.Sprintf("%s->%s#%d", pair[0].cfg.ID, pair[1].cfg.ID, s+1), n: total/(2*streams) - 2}}
			f.register(16, s*8+dir)
			flows = append(flows, f)
		}
	}
	var kept [][]byte
	exchange(t, []*Endpoint{a, b}, flows, &kept)
	// The receiver owns its batches: none was overwritten afterwards.
	i := 0
	for j := range flows[0].gen.len() {
		m := flows[0].gen.msg(j)
		if m.Kind != exec.MsgData {
			continue
		}
		if string(kept[i]) != string(m.Batch.([]byte)) {
			t.Fatalf("kept batch %d changed to %q", i, kept[i])
		}
		i++
	}
	if got := a.dialed.Load() + a.accepted.Load() + b.dialed.Load() + b.accepted.Load(); got != 2 {
		t.Errorf("%d connection ends, want 2 (one connection)", got)
	}
	a.Close()
	b.Close()
	checkGoroutines(t, before)
}

// TestMesh exchanges streams among three endpoints, every one with every
// other, over one connection per pair: the smaller ID dials.
func TestMesh(t *testing.T) {
	ids := []string{"a", "b", "c"}
	eps := make([]*Endpoint, len(ids))
	for i, id := range ids {
		eps[i] = listen(t, id, Config{Credits: 3})
	}
	var flows []*flow
	for _, from := range eps {
		for _, to := range eps {
			if from == to {
				continue
			}
			for s := range 2 {
				f := &flow{from: from, to: to, id: uint32(10 + s),
					gen: streamGen{tag: fmt.Sprintf("%s->%s#%d", from.cfg.ID, to.cfg.ID, s), n: 3000}}
				f.register(4, 2)
				flows = append(flows, f)
			}
		}
	}
	exchange(t, eps, flows, nil)
	var accepted int32
	for i, e := range eps {
		// a dials b and c, b dials c.
		wantDialed, wantAccepted := int32(len(eps)-1-i), int32(i)
		if d, a := e.dialed.Load(), e.accepted.Load(); d != wantDialed || a != wantAccepted {
			t.Errorf("%s: dialed %d, accepted %d; want %d, %d", e.cfg.ID, d, a, wantDialed, wantAccepted)
		}
		accepted += e.accepted.Load()
	}
	if accepted != 3 {
		t.Errorf("%d connections accepted in all, want 3 (one per pair)", accepted)
	}
}

// TestBackpressure stalls one stream's consumer: the sender stops after the
// credits, the receiver holds no more than them, another stream on the same
// connection keeps flowing, and nothing is lost once the consumer resumes.
func TestBackpressure(t *testing.T) {
	const credits = 4
	a := listen(t, "w1", Config{Credits: credits})
	b := listen(t, "w2", Config{Credits: credits})
	stalled := &flow{from: a, to: b, id: 1, gen: streamGen{tag: "stalled", n: 200}}
	stalled.register(202, 0) // src holds the whole sequence; dst unbuffered
	other := &flow{from: a, to: b, id: 2, gen: streamGen{tag: "other", n: 5000}}
	other.register(8, 0)
	stalled.gen.produce(context.Background(), stalled.src)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ra, rb := start(ctx, a), start(ctx, b)
	otherDone := make(chan error, 1)
	go func() {
		go other.gen.produce(ctx, other.src)
		otherDone <- other.gen.consume(ctx, other.dst, nil)
	}()

	total := stalled.gen.len()
	waitFor(t, 10*time.Second, "the sender to take its credits", func() bool { return len(stalled.src) <= total-credits })
	// The other stream on the same connection completes meanwhile.
	if err := <-otherDone; err != nil {
		t.Fatal(err)
	}
	holds(t, 100*time.Millisecond, fmt.Sprintf("the sender holding to its %d credits", credits), func() bool {
		return total-len(stalled.src) == credits && b.buffered("w1", 1) <= credits
	})
	if n := b.buffered("w1", 1); n != credits {
		t.Errorf("receiver holds %d messages, want %d", n, credits)
	}
	if err := stalled.gen.consume(ctx, stalled.dst, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []<-chan error{ra, rb} {
		if err := wait(t, "endpoint", r, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// endless feeds data messages into src until ctx ends.
func endless(ctx context.Context, src chan<- exec.Msg) {
	for i := 0; ; i++ {
		select {
		case src <- exec.Msg{Kind: exec.MsgData, Batch: []byte(fmt.Sprint(i))}:
		case <-ctx.Done():
			return
		}
	}
}

// TestPeerLost kills a peer mid-stream: Run fails naming the peer.
func TestPeerLost(t *testing.T) {
	tests := []struct {
		name   string
		peerID string // w0 dials the observed endpoint w1, w2 is dialed by it
		// peerSends: the peer sends to w1, else w1 sends to the peer.
		peerSends bool
		// kill stops the peer: cancel its Run or Close it.
		close bool
	}{
		{"receiver cancelled, dialed", "w2", false, false},
		{"receiver closed, dialed", "w2", false, true},
		{"sender cancelled, dialed", "w2", true, false},
		{"sender closed, accepted", "w0", true, true},
		{"receiver cancelled, accepted", "w0", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			var peer *Endpoint
			w1 := listen(t, "w1", Config{Credits: 2, Resolve: func(string) (string, error) { return peer.Addr(), nil }})
			peer = listen(t, tt.peerID, Config{Credits: 2, Resolve: func(string) (string, error) { return w1.Addr(), nil }})
			from, to := w1, peer
			if tt.peerSends {
				from, to = peer, w1
			}
			src, dst := make(chan exec.Msg, 4), make(chan exec.Msg)
			from.Send(to.cfg.ID, to.Addr(), 1, src, 1)
			to.Receive(from.cfg.ID, 1, dst, 1)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			peerCtx, peerCancel := context.WithCancel(ctx)
			defer peerCancel()
			r1, rp := start(ctx, w1), start(peerCtx, peer)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				endless(ctx, src)
			}()
			for range 100 {
				select {
				case <-dst:
				case err := <-r1:
					t.Fatalf("Run of w1 = %v before the peer stopped", err)
				}
			}
			if tt.close {
				peer.Close()
			} else {
				peerCancel()
			}
			// Keep consuming so that only the lost connection stops w1.
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-dst:
					case <-ctx.Done():
						return
					}
				}
			}()
			err := wait(t, "w1", r1, 10*time.Second)
			want := fmt.Sprintf("data connection to worker %q (", tt.peerID)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), ") lost: ") {
				t.Fatalf("Run = %v, want an error containing %q and lost", err, want)
			}
			if tt.peerID == "w2" && !strings.Contains(err.Error(), peer.Addr()) {
				t.Errorf("error %q does not name the peer's address %s", err, peer.Addr())
			}
			t.Log(err)
			wait(t, "peer", rp, 10*time.Second)
			cancel()
			wg.Wait()
			w1.Close()
			peer.Close()
			checkGoroutines(t, before)
		})
	}
}

var errStop = errors.New("test stops the job")

// TestCancel cancels the runs in various states: Run returns the cause
// promptly and no goroutine outlives it.
func TestCancel(t *testing.T) {
	tests := []struct {
		name string
		// setup registers streams and returns the endpoints to run and a
		// function started in the background, if any.
		setup func(t *testing.T, a, b *Endpoint) (run []*Endpoint, bg func(ctx context.Context))
		// stuck tells when the runs are in the state to cancel.
		stuck func(a, b *Endpoint) bool
	}{
		{"peer never runs (dialer waits for HELLO)", func(t *testing.T, a, b *Endpoint) ([]*Endpoint, func(context.Context)) {
			a.Send("w2", b.Addr(), 1, make(chan exec.Msg), 1)
			return []*Endpoint{a}, nil
		}, func(a, b *Endpoint) bool { return a.openConns() == 1 }},
		{"peer never dials (acceptor waits)", func(t *testing.T, a, b *Endpoint) ([]*Endpoint, func(context.Context)) {
			b.Receive("w1", 1, make(chan exec.Msg), 1)
			return []*Endpoint{b}, nil
		}, func(a, b *Endpoint) bool { return b.isRunning() }},
		{"peer not listening (dialer retries)", func(t *testing.T, a, b *Endpoint) ([]*Endpoint, func(context.Context)) {
			addr := b.Addr()
			b.Close()
			a.Send("w2", addr, 1, make(chan exec.Msg), 1)
			return []*Endpoint{a}, nil
		}, func(a, b *Endpoint) bool { return a.dialRetries.Load() >= 2 }},
		{"empty source", func(t *testing.T, a, b *Endpoint) ([]*Endpoint, func(context.Context)) {
			a.Send("w2", b.Addr(), 1, make(chan exec.Msg), 1)
			b.Receive("w1", 1, make(chan exec.Msg), 1)
			return []*Endpoint{a, b}, nil
		}, func(a, b *Endpoint) bool { return a.dialed.Load() == 1 && b.accepted.Load() == 1 }},
		{"full destination and no credit", func(t *testing.T, a, b *Endpoint) ([]*Endpoint, func(context.Context)) {
			src := make(chan exec.Msg)
			a.Send("w2", b.Addr(), 1, src, 1)
			b.Receive("w1", 1, make(chan exec.Msg), 1)
			src2, dst2 := make(chan exec.Msg), make(chan exec.Msg, 1)
			b.Send("w1", a.Addr(), 1, src2, 1)
			a.Receive("w2", 1, dst2, 1)
			return []*Endpoint{a, b}, func(ctx context.Context) {
				go endless(ctx, src2)
				endless(ctx, src)
			}
		}, func(a, b *Endpoint) bool { return b.buffered("w1", 1) == 2 && a.buffered("w2", 1) == 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			a := listen(t, "w1", Config{Credits: 2, DialTimeout: time.Minute})
			b := listen(t, "w2", Config{Credits: 2, DialTimeout: time.Minute})
			eps, bg := tt.setup(t, a, b)
			ctx, cancel := context.WithCancelCause(context.Background())
			var runs []<-chan error
			for _, e := range eps {
				runs = append(runs, start(ctx, e))
			}
			var wg sync.WaitGroup
			if bg != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					bg(ctx)
				}()
			}
			waitFor(t, 10*time.Second, "the runs to get stuck", func() bool { return tt.stuck(a, b) })
			t0 := time.Now()
			cancel(errStop)
			for i, r := range runs {
				if err := wait(t, eps[i].cfg.ID, r, 2*time.Second); !errors.Is(err, errStop) {
					t.Errorf("Run of %s = %v, want %v", eps[i].cfg.ID, err, errStop)
				}
			}
			if d := time.Since(t0); d > time.Second {
				t.Errorf("Run took %v to return after cancel", d)
			}
			wg.Wait()
			a.Close()
			b.Close()
			checkGoroutines(t, before)
		})
	}
}

// TestResolve has the dialing endpoint only receive, so that it learns the
// peer's address from Config.Resolve.
func TestResolve(t *testing.T) {
	var b *Endpoint
	a := listen(t, "w1", Config{Resolve: func(id string) (string, error) {
		if id != "w2" {
			return "", fmt.Errorf("no such worker %q", id)
		}
		return b.Addr(), nil
	}})
	b = listen(t, "w2", Config{})
	f := &flow{from: b, to: a, id: 5, gen: streamGen{tag: "resolved", n: 500}}
	f.register(4, 4)
	exchange(t, []*Endpoint{a, b}, []*flow{f}, nil)
	if a.dialed.Load() != 1 || b.accepted.Load() != 1 {
		t.Errorf("w1 dialed %d, w2 accepted %d; want 1, 1", a.dialed.Load(), b.accepted.Load())
	}
}

// TestZeroEnds: streams with nothing to wait for still connect and finish.
func TestZeroEnds(t *testing.T) {
	a := listen(t, "w1", Config{})
	b := listen(t, "w2", Config{})
	a.Send("w2", b.Addr(), 1, nil, 0)
	b.Receive("w1", 1, nil, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ra, rb := start(ctx, a), start(ctx, b)
	for _, r := range []<-chan error{ra, rb} {
		if err := wait(t, "endpoint", r, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRegistrationErrors(t *testing.T) {
	ch := make(chan exec.Msg)
	tests := []struct {
		name  string
		setup func(e *Endpoint)
		want  string
	}{
		{"self", func(e *Endpoint) { e.Send("w1", "x:1", 1, ch, 1) }, "with itself"},
		{"empty peer", func(e *Endpoint) { e.Receive("", 1, ch, 1) }, "empty peer ID"},
		{"send twice", func(e *Endpoint) {
			e.Send("w2", "x:1", 1, ch, 1)
			e.Send("w2", "x:1", 1, ch, 1)
		}, "send stream 1 to worker \"w2\" registered twice"},
		{"receive twice", func(e *Endpoint) {
			e.Receive("w2", 3, ch, 1)
			e.Receive("w2", 3, ch, 1)
		}, "receive stream 3 from worker \"w2\" registered twice"},
		{"two addresses", func(e *Endpoint) {
			e.Send("w2", "x:1", 1, ch, 1)
			e.Send("w2", "x:2", 2, ch, 1)
		}, "two addresses"},
		{"nil source", func(e *Endpoint) { e.Send("w2", "x:1", 1, nil, 1) }, "nil source channel"},
		{"nil destination", func(e *Endpoint) { e.Receive("w2", 1, nil, 1) }, "nil destination channel"},
		{"negative ends", func(e *Endpoint) { e.Receive("w2", 1, ch, -1) }, "negative ends"},
		{"no address to dial", func(e *Endpoint) { e.Receive("w2", 1, ch, 1) }, "knows no address for it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := listen(t, "w1", Config{})
			tt.setup(e)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := e.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("run twice", func(t *testing.T) {
		e := listen(t, "w1", Config{})
		if err := e.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := e.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Fatalf("second Run = %v", err)
		}
	})
	t.Run("run after close", func(t *testing.T) {
		e := listen(t, "w1", Config{})
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
		if err := e.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("Run = %v", err)
		}
	})
}

func TestBadBatch(t *testing.T) {
	a := listen(t, "w1", Config{})
	b := listen(t, "w2", Config{})
	src := make(chan exec.Msg, 1)
	src <- exec.Msg{Kind: exec.MsgData, Batch: []int{1}}
	a.Send("w2", b.Addr(), 1, src, 1)
	b.Receive("w1", 1, make(chan exec.Msg, 1), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ra, rb := start(ctx, a), start(ctx, b)
	if err := wait(t, "w1", ra, 10*time.Second); err == nil || !strings.Contains(err.Error(), "batch of type []int, want []byte") {
		t.Fatalf("Run = %v", err)
	}
	if err := wait(t, "w2", rb, 10*time.Second); err == nil || !strings.Contains(err.Error(), `worker "w1"`) {
		t.Fatalf("peer's Run = %v", err)
	}
}
