package taskmanager

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestArtifactCacheSweep: a cached binary a worker runs is kept; one no
// worker runs is deleted once unused for the grace, counted from its last
// worker's exit.
func TestArtifactCacheSweep(t *testing.T) {
	tm, err := New(Config{JobManager: "127.0.0.1:1", WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tm.WorkDir(), "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	running, idle := strings.Repeat("a", 64), strings.Repeat("b", 64)
	long := time.Now().Add(-time.Hour)
	for _, id := range []string{running, idle, ".fetch-1"} {
		p := filepath.Join(dir, id)
		if err := os.WriteFile(p, []byte("bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, long, long)
	}
	done := tm.useArtifact(running)
	cutoff := time.Now().Add(-time.Minute)
	if got := tm.sweepArtifactsOnce(cutoff); !slices.Equal(got, []string{idle}) {
		t.Errorf("sweep removed %q, want only the idle %s", got, idle)
	}
	done() // the worker exited: the grace starts now
	if got := tm.sweepArtifactsOnce(cutoff); len(got) != 0 {
		t.Errorf("sweep removed %q within the grace after the last worker exited", got)
	}
	if got := tm.sweepArtifactsOnce(time.Now().Add(time.Minute)); !slices.Equal(got, []string{running}) {
		t.Errorf("sweep past the grace removed %q, want %s", got, running)
	}
	if _, err := os.Stat(filepath.Join(dir, ".fetch-1")); err != nil {
		t.Errorf("sweep removed a download in progress: %v", err)
	}
}
