package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

// readUpTo reads from r with a buffer of size until it has k records or
// the end, returning them.
func readUpTo[T any](t *testing.T, r spate.SourceReader[T], size, k int) ([]T, bool) {
	t.Helper()
	var got []T
	buf := make([]T, size)
	for len(got) < k {
		n, err := r.Read(context.Background(), buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got, true
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return got, false
}

// TestFileSplitsResume: at every point between reads, the reader's splits
// restore into a reader that goes on exactly after the last line read, so
// that the lines before the snapshot and after the restore are the files'
// lines, once each.
func TestFileSplitsResume(t *testing.T) {
	dir := t.TempDir()
	var all []string
	for f, n := range []int{5, 0, 7, 1} {
		var b strings.Builder
		for i := range n {
			line := fmt.Sprintf("f%d-l%d", f, i)
			all = append(all, line)
			b.WriteString(line)
			if i%2 == 0 {
				b.WriteString("\r") // CRLF endings count in the offsets
			}
			b.WriteString("\n")
		}
		write(t, filepath.Join(dir, fmt.Sprintf("in-%d.txt", f)), b.String())
	}
	src := Lines(dir).(linesSource)
	split := spate.Split{Subtask: 0, Parallelism: 1}
	for cut := 0; cut <= len(all); cut++ {
		r, err := src.Open(context.Background(), split)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := readUpTo(t, r, 2, cut)
		splits, err := r.(spate.CheckpointedReader[string]).SnapshotSplits()
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		rr, err := src.Restore(context.Background(), split, splits)
		if err != nil {
			t.Fatalf("cut %d: Restore: %v", cut, err)
		}
		after, end := readUpTo(t, rr, 3, len(all)+1)
		rr.Close()
		if !end {
			t.Fatalf("cut %d: the restored reader did not end", cut)
		}
		if got := append(slices.Clone(before), after...); !slices.Equal(got, all) {
			t.Fatalf("cut after %d lines: read %q then %q, want %q", len(before), before, after, all)
		}
	}
}

// TestJSONLinesSplitsResume: the same for JSON Lines, whose line numbers in
// record errors go on counting after a restore.
func TestJSONLinesSplitsResume(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.jsonl"), "{\"N\":1}\n\n{\"N\":2}\nnot json\n{\"N\":3}\n")
	src := JSONLines[struct{ N int }](dir).(jsonSource[struct{ N int }])
	split := spate.Split{Subtask: 0, Parallelism: 1}
	r, _ := src.Open(context.Background(), split)
	got, _ := readUpTo(t, r, 1, 1)
	splits, err := r.(spate.CheckpointedReader[struct{ N int }]).SnapshotSplits()
	if err != nil {
		t.Fatal(err)
	}
	rr, err := src.Restore(context.Background(), split, splits)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]struct{ N int }, 10)
	n, err := rr.Read(context.Background(), buf)
	var re *spate.RecordError
	if n != 1 || buf[0].N != 2 || !errors.As(err, &re) || re.Line != 4 {
		t.Fatalf("after restore: %d records %v, error %v; want record 2, then the malformed line 4", n, buf[:n], err)
	}
	if len(got) != 1 || got[0].N != 1 {
		t.Fatalf("before the snapshot: %v", got)
	}
}

// TestCSVDeclinesCheckpoints: a CSV reader cannot tell its position yet,
// and says so.
func TestCSVDeclinesCheckpoints(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.csv"), "N\n1\n2\n")
	r, err := CSV[struct{ N int }]([]string{dir}).Open(context.Background(), spate.Split{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	readUpTo(t, r, 1, 1)
	if _, err := r.(spate.CheckpointedReader[struct{ N int }]).SnapshotSplits(); err == nil || !strings.Contains(err.Error(), "cannot be checkpointed") {
		t.Fatalf("SnapshotSplits of a CSV reader = %v", err)
	}
}

// TestFilePendingBytes: after every read, the reader's pendingBytes are
// the bytes of its files after the last line read, before and after a
// restore, and 0 at the end; the records left are unknown.
func TestFilePendingBytes(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	total := 0
	for f, n := range []int{3, 0, 4} {
		var b strings.Builder
		for i := range n {
			line := fmt.Sprintf("file %d line %d %s", f, i, strings.Repeat("x", i*7))
			lines = append(lines, line)
			b.WriteString(line + "\n")
		}
		total += b.Len()
		write(t, filepath.Join(dir, fmt.Sprintf("in-%d.txt", f)), b.String())
	}
	src := Lines(dir).(linesSource)
	split := spate.Split{Subtask: 0, Parallelism: 1}
	open, err := src.Open(context.Background(), split)
	if err != nil {
		t.Fatal(err)
	}
	var r spate.SourceReader[string] = open
	pending := func() (int64, int64) { return r.(spate.PendingReader).Pending() }
	if recs, b := pending(); recs != -1 || b != int64(total) {
		t.Fatalf("before reading: pending (%d records, %d bytes), want (-1, %d)", recs, b, total)
	}
	left := total
	for i, line := range lines {
		got, _ := readUpTo(t, r, 1, 1)
		if len(got) != 1 || got[0] != line {
			t.Fatalf("read %q, want %q", got, line)
		}
		left -= len(line) + 1
		if _, b := pending(); b != int64(left) {
			t.Fatalf("after line %d: %d bytes pending, want %d", i, b, left)
		}
		if i == 1 { // a restored reader goes on counting from its offsets
			splits, err := r.(spate.CheckpointedReader[string]).SnapshotSplits()
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			if r, err = src.Restore(context.Background(), split, splits); err != nil {
				t.Fatal(err)
			}
			if _, b := pending(); b != int64(left) {
				t.Fatalf("restored after line %d: %d bytes pending, want %d", i, b, left)
			}
		}
	}
	if _, end := readUpTo(t, r, 1, 1); !end {
		t.Fatal("no end after the last line")
	}
	if _, b := pending(); b != 0 {
		t.Fatalf("at the end: %d bytes pending, want 0", b)
	}
	r.Close()
}
