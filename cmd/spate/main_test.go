package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives the tests, and every process they start, a temporary
// directory of their own, and removes it with the binaries built in it
// when they are done, so that a run leaves nothing in $TMPDIR. What a
// run leaves there beyond the binaries is listed: a process that does not
// clean up after itself.
func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "spate-cmdtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("TMPDIR", tmp)
	code := m.Run()
	kube.Close()
	if kubeRoot != "" {
		os.RemoveAll(kubeRoot)
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 && testing.Verbose() {
		for _, e := range left {
			fmt.Fprintf(os.Stderr, "left in the tests' TMPDIR: %s\n", e.Name())
		}
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}
