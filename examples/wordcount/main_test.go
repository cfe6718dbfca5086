package main

import (
	"flag"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with tr | sort | uniq -c")

// TestGolden checks word count against `tr -cs '[:alnum:]' '\n' | sort |
// uniq -c` on the same file, at several parallelisms, with every exchange
// encoded as between processes.
func TestGolden(t *testing.T) {
	const in, golden = "testdata/input.txt", "testdata/input.golden"
	if *update {
		out, err := exec.Command("sh", "-c", "LC_ALL=C tr -cs '[:alnum:]' '\\n' < "+in+" | LC_ALL=C sort | uniq -c | sed 's/^ *//' | grep -v ' $'").Output()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(data)), "\n")
	slices.Sort(want)
	for _, p := range []int{1, 3} {
		env := spate.NewEnv(spate.WithParallelism(p), spate.WithEncodedExchanges(true))
		got := spate.Collect(Pipeline(env, in))
		if err := env.Execute("wordcount"); err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, wc := range got.Values() {
			lines = append(lines, wc.String())
		}
		slices.Sort(lines)
		if !slices.Equal(lines, want) {
			t.Errorf("parallelism %d:\n got  %q\n want %q", p, lines, want)
		}
	}
}
