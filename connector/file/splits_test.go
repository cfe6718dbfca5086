package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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

// csvRow is the row type of testdata/csv/multiline.csv.
type csvRow struct {
	ID   int    `csv:"id"`
	Text string `csv:"text"`
	N    int    `csv:"n"`
}

// readSteps reads r one result at a time until the end or k results, each
// a record or a record error, written as text.
func readSteps[T any](t *testing.T, r spate.SourceReader[T], k int) ([]string, bool) {
	t.Helper()
	var steps []string
	buf := make([]T, 1)
	for len(steps) < k {
		n, err := r.Read(context.Background(), buf)
		if n == 1 {
			steps = append(steps, fmt.Sprintf("record %+v", buf[0]))
		}
		var re *spate.RecordError
		switch {
		case err == io.EOF:
			return steps, true
		case errors.As(err, &re):
			steps = append(steps, fmt.Sprintf("error %s:%d %q: %v", re.Source, re.Line, re.Record, re.Err))
		case err != nil:
			t.Fatal(err)
		}
	}
	return steps, false
}

// TestCSVSplitsResume: restored at every row boundary of CSV files with
// quoted cells spanning lines, CRLF endings, blank lines and malformed
// rows, a reader goes on with exactly the rows after the snapshot: the
// same records, and the same record errors with the same line numbers, as
// a reader that never stopped. The header is read again to map the
// columns; without a header the first row sets the number of columns.
func TestCSVSplitsResume(t *testing.T) {
	data, err := os.ReadFile("testdata/csv/multiline.csv")
	if err != nil {
		t.Fatal(err)
	}
	noHeader := strings.SplitN(string(data), "\n", 2)[1] // the header line dropped
	tests := []struct {
		name  string
		files []string // contents, read in order
		opts  []CSVOption
	}{
		{name: "header", files: []string{string(data), "id,n\n9,90\n", string(data)}},
		{name: "no header", files: []string{noHeader, "\"x\n\n"}, opts: []CSVOption{NoHeader()}},
		{name: "malformed header", files: []string{"id,\"te\"xt\n1,a,2\n", "id\n3\n"}},
		{name: "semicolons", files: []string{strings.ReplaceAll(string(data), ",", ";")}, opts: []CSVOption{Comma(';')}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for i, f := range tt.files {
				write(t, filepath.Join(dir, fmt.Sprintf("in-%d.csv", i)), f)
			}
			src := CSV[csvRow]([]string{dir}, tt.opts...).(csvSource[csvRow])
			split := spate.Split{Subtask: 0, Parallelism: 1}
			r, err := src.Open(context.Background(), split)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := readSteps(t, r, 1<<20)
			r.Close()
			errs := 0
			for _, s := range want {
				if strings.HasPrefix(s, "error ") {
					errs++
				}
			}
			if errs == 0 || errs == len(want) {
				t.Fatalf("the files yield %d record errors in %d results, want some of each: %q", errs, len(want), want)
			}
			for cut := 0; cut <= len(want); cut++ {
				r, err := src.Open(context.Background(), split)
				if err != nil {
					t.Fatal(err)
				}
				before, _ := readSteps(t, r, cut)
				splits, err := r.(spate.CheckpointedReader[csvRow]).SnapshotSplits()
				if err != nil {
					t.Fatalf("cut %d: SnapshotSplits: %v", cut, err)
				}
				r.Close()
				rr, err := src.Restore(context.Background(), split, splits)
				if err != nil {
					t.Fatalf("cut %d: Restore: %v", cut, err)
				}
				after, end := readSteps(t, rr, len(want)+1)
				rr.Close()
				if !end {
					t.Fatalf("cut %d: the restored reader did not end", cut)
				}
				if got := append(slices.Clone(before), after...); !slices.Equal(got, want) {
					t.Fatalf("cut after %d results: read\n%s\nthen\n%s\nwant\n%s", cut, strings.Join(before, "\n"), strings.Join(after, "\n"), strings.Join(want, "\n"))
				}
			}
		})
	}
}

// TestCSVResumeLineNumbers: right after a restore, a record error names
// the line of the file on which its row starts, counting the lines of the
// quoted cells before the snapshot.
func TestCSVResumeLineNumbers(t *testing.T) {
	src := CSV[csvRow]([]string{"testdata/csv/multiline.csv"}).(csvSource[csvRow])
	split := spate.Split{Subtask: 0, Parallelism: 1}
	r, err := src.Open(context.Background(), split)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readSteps(t, r, 3) // rows 1 to 3, the second on lines 3 and 4
	splits, err := r.(spate.CheckpointedReader[csvRow]).SnapshotSplits()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	rr, err := src.Restore(context.Background(), split, splits)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	buf := make([]csvRow, 1)
	_, err = rr.Read(context.Background(), buf)
	var re *spate.RecordError
	if !errors.As(err, &re) || re.Line != 7 || re.Record != "4,\"three\nshort\nlines\",x" || !strings.Contains(re.Err.Error(), `column "n"`) {
		t.Fatalf("after %q, the first read of the restored reader: %v; want the error of the row on lines 7 to 9", got, err)
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
