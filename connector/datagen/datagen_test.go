package datagen_test

import (
	"context"
	"errors"
	"fmt"
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
	for _, bad := range []spate.SplitState{{ID: "datagen/1/3"}, {ID: "datagen/3/3", Position: []byte{6}}, {ID: "datagen/1/3", Position: []byte{4}}, {ID: "other/1/3", Position: []byte{2}}} {
		if _, err := src.(spate.RestorableSource[int64]).Restore(context.Background(), spate.Split{Subtask: 0, Parallelism: 2}, []spate.SplitState{bad}); err == nil {
			t.Errorf("restored malformed split %q at %x", bad.ID, bad.Position)
		}
	}
}

// TestRescaleSplits: the splits of p1 readers, taken mid-way and dealt out
// among p2 readers (some get none), make every remaining record once.
func TestRescaleSplits(t *testing.T) {
	const n = 97
	src := datagen.New(func(i int64) int64 { return i }, datagen.Count(n))
	for _, c := range []struct{ p1, p2 int }{{1, 4}, {4, 1}, {3, 5}, {5, 2}, {2, 2}} {
		t.Run(fmt.Sprintf("%d-to-%d", c.p1, c.p2), func(t *testing.T) {
			var got []int64
			var splits []spate.SplitState
			buf := make([]int64, 3)
			for s := range c.p1 {
				r, _ := src.Open(context.Background(), spate.Split{Subtask: s, Parallelism: c.p1})
				for range s + 1 {
					k, _ := r.Read(context.Background(), buf)
					got = append(got, buf[:k]...)
				}
				st, err := r.(spate.CheckpointedReader[int64]).SnapshotSplits()
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
				rr, err := src.(spate.RestorableSource[int64]).Restore(context.Background(), spate.Split{Subtask: s, Parallelism: c.p2}, mine)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, drainReader(t, rr)...)
			}
			slices.Sort(got)
			want := make([]int64, n)
			for i := range want {
				want[i] = int64(i)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%d records, want each of 0..%d once: %v", len(got), n-1, got)
			}
		})
	}
}

func drainReader(t *testing.T, r spate.SourceReader[int64]) []int64 {
	t.Helper()
	var out []int64
	buf := make([]int64, 5)
	for range 1000 {
		k, err := r.Read(context.Background(), buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the reader never ended")
	return nil
}

// FuzzRestoreSplits: a restore from any split states either refuses them
// or yields a reader that makes only indices of the splits' own
// sequences, below the count, and ends.
func FuzzRestoreSplits(f *testing.F) {
	f.Add("datagen/1/3", []byte{8}, "datagen/0/2", []byte{4})
	f.Add("datagen/0/1", []byte{0}, "datagen/5/4", []byte{10})
	f.Add("datagen/-1/3", []byte{0xff}, "datagen//", []byte{})
	f.Fuzz(func(t *testing.T, id1 string, pos1 []byte, id2 string, pos2 []byte) {
		const count = 40
		src := datagen.New(func(i int64) int64 { return i }, datagen.Count(count))
		splits := []spate.SplitState{{ID: id1, Position: pos1}, {ID: id2, Position: pos2}}
		r, err := src.(spate.RestorableSource[int64]).Restore(context.Background(), spate.Split{Subtask: 0, Parallelism: 2}, splits)
		if err != nil {
			return
		}
		got := drainReader(t, r)
		if len(got) > 2*count {
			t.Fatalf("restored reader made %d records of %d", len(got), count)
		}
		for _, v := range got {
			if v < 0 || v >= count {
				t.Fatalf("restored reader made index %d, outside 0..%d", v, count-1)
			}
		}
	})
}
