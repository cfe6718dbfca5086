package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// intCodec encodes batches of ints for the data plane.
var intCodec = &exec.Codec[int]{
	Encode: func(dst []byte, b []exec.Rec[int]) []byte {
		for _, r := range b {
			dst = binary.AppendVarint(dst, int64(r.V))
		}
		return dst
	},
	Decode: func(src []byte, into []exec.Rec[int]) ([]exec.Rec[int], error) {
		for len(src) > 0 {
			v, n := binary.Varint(src)
			if n <= 0 {
				return nil, errors.New("bad varint")
			}
			into = append(into, exec.Rec[int]{V: int(v), Ts: exec.NoTimestamp})
			src = src[n:]
		}
		return into, nil
	},
}

// countingHead counts records per source (value / 1e6) and closes full
// when it has n0 of source 0.
type countingHead struct {
	per  [2]int
	n0   int
	full chan struct{}
}

func (h *countingHead) Collect(v int, _ int64) {
	h.per[v/1_000_000]++
	if v/1_000_000 == 0 && h.per[0] == h.n0 {
		close(h.full)
	}
}
func (h *countingHead) Watermark(int64) {}
func (h *countingHead) Finish()         {}

// TestBarriersAcrossProcesses runs two sources, each behind its own
// endpoint, into a consumer behind a third, with few credits: source 0
// sends its barrier and then far more than the credits and inbox hold
// before source 1 sends its barrier. Aligned, the consumer's snapshot holds
// exactly the records before the barriers, and the blocked channel does
// not stall the data plane. Not aligned, source 1 sends its barrier once
// the consumer has had all of source 0, which its snapshot then holds.
func TestBarriersAcrossProcesses(t *testing.T) {
	for _, aligned := range []bool{true, false} {
		t.Run(fmt.Sprintf("aligned=%v", aligned), func(t *testing.T) {
			const before0, after0, before1, after1 = 10, 5000, 7, 3
			cfg := Config{Credits: 2}
			epA, epB, epC := listen(t, "a", cfg), listen(t, "b", cfg), listen(t, "c", cfg)

			cons := &exec.Task{Name: "consumer", Parallelism: 1, Inbox: make(chan exec.Msg, 2), ChannelGates: []int{0, 0}}
			head := &countingHead{n0: before0 + after0, full: make(chan struct{})}
			cons.Gates = []func(any) (int, error){exec.Deliverer[int](head, intCodec)}
			cons.Head = head
			var snap [2]int
			snapped := 0
			cons.Checkpoint = exec.Checkpointing{Aligned: aligned, Snapshot: func(id int64) {
				if id == 1 {
					snap = head.per
					snapped++
				}
			}}
			epC.Receive("a", 1, cons.Inbox, 1)
			epC.Receive("b", 1, cons.Inbox, 1)

			done0 := make(chan struct{})
			source := func(ep *Endpoint, ch int32, before, after int, signal, wait chan struct{}) *exec.Task {
				q := make(chan exec.Msg, 2)
				ep.Send("c", epC.Addr(), 1, q, 1)
				src := &exec.Task{Name: fmt.Sprint("source ", ch), Subtask: int(ch), Parallelism: 2}
				w := exec.NewEdgeWriter(src, exec.EdgeWriterConfig[int]{Targets: []chan exec.Msg{q}, Channel: ch, Part: exec.Rebalance, BatchSize: 3, Codec: intCodec})
				src.Source = func(ctx context.Context) error {
					next := int(ch) * 1_000_000
					emit := func(n int) {
						for range n {
							w.Collect(next, exec.NoTimestamp)
							next++
						}
					}
					emit(before)
					if wait != nil {
						w.Flush()
						select {
						case <-wait:
						case <-ctx.Done():
							return ctx.Err()
						}
					}
					src.TriggerCheckpoint(1)
					src.PollCheckpoint()
					emit(after)
					w.Finish()
					if signal != nil {
						close(signal)
					}
					return nil
				}
				return src
			}
			src0 := source(epA, 0, before0, after0, done0, nil)
			wait1 := done0
			if !aligned {
				wait1 = head.full
			}
			src1 := source(epB, 1, before1, after1, nil, wait1)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 6)
			for _, ep := range []*Endpoint{epA, epB, epC} {
				wg.Add(1)
				go func() { defer wg.Done(); errs <- ep.Run(ctx) }()
			}
			for _, tasks := range [][]*exec.Task{{src0}, {src1}, {cons}} {
				wg.Add(1)
				go func() { defer wg.Done(); errs <- exec.Run(ctx, tasks) }()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if snapped != 1 {
				t.Fatalf("consumer took %d snapshots of checkpoint 1, want 1", snapped)
			}
			want := [2]int{before0, before1}
			if !aligned {
				want[0] = before0 + after0
			}
			if snap != want {
				t.Errorf("snapshot holds %v records per source, want %v", snap, want)
			}
			if total := [2]int{before0 + after0, before1 + after1}; head.per != total {
				t.Errorf("consumer received %v records per source, want %v", head.per, total)
			}
		})
	}
}

// TestStaleAttemptRefused: endpoints of two attempts of a job do not
// connect, whichever of the two dials.
func TestStaleAttemptRefused(t *testing.T) {
	for _, tc := range []struct{ dialer, acceptor uint64 }{{1, 2}, {2, 1}} {
		t.Run(fmt.Sprintf("dialer attempt %d, acceptor %d", tc.dialer, tc.acceptor), func(t *testing.T) {
			a := listen(t, "a", Config{Attempt: tc.dialer, DialTimeout: 5 * time.Second}) // "a" < "b": a dials
			b := listen(t, "b", Config{Attempt: tc.acceptor, DialTimeout: 5 * time.Second})
			q := make(chan exec.Msg, 1)
			a.Send("b", b.Addr(), 1, q, 1)
			b.Receive("a", 1, make(chan exec.Msg, 1), 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ra, rb := start(ctx, a), start(ctx, b)
			for _, r := range []struct {
				name string
				ch   <-chan error
			}{{"a", ra}, {"b", rb}} {
				err := wait(t, r.name, r.ch, 10*time.Second)
				if r.name == "a" && tc.dialer < tc.acceptor || r.name == "b" && tc.acceptor < tc.dialer {
					// The stale end fails; its message says it must stop.
					if err == nil || !strings.Contains(err.Error(), "must stop") {
						t.Errorf("Run of stale %s = %v, want a refusal saying it must stop", r.name, err)
					}
				} else if err == nil || !strings.Contains(err.Error(), "a stale attempt's data must not reach the restored job") {
					t.Errorf("Run of current %s = %v, want a refusal of the stale attempt", r.name, err)
				}
			}
		})
	}
}
