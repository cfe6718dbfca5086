package file

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

func benchFile(b *testing.B, name string, n int, line func(i int) string) string {
	b.Helper()
	var sb strings.Builder
	for i := range n {
		sb.WriteString(line(i))
		sb.WriteByte('\n')
	}
	path := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(sb.Len()))
	return path
}

// count reads src to the end and returns the number of records, failing on
// any error.
func count[T any](b *testing.B, src spate.Source[T]) int {
	r, err := src.Open(b.Context(), spate.Split{Parallelism: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	buf := make([]T, 256)
	total := 0
	for {
		n, err := r.Read(b.Context(), buf)
		total += n
		if err == io.EOF {
			return total
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLines(b *testing.B) {
	path := benchFile(b, "x.txt", 100000, func(i int) string { return fmt.Sprintf("line %d of the benchmark file", i) })
	for b.Loop() {
		count(b, Lines(path))
	}
}

func BenchmarkCSV(b *testing.B) {
	path := benchFile(b, "x.csv", 100000, func(i int) string {
		if i == 0 {
			return "symbol,price,qty"
		}
		return fmt.Sprintf("SYM%d,%d.25,%d", i%100, i, i%1000)
	})
	for b.Loop() {
		count(b, CSV[trade]([]string{path}))
	}
}

func BenchmarkJSONLines(b *testing.B) {
	path := benchFile(b, "x.jsonl", 100000, func(i int) string { return fmt.Sprintf(`{"id":%d,"name":"n%d"}`, i, i) })
	for b.Loop() {
		count(b, JSONLines[event](path))
	}
}

func BenchmarkSink(b *testing.B) {
	dir := b.TempDir()
	b.SetBytes(int64(len("record number 12345\n")))
	w, err := Sink[string](dir, RollSize(64<<20)).Open(b.Context(), spate.SinkInfo{Parallelism: 1})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := w.Write("record number 12345"); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(nil); err != nil {
		b.Fatal(err)
	}
}
