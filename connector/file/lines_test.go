package file

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

func TestLines(t *testing.T) {
	dir := filepath.Join("testdata", "lines", "dir")
	tests := []struct {
		name  string
		paths []string
		want  []string
	}{
		{"file", []string{"testdata/lines/dir/a.txt"}, []string{"alpha", "beta", "gamma"}},
		{"two files in argument order", []string{"testdata/lines/dir/c.log", "testdata/lines/dir/a.txt"},
			[]string{"zeta", "alpha", "beta", "gamma"}},
		{"directory sorted, hidden and subdirectories skipped", []string{dir},
			[]string{"alpha", "beta", "gamma", "delta", "", "epsilon", "zeta"}},
		{"glob", []string{"testdata/lines/dir/*.txt"}, []string{"alpha", "beta", "gamma", "delta", "", "epsilon"}},
		{"glob naming hidden files", []string{"testdata/lines/dir/.h*"}, []string{"hidden"}},
		{"duplicates read once", []string{"testdata/lines/dir/b.txt", dir},
			[]string{"delta", "", "epsilon", "alpha", "beta", "gamma", "zeta"}},
		{"crlf", []string{"testdata/lines/crlf.txt"}, []string{"one", "two", "", "three"}},
		{"no final newline", []string{"testdata/lines/nofinal.txt"}, []string{"first", "last without newline"}},
		{"empty file", []string{"testdata/lines/empty.txt"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, bufSize := range []int{1, 3, 100} {
				res := drainAll(t, Lines(tt.paths...), bufSize)
				if !slices.Equal(res.recs, tt.want) {
					t.Errorf("buffer %d: got %q, want %q", bufSize, res.recs, tt.want)
				}
				if len(res.errs) != 0 {
					t.Errorf("buffer %d: record errors %v", bufSize, res.errs)
				}
			}
		})
	}
}

func TestLinesLongLine(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("0123456789abcdef", (3<<20)/16) + "end" // 3 MiB
	content := "short\n" + long + "\r\n" + long[:1<<20+7] + "\nafter"
	path := filepath.Join(dir, "long.txt")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	res := drainAll(t, Lines(path), 2)
	want := []string{"short", long, long[:1<<20+7], "after"}
	if len(res.recs) != len(want) {
		t.Fatalf("got %d lines, want %d", len(res.recs), len(want))
	}
	for i := range want {
		if res.recs[i] != want[i] {
			t.Errorf("line %d: got %d bytes, want %d", i+1, len(res.recs[i]), len(want[i]))
		}
	}
}

func TestLinesSplit(t *testing.T) {
	dir := t.TempDir()
	var all []string
	for i := range 7 {
		var lines []string
		for j := range i + 1 {
			lines = append(lines, filepath.Base(dir)+"-"+string(rune('a'+i))+"-"+strings.Repeat("x", j))
		}
		all = append(all, lines...)
		name := filepath.Join(dir, string(rune('a'+i))+".txt")
		if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p := 1; p <= 3; p++ {
		var union []string
		for s := range p {
			res, err := drain(t, Lines(dir), spate.Split{Subtask: s, Parallelism: p}, 4)
			if err != nil {
				t.Fatalf("p=%d s=%d: %v", p, s, err)
			}
			// Each file goes whole to subtask i % p.
			for _, line := range res.recs {
				file := int(strings.Split(line, "-")[1][0] - 'a')
				if file%p != s {
					t.Errorf("p=%d: line %q of file %d read by subtask %d", p, line, file, s)
				}
			}
			// Reading again gives the same split.
			again, err := drain(t, Lines(dir), spate.Split{Subtask: s, Parallelism: p}, 3)
			if err != nil || !slices.Equal(again.recs, res.recs) {
				t.Errorf("p=%d s=%d: split not deterministic", p, s)
			}
			union = append(union, res.recs...)
		}
		slices.Sort(union)
		want := slices.Clone(all)
		slices.Sort(want)
		if !slices.Equal(union, want) {
			t.Errorf("p=%d: union of splits %q, want %q", p, union, want)
		}
	}
}

func TestLinesOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		paths   []string
		split   spate.Split
		want    string
		notExit bool
	}{
		{"missing file", []string{"testdata/lines/dir/a.txt", "testdata/nope.txt"}, spate.Split{Parallelism: 1}, "testdata/nope.txt", true},
		{"missing directory in glob", []string{"testdata/nodir/*.txt"}, spate.Split{Parallelism: 1}, "testdata/nodir/*.txt", true},
		{"glob without match", []string{"testdata/lines/*.nothing"}, spate.Split{Parallelism: 1}, "testdata/lines/*.nothing", true},
		{"bad pattern", []string{"testdata/[x"}, spate.Split{Parallelism: 1}, "testdata/[x", false},
		{"no paths", nil, spate.Split{Parallelism: 1}, "no paths", false},
		{"zero parallelism", []string{"testdata/lines"}, spate.Split{}, "parallelism 0", false},
		{"subtask out of range", []string{"testdata/lines"}, spate.Split{Subtask: 2, Parallelism: 2}, "subtask 2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Lines(tt.paths...).Open(context.Background(), tt.split)
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "file.Lines") {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.notExit && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %q is not fs.ErrNotExist", err)
			}
		})
	}
}

func TestLinesReaderLifecycle(t *testing.T) {
	ctx := context.Background()
	r, err := Lines("testdata/lines/dir/a.txt").Open(ctx, spate.Split{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(ctx, nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
	buf := make([]string, 10)
	if n, err := r.Read(ctx, buf); n != 3 || err != nil {
		t.Errorf("Read = %d, %v; want 3, nil", n, err)
	}
	if n, err := r.Read(ctx, buf); n != 0 || err != io.EOF {
		t.Errorf("Read at end = %d, %v; want 0, io.EOF", n, err)
	}
	if n, err := r.Read(ctx, buf); n != 0 || err != io.EOF {
		t.Errorf("Read after end = %d, %v; want 0, io.EOF", n, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Read(ctx, buf); err == nil {
		t.Error("Read after Close succeeded")
	}

	// A canceled context stops reading.
	r, err = Lines("testdata/lines/dir/a.txt").Open(ctx, spate.Split{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Read(cctx, buf); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with canceled context: %v", err)
	}
}

func TestLinesFileRemovedAfterOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.txt")
	if err := os.WriteFile(path, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := Lines(path).Open(ctx, spate.Split{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	os.Remove(path)
	_, err = r.Read(ctx, make([]string, 4))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Read of removed file: %v, want an error naming %s", err, path)
	}
	if _, err2 := r.Read(ctx, make([]string, 4)); err2 == nil {
		t.Error("error is not sticky")
	}
}
