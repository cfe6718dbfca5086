package file

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

// listDir returns the names of the files in dir, sorted.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeAll opens sink for each subtask of parallelism p, writes the records
// i with i % p == subtask, and closes the writers.
func writeAll[T any](t testing.TB, sink spate.Sink[T], p int, recs []T) {
	t.Helper()
	ctx := context.Background()
	for s := range p {
		w, err := sink.Open(ctx, spate.SinkInfo{Subtask: s, Parallelism: p, JobName: "test"})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if i%p == s {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Close(nil); err != nil {
			t.Fatal(err)
		}
	}
}

type point struct{ X, Y int }

func (p point) String() string { return fmt.Sprintf("(%d,%d)", p.X, p.Y) }

func TestSinkDefaultFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "nested") // created by Open
	writeAll(t, Sink[string](dir), 2, []string{"a", "b", "c", "d", "e"})
	if got, want := listDir(t, dir), []string{"part-0-0", "part-1-0"}; !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	if got := readFile(t, filepath.Join(dir, "part-0-0")); got != "a\nc\ne\n" {
		t.Errorf("part-0-0 = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "part-1-0")); got != "b\nd\n" {
		t.Errorf("part-1-0 = %q", got)
	}

	// Stringers and other values.
	dir2 := t.TempDir()
	writeAll(t, Sink[point](dir2), 1, []point{{1, 2}, {3, 4}})
	if got := readFile(t, filepath.Join(dir2, "part-0-0")); got != "(1,2)\n(3,4)\n" {
		t.Errorf("stringers: %q", got)
	}
	dir3 := t.TempDir()
	writeAll(t, Sink[[]int](dir3), 1, [][]int{{1, 2}, nil})
	if got := readFile(t, filepath.Join(dir3, "part-0-0")); got != "[1 2]\n[]\n" {
		t.Errorf("Sprint: %q", got)
	}
	dir4 := t.TempDir()
	writeAll(t, Sink[*point](dir4), 1, []*point{{5, 6}, nil})
	if got := readFile(t, filepath.Join(dir4, "part-0-0")); got != "(5,6)\n<nil>\n" {
		t.Errorf("pointer stringers: %q", got)
	}
}

func TestSinkJSON(t *testing.T) {
	dir := t.TempDir()
	recs := []event{{1, "a<b>", []string{"x"}}, {2, "b", nil}}
	writeAll(t, Sink[event](dir, JSON()), 1, recs)
	got := readFile(t, filepath.Join(dir, "part-0-0"))
	if want := "{\"id\":1,\"name\":\"a<b>\",\"tags\":[\"x\"]}\n{\"id\":2,\"name\":\"b\"}\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Round trip through JSONLines.
	res := drainAll(t, JSONLines[event](dir), 10)
	if !reflect.DeepEqual(res.recs, recs) {
		t.Errorf("round trip %+v, want %+v", res.recs, recs)
	}
}

