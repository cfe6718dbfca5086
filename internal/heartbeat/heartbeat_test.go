package heartbeat

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/script"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*.txt")

// TestScripts runs every testdata/*.txt through a Monitor and compares the
// transcript with testdata/*.golden.
func TestScripts(t *testing.T) { script.RunGolden(t, "testdata/*.txt", *update, run) }

var base = time.UnixMilli(0).UTC()

// run interprets a heartbeat script: config interval= timeout=, then
// add peer=, heard peer=, remove peer=, silent peer= and tick.
func run(src string) (string, error) {
	lines, err := script.Parse(src)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	var m *Monitor[string]
	for _, l := range lines {
		now := base.Add(l.At)
		fmt.Fprintf(&out, "%s\n", l)
		if m == nil && l.Cmd != "config" {
			return "", fmt.Errorf("line %d: the script must start with config", l.No)
		}
		peer := l.Str("peer", "")
		switch l.Cmd {
		case "config":
			interval, err := l.Duration("interval", 0)
			if err != nil {
				return "", err
			}
			timeout, err := l.Duration("timeout", 0)
			if err != nil {
				return "", err
			}
			cfg := Config{Interval: interval, Timeout: timeout}
			if err := cfg.Validate(); err != nil {
				fmt.Fprintf(&out, "  refused: %v\n", err)
				continue
			}
			m = New[string](cfg)
		case "add":
			m.Add(now, peer)
		case "heard":
			if !m.Heard(now, peer) {
				fmt.Fprintf(&out, "  ignored: %s is not watched\n", peer)
			}
		case "remove":
			m.Remove(peer)
		case "silent":
			d, ok := m.Silent(now, peer)
			fmt.Fprintf(&out, "  silent=%v watched=%v\n", d, ok)
		case "tick":
			e := m.Tick(now)
			if e.Send {
				fmt.Fprintf(&out, "  send to %d peers\n", m.Len())
			}
			for _, loss := range e.Lost {
				fmt.Fprintf(&out, "  lost %s: %s\n", loss.Peer, loss.Cause(m.Config().Timeout))
			}
			if next := m.Next(); !next.IsZero() {
				fmt.Fprintf(&out, "  next at %v\n", next.Sub(base))
			}
		default:
			return "", fmt.Errorf("line %d: unknown command %q", l.No, l.Cmd)
		}
		if err := l.Unused(); err != nil {
			return "", err
		}
	}
	return out.String(), nil
}

// TestInvariants drives a Monitor with random events and checks it
// against a direct model: a peer is lost at the first tick at which it has
// been silent for longer than the timeout, exactly once, and never while
// heard from within the timeout; heartbeats go out at the first tick and
// then once an interval has passed.
func TestInvariants(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		cfg := Config{Interval: time.Duration(1+r.IntN(5)) * 100 * time.Millisecond}
		cfg.Timeout = cfg.Interval * time.Duration(2+r.IntN(4))
		m := New[int](cfg)
		heard := map[int]time.Time{} // the model
		var sent time.Time
		now := base
		for step := range 300 {
			now = now.Add(time.Duration(r.IntN(150)) * time.Millisecond)
			peer := r.IntN(6)
			switch r.IntN(5) {
			case 0:
				m.Add(now, peer)
				heard[peer] = now
			case 1, 2:
				_, watched := heard[peer]
				if got := m.Heard(now, peer); got != watched {
					t.Fatalf("seed %d step %d: Heard(%d) = %v, the model watches it: %v", seed, step, peer, got, watched)
				}
				if watched {
					heard[peer] = now
				}
			case 3:
				m.Remove(peer)
				delete(heard, peer)
			case 4:
				next := m.Next()
				e := m.Tick(now)
				wantSend := sent.IsZero() || now.Sub(sent) >= cfg.Interval
				if e.Send != wantSend {
					t.Fatalf("seed %d step %d: Send = %v, want %v", seed, step, e.Send, wantSend)
				}
				if wantSend {
					sent = now
				}
				if (e.Send || len(e.Lost) > 0) && !next.IsZero() && now.Before(next) {
					t.Fatalf("seed %d step %d: Tick at %v did something before Next (%v)", seed, step, now.Sub(base), next.Sub(base))
				}
				lost := map[int]bool{}
				for _, l := range e.Lost {
					lost[l.Peer] = true
					if l.Silent != now.Sub(heard[l.Peer]) || l.Silent <= cfg.Timeout {
						t.Fatalf("seed %d step %d: lost %d silent %v, model %v, timeout %v", seed, step, l.Peer, l.Silent, now.Sub(heard[l.Peer]), cfg.Timeout)
					}
				}
				for p, at := range heard {
					if now.Sub(at) > cfg.Timeout != lost[p] {
						t.Fatalf("seed %d step %d: peer %d silent %v (timeout %v), lost = %v", seed, step, p, now.Sub(at), cfg.Timeout, lost[p])
					}
					if lost[p] {
						delete(heard, p)
					}
				}
				if m.Len() != len(heard) {
					t.Fatalf("seed %d step %d: %d peers watched, model %d", seed, step, m.Len(), len(heard))
				}
			}
		}
	}
}

func TestNewPanicsOnBadConfig(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "heartbeat.timeout") {
			t.Fatalf("New with timeout <= interval: panic %v", p)
		}
	}()
	New[int](Config{Interval: time.Second, Timeout: time.Second})
}
