package datagen_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
)

func drain(t *testing.T, src spate.Source[int64], sp spate.Split) []int64 {
	t.Helper()
	r, err := src.Open(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []int64
	buf := make([]int64, 7)
	for {
		n, err := r.Read(context.Background(), buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestSplitsAreDisjointAndComplete(t *testing.T) {
	src := datagen.New(func(i int64) int64 { return i * 10 }, datagen.Count(100))
	for p := 1; p <= 4; p++ {
		var all []int64
		for s := 0; s < p; s++ {
			all = append(all, drain(t, src, spate.Split{Subtask: s, Parallelism: p})...)
		}
		slices.Sort(all)
		if len(all) != 100 || all[0] != 0 || all[99] != 990 || slices.Compact(all)[99] != 990 {
			t.Fatalf("parallelism %d: %d records, want 0..990 once each", p, len(all))
		}
	}
}

func TestRateLimit(t *testing.T) {
	src := datagen.New(func(i int64) int64 { return i }, datagen.Count(50), datagen.RatePerSecond(500))
	start := time.Now()
	got := drain(t, src, spate.Split{Subtask: 0, Parallelism: 1})
	if len(got) != 50 {
		t.Fatalf("got %d records, want 50", len(got))
	}
	// 50 records at 500/s take about 100ms; anything under 80ms means no limit.
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("50 records at 500/s took %v; the rate limit is not applied", d)
	}
}

// TestResumeFromSplits: a reader restored from its splits, taken between
// any two reads, goes on with the next index.
func TestResumeFromSplits(t *testing.T) {
	src := datagen.New(func(i int64) int64 { return i }, datagen.Count(50))
	sp := spate.Split{Subtask: 1, Parallelism: 3}
	want := drain(t, src, sp)
	for reads := 0; reads < 4; reads++ {
		r, _ := src.Open(context.Background(), sp)
		var got []int64
		buf := make([]int64, 4)
		for range reads {
			n, _ := r.Read(context.Background(), buf)
			got = append(got, buf[:n]...)
		}
		splits, err := r.(spate.CheckpointedReader[int64]).SnapshotSplits()
		if err != nil {
			t.Fatal(err)
		}
		rr, err := src.(spate.RestorableSource[int64]).Restore(context.Background(), sp, splits)
		if err != nil {
			t.Fatal(err)
		}
		for {
			n, err := rr.Read(context.Background(), buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("after %d reads and a restore: %v, want %v", reads, got, want)
		}
	}
	if _, err := src.(spate.RestorableSource[int64]).Restore(context.Background(), spate.Split{Subtask: 0, Parallelism: 2}, []spate.SplitState{{ID: "datagen/1/3"}}); err == nil {
		t.Fatal("restored a split of another parallelism")
	}
}
