package nexmark

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"slices"
	"testing"

	"github.com/spate-dev/spate"
)

func readEvents(t *testing.T, r spate.SourceReader[Event], max int) []Event {
	t.Helper()
	var out []Event
	buf := make([]Event, 7)
	for len(out) < max {
		n, err := r.Read(context.Background(), buf[:min(len(buf), max-len(out))])
		out = append(out, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestSplitsResume: a reader restored from its split state produces the
// events that followed, value for value.
func TestSplitsResume(t *testing.T) {
	src := NewSource(Config{NumEvents: 300})
	sp := spate.Split{Subtask: 1, Parallelism: 2}
	full, _ := src.Open(context.Background(), sp)
	want := readEvents(t, full, 1000)
	if len(want) != 150 {
		t.Fatalf("split has %d events, want 150", len(want))
	}
	for _, cut := range []int{0, 1, 77, 150} {
		r, _ := src.Open(context.Background(), sp)
		got := readEvents(t, r, cut)
		splits, err := r.(spate.CheckpointedReader[Event]).SnapshotSplits()
		if err != nil {
			t.Fatal(err)
		}
		rr, err := src.(spate.RestorableSource[Event]).Restore(context.Background(), sp, splits)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		got = append(got, readEvents(t, rr, 1000)...)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("cut after %d events: %d events differ from the unbroken split's %d", cut, len(got), len(want))
		}
	}
}

// TestSplitsRescale: the splits of p1 readers, taken mid-way and dealt
// out among p2 readers, produce the rest of the sequence exactly, each
// reader's events in event-time order.
func TestSplitsRescale(t *testing.T) {
	const total = 400
	src := NewSource(Config{NumEvents: total})
	full, _ := src.Open(context.Background(), spate.Split{Subtask: 0, Parallelism: 1})
	want := readEvents(t, full, 1000)
	if len(want) != total {
		t.Fatalf("the sequence has %d events, want %d", len(want), total)
	}
	for _, c := range []struct{ p1, p2 int }{{4, 2}, {2, 4}, {3, 1}, {1, 3}} {
		var got []Event
		var splits []spate.SplitState
		for s := range c.p1 {
			r, _ := src.Open(context.Background(), spate.Split{Subtask: s, Parallelism: c.p1})
			got = append(got, readEvents(t, r, 10*(s+1))...)
			st, err := r.(spate.CheckpointedReader[Event]).SnapshotSplits()
			if err != nil {
				t.Fatal(err)
			}
			splits = append(splits, st...)
		}
		for s := range c.p2 {
			var mine []spate.SplitState
			for i := s; i < len(splits); i += c.p2 {
				mine = append(mine, splits[i])
			}
			rr, err := src.(spate.RestorableSource[Event]).Restore(context.Background(), spate.Split{Subtask: s, Parallelism: c.p2}, mine)
			if err != nil {
				t.Fatalf("%d to %d: %v", c.p1, c.p2, err)
			}
			evs := readEvents(t, rr, 1000)
			for i := 1; i < len(evs); i++ {
				if evs[i].UnixMilli() < evs[i-1].UnixMilli() {
					t.Fatalf("%d to %d: reader %d went back in event time at its event %d", c.p1, c.p2, s, i)
				}
			}
			got = append(got, evs...)
		}
		key := func(e Event) string { return fmt.Sprintf("%d %+v %+v %+v", e.UnixMilli(), e.Person, e.Auction, e.Bid) }
		var gotKeys, wantKeys []string
		for _, e := range got {
			gotKeys = append(gotKeys, key(e))
		}
		for _, e := range want {
			wantKeys = append(wantKeys, key(e))
		}
		slices.Sort(gotKeys)
		slices.Sort(wantKeys)
		if !slices.Equal(gotKeys, wantKeys) {
			t.Fatalf("%d to %d: %d events, want the sequence's %d, each once", c.p1, c.p2, len(gotKeys), len(wantKeys))
		}
	}
	if _, err := src.(spate.RestorableSource[Event]).Restore(context.Background(), spate.Split{Subtask: 0, Parallelism: 2}, []spate.SplitState{{ID: "nexmark/3/3", Position: []byte{0}}}); err == nil {
		t.Error("restored split 3 of 3")
	}
}

// FuzzRestoreSplits: a restore from any split states is refused or yields
// a reader that ends within the sequence's events, in event-time order.
func FuzzRestoreSplits(f *testing.F) {
	f.Add("nexmark/1/3", []byte{8}, "nexmark/0/2", []byte{4})
	f.Add("nexmark/0/1", []byte{0}, "nexmark/2/4", []byte{0xff, 0x01})
	f.Add("nexmark/-1/3", []byte{}, "nexmark//", []byte{2})
	f.Fuzz(func(t *testing.T, id1 string, pos1 []byte, id2 string, pos2 []byte) {
		const total = 60
		src := NewSource(Config{NumEvents: total})
		r, err := src.(spate.RestorableSource[Event]).Restore(context.Background(), spate.Split{Subtask: 0, Parallelism: 2},
			[]spate.SplitState{{ID: id1, Position: pos1}, {ID: id2, Position: pos2}})
		if err != nil {
			return
		}
		evs := readEvents(t, r, 3*total)
		if len(evs) > 2*total {
			t.Fatalf("%d events from a sequence of %d", len(evs), total)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].UnixMilli() < evs[i-1].UnixMilli() {
				t.Fatalf("went back in event time at event %d", i)
			}
		}
	})
}