func TestSinkJSONError(t *testing.T) {
	dir := t.TempDir()
	w, err := Sink[float64](dir, JSON()).Open(context.Background(), spate.SinkInfo{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(1); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(math.NaN()); err == nil || !strings.Contains(err.Error(), "JSON") {
		t.Errorf("Write(NaN) = %v, want a JSON error", err)
	}
	if err := w.Write(2); err != nil { // the writer stays usable
		t.Fatal(err)
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "part-0-0")); got != "1\n2\n" {
		t.Errorf("got %q", got)
	}
}

func TestSinkFormat(t *testing.T) {
	dir := t.TempDir()
	writeAll(t, Sink[point](dir, JSON(), Format(func(p point) string { return fmt.Sprint(p.X + p.Y) })), 1, []point{{1, 2}, {3, 4}})
	if got := readFile(t, filepath.Join(dir, "part-0-0")); got != "3\n7\n" {
		t.Errorf("got %q", got)
	}
	// A Format of the wrong type fails Open.
	_, err := Sink[point](t.TempDir(), Format(func(s string) string { return s })).Open(context.Background(), spate.SinkInfo{Parallelism: 1})
	if err == nil || !strings.Contains(err.Error(), "func(string) string") || !strings.Contains(err.Error(), "func(file.point) string") {
		t.Errorf("Open with mismatched Format: %v", err)
	}
}

func TestSinkRollSize(t *testing.T) {
	dir := t.TempDir()
	var recs []string
	for i := range 100 {
		recs = append(recs, fmt.Sprintf("record-%03d", i)) // 11 bytes with "\n"
	}
	writeAll(t, Sink[string](dir, RollSize(100)), 2, recs)
	names := listDir(t, dir)
	var all []string
	for _, n := range names {
		if strings.HasPrefix(n, ".") || !strings.HasPrefix(n, "part-") {
			t.Errorf("unexpected file %s", n)
			continue
		}
		content := readFile(t, filepath.Join(dir, n))
		// Rolled when the size exceeded 100 bytes: 10 records are 110 bytes.
		if len(content) > 110 {
			t.Errorf("%s has %d bytes", n, len(content))
		}
		all = append(all, strings.Split(strings.TrimSuffix(content, "\n"), "\n")...)
	}
	// 50 records per subtask, 10 per file: 5 files each.
	for s := range 2 {
		for c := range 5 {
			if !slices.Contains(names, fmt.Sprintf("part-%d-%d", s, c)) {
				t.Errorf("missing part-%d-%d in %v", s, c, names)
			}
		}
	}
	if len(names) != 10 {
		t.Errorf("files %v, want 10", names)
	}
	slices.Sort(all)
	if !slices.Equal(all, recs) {
		t.Errorf("records written %v", all)
	}
	// Lines reads them back.
	res := drainAll(t, Lines(dir), 7)
	slices.Sort(res.recs)
	if !slices.Equal(res.recs, recs) {
		t.Errorf("read back %d records", len(res.recs))
	}
}

func TestSinkInProgress(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	w, err := Sink[string](dir, RollSize(5)).Open(ctx, spate.SinkInfo{Subtask: 3, Parallelism: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Errorf("files before the first write: %v", got)
	}
	if err := w.Write("ab"); err != nil {
		t.Fatal(err)
	}
	if got, want := listDir(t, dir), []string{".part-3-0.inprogress"}; !slices.Equal(got, want) {
		t.Errorf("files while writing %v, want %v", got, want)
	}
	// A source reading the directory skips the in-progress file.
	if res := drainAll(t, Lines(dir), 4); len(res.recs) != 0 {
		t.Errorf("read %v from in-progress files", res.recs)
	}
	if err := w.Write("cdefg"); err != nil { // 9 bytes > 5: rolls
		t.Fatal(err)
	}
	// The complete file waits, hidden, for the job's end.
	if got, want := listDir(t, dir), []string{".part-3-0.inprogress"}; !slices.Equal(got, want) {
		t.Errorf("files after rolling %v, want %v", got, want)
	}
	if err := w.Write("h"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	if got, want := listDir(t, dir), []string{"part-3-0", "part-3-1"}; !slices.Equal(got, want) {
		t.Errorf("files after Close %v, want %v", got, want)
	}
	if got := readFile(t, filepath.Join(dir, "part-3-0")); got != "ab\ncdefg\n" {
		t.Errorf("part-3-0 = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "part-3-1")); got != "h\n" {
		t.Errorf("part-3-1 = %q", got)
	}
	if err := w.Close(nil); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.Write("x"); err == nil {
		t.Error("Write after Close succeeded")
	}

	// A second run continues the counters instead of overwriting.
	write(t, filepath.Join(dir, ".part-3-7.inprogress"), "left over\n")
	writeAll(t, Sink[string](dir), 4, []string{"a", "b", "c", "d"})
	want := []string{".part-3-7.inprogress", "part-0-0", "part-1-0", "part-2-0", "part-3-0", "part-3-1", "part-3-8"}
	if got := listDir(t, dir); !slices.Equal(got, want) {
		t.Errorf("files after the second run %v, want %v", got, want)
	}
	if got := readFile(t, filepath.Join(dir, "part-3-8")); got != "d\n" {
		t.Errorf("part-3-8 = %q", got)
	}
}

func TestSinkErrors(t *testing.T) {
	ctx := context.Background()
	// The directory cannot be created: a file is in the way.
	base := t.TempDir()
	blocker := filepath.Join(base, "file")
	write(t, blocker, "x")
	_, err := Sink[string](filepath.Join(blocker, "out")).Open(ctx, spate.SinkInfo{Parallelism: 1})
	if err == nil || !strings.Contains(err.Error(), blocker) {
		t.Errorf("Open under a file: %v, want an error naming %s", err, blocker)
	}
	if _, err := Sink[string]("").Open(ctx, spate.SinkInfo{Parallelism: 1}); err == nil {
		t.Error("Open with an empty directory succeeded")
	}
	// The in-progress file cannot be created: a directory is in the way.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, ".part-0-0.inprogress"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The counter scan sees the directory's name, so this run uses counter 1;
	// block that one with a file to check the O_EXCL error.
	w, err := Sink[string](dir).Open(ctx, spate.SinkInfo{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".part-0-1.inprogress"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = w.Write("x")
	if err == nil || !strings.Contains(err.Error(), ".part-0-1.inprogress") {
		t.Errorf("Write: %v, want an error naming the part file", err)
	}
	if err2 := w.Close(nil); err2 == nil {
		t.Error("Close after a failed Write returned nil")
	}
}
