package network

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// listen opens an endpoint on 127.0.0.1 that the test closes at its end.
func listen(t testing.TB, id string, cfg Config) *Endpoint {
	t.Helper()
	cfg.ID = id
	e, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// start runs e in the background; the channel yields Run's result.
func start(ctx context.Context, e *Endpoint) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- e.Run(ctx) }()
	return ch
}

// wait returns the result of a Run started with start, failing the test if
// it takes longer than d.
func wait(t testing.TB, name string, ch <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("Run of %s did not return within %v\n%s", name, d, buf)
		return nil
	}
}

// checkGoroutines waits until no more goroutines run than before.
func checkGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d before: leaked\n%s", n, before, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holds checks that cond stays true for d, polling it: the absence of an
// event (a sender taking more than its credits) can only be observed over
// a window.
func holds(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(time.Millisecond)
	}
	if !cond() {
		t.Fatalf("%s stopped holding", what)
	}
}

// isRunning tells whether e's Run has started.
func (e *Endpoint) isRunning() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running
}

// openConns is the number of connections e has open.
func (e *Endpoint) openConns() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

// streamGen produces the deterministic message sequence of a test stream:
// n messages over two channels, data with varying payloads and some
// watermarks, idle marks and barriers, then an END per channel.
type streamGen struct {
	tag string // distinguishes streams and directions in payloads
	n   int
}

func (g streamGen) len() int { return g.n + 2 }

func (g streamGen) msg(i int) exec.Msg {
	if i >= g.n {
		return exec.Msg{Kind: exec.MsgEnd, Channel: int32(i - g.n)}
	}
	ch := int32(i % 2)
	switch {
	case i%97 == 96:
		return exec.Msg{Kind: exec.MsgWatermark, Channel: ch, WM: int64(i) * 1000}
	case i%1013 == 1000:
		return exec.Msg{Kind: exec.MsgIdle, Channel: ch}
	case i%499 == 498:
		return exec.Msg{Kind: exec.MsgBarrier, Channel: ch, WM: int64(i)}
	}
	p := fmt.Sprintf("%s/%d/", g.tag, i)
	p += strings.Repeat("x", i%61)
	return exec.Msg{Kind: exec.MsgData, Channel: ch, Batch: []byte(p)}
}

// produce feeds the whole sequence into src.
func (g streamGen) produce(ctx context.Context, src chan<- exec.Msg) {
	for i := range g.len() {
		select {
		case src <- g.msg(i):
		case <-ctx.Done():
			return
		}
	}
}

// check compares a received message with the i-th of the sequence.
func (g streamGen) check(i int, m exec.Msg) error {
	want := g.msg(i)
	if m.Kind != want.Kind || m.Channel != want.Channel || m.WM != want.WM {
		return fmt.Errorf("%s message %d = %+v, want %+v", g.tag, i, m, want)
	}
	if want.Kind == exec.MsgData {
		b, ok := m.Batch.([]byte)
		if !ok || string(b) != string(want.Batch.([]byte)) {
			return fmt.Errorf("%s message %d batch = %#v, want %q", g.tag, i, m.Batch, want.Batch)
		}
	} else if m.Batch != nil {
		return fmt.Errorf("%s message %d: batch %#v on a %v", g.tag, i, m.Batch, m.Kind)
	}
	return nil
}

// consume reads the whole sequence from dst, optionally keeping the data
// batches, and reports the first mismatch.
func (g streamGen) consume(ctx context.Context, dst <-chan exec.Msg, keep *[][]byte) error {
	for i := range g.len() {
		select {
		case m := <-dst:
			if err := g.check(i, m); err != nil {
				return err
			}
			if keep != nil && m.Kind == exec.MsgData {
				*keep = append(*keep, m.Batch.([]byte))
			}
		case <-ctx.Done():
			return fmt.Errorf("%s: stopped after %d of %d messages: %w", g.tag, i, g.len(), context.Cause(ctx))
		}
	}
	return nil
}
