package script

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RunGolden runs each script matching glob (files ending in .txt) through
// run, as a subtest named for the file, and compares what run returns
// with the script's .golden file beside it; with update it rewrites the
// golden files instead. It is the shared body of the pure packages'
// script tests (their -update flag is passed as update).
func RunGolden(t *testing.T, glob string, update bool, run func(src string) (string, error)) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts %s: %v", glob, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := run(string(src))
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".txt") + ".golden"
			if update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("transcript differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}
