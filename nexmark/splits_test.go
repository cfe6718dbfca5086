package nexmark

import (
	"context"
	"io"
	"reflect"
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
