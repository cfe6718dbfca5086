package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInfoPrintsPlan builds the spate command and the word count example as
// real binaries and checks that `spate info` prints the example's plan as
// JSON and as DOT without running the job.
func TestInfoPrintsPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir := t.TempDir()
	spateBin := filepath.Join(dir, "spate")
	if out, err := exec.Command("go", "build", "-o", spateBin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build spate: %v\n%s", err, out)
	}
	input := filepath.Join("..", "..", "examples", "wordcount", "testdata", "input.txt")
	run := func(format string) string {
		cmd := exec.Command(spateBin, "info", "-format", format, "../../examples/wordcount", "-p", "2", input)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("spate info -format %s: %v", format, err)
		}
		return string(out)
	}
	var g struct {
		Name        string `json:"name"`
		Fingerprint string `json:"fingerprint"`
		Vertices    []struct {
			Name        string `json:"name"`
			Parallelism int    `json:"parallelism"`
		} `json:"vertices"`
		Edges []struct {
			Partitioning string `json:"partitioning"`
		} `json:"edges"`
	}
	if err := json.Unmarshal([]byte(run("json")), &g); err != nil {
		t.Fatalf("plan is not JSON: %v", err)
	}
	if g.Name != "wordcount" || len(g.Fingerprint) != 64 || len(g.Vertices) < 2 {
		t.Fatalf("unexpected plan: %+v", g)
	}
	hash := false
	for _, e := range g.Edges {
		hash = hash || e.Partitioning == "HASH"
	}
	if !hash {
		t.Errorf("word count plan has no HASH edge: %+v", g.Edges)
	}
	dot := run("dot")
	if !strings.HasPrefix(dot, `digraph "wordcount"`) || !strings.Contains(dot, "HASH") {
		t.Errorf("not a DOT plan:\n%s", dot)
	}
	if _, err := os.Stat(spateBin); err != nil {
		t.Fatal(err)
	}
}
