package kafka

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate"
)

// readToEOF reads r until io.EOF, failing after a generous deadline.
func readToEOF[T any](t *testing.T, r spate.SourceReader[T]) []T {
	t.Helper()
	buf := make([]T, 64)
	var got []T
	for end := time.Now().Add(30 * time.Second); ; {
		if time.Now().After(end) {
			t.Fatalf("no EOF in 30s after %d records", len(got))
		}
		n, err := r.Read(context.Background(), buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSourceBoundedLatest: scan.bounded.mode latest-offset stops at the
// ends the partitions had at the start, past the markers of committed
// and aborted transactions with read_committed, and a restore stops at
// the same offsets.
func TestSourceBoundedLatest(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "bounded", 2)
	produce(t, manual(t, brokers), numbered("bounded", "a", 10, 2, time.Now())...)
	// A committed and an aborted transaction, ending with their markers.
	tx := client(t, brokers, kgo.TransactionalID("bounded-tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		prefix := "c"
		if !commit {
			prefix = "x"
		}
		produce(t, tx, numbered("bounded", prefix, 4, 2, time.Now())...)
		if err := tx.EndTransaction(context.Background(), commit); err != nil {
			t.Fatal(err)
		}
	}
	src := NewSource(SourceConfig{Brokers: brokers, Topics: []string{"bounded"}, BoundedMode: BoundedLatest, ReadCommitted: true}, String())
	r := open(t, src, 0, 1)
	first, _, _ := readUntil(t, r, 5)
	snap, err := r.(spate.CheckpointedReader[string]).SnapshotSplits()
	if err != nil {
		t.Fatal(err)
	}
	produce(t, manual(t, brokers), numbered("bounded", "late", 4, 2, time.Now())...)
	rest := readToEOF(t, r)
	want := append(values(numbered("bounded", "a", 10, 2, time.Now())), values(numbered("bounded", "c", 4, 2, time.Now()))...)
	if got := append(slices.Clone(first), rest...); !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("bounded reader read %v\nwant %v", sorted(got), sorted(want))
	}
	r2, err := src.Restore(context.Background(), spate.Split{Parallelism: 1}, snap)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if again := readToEOF(t, r2); !slices.Equal(sorted(again), sorted(rest)) {
		t.Errorf("restored bounded reader read %v, want %v", sorted(again), sorted(rest))
	}
}
