package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNexmarkQ1(t *testing.T) {
	if err := nexmark([]string{"--query", "q1", "--events", "20000", "--parallelism", "1"}); err != nil {
		t.Fatal(err)
	}
}

func TestNexmarkAllJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "nexmark.json")
	if err := nexmark([]string{"--query", "all", "--events", "20000", "--parallelism", "2", "--json", out}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rs []nexmarkResult
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 9 {
		t.Fatalf("%d results, want 9", len(rs))
	}
	for _, r := range rs {
		if r.Events != 20000 || r.WallSec <= 0 {
			t.Errorf("bad result %+v", r)
		}
	}
	if rs[0].Results != 18400 { // q0 passes every bid through: 46 in 50
		t.Errorf("q0 results = %d, want 18400", rs[0].Results)
	}
}

func TestNexmarkBadArgs(t *testing.T) {
	for _, args := range [][]string{{"--query", "q99"}, {"--events", "0"}, {"--parallelism", "-1"}, {"--gogc", "-5"}, {"extra"}} {
		if err := nexmark(args); err == nil {
			t.Errorf("nexmark(%q) succeeded", args)
		}
	}
}

func TestNexmarkMarkdownAndProfile(t *testing.T) {
	dir := t.TempDir()
	md, prof := filepath.Join(dir, "nexmark.md"), filepath.Join(dir, "cpu.pprof")
	if err := nexmark([]string{"--query", "q2", "--events", "20000", "--parallelism", "2", "--gogc", "200", "--markdown", md, "--cpuprofile", prof}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"GOGC 200", "| query | events | results | parallelism | wall s | CPU s | events/s | events/s per core | peak RSS MiB |", "| q2 | 20000 | "} {
		if !strings.Contains(s, want) {
			t.Errorf("markdown lacks %q:\n%s", want, s)
		}
	}
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Errorf("no CPU profile: %v", err)
	}
}
