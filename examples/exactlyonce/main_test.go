package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spate-dev/spate"
)

// committed returns the lines of dir's committed (visible) files, sorted.
func committed(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	slices.Sort(lines)
	return lines
}

func run(t *testing.T, p int, o Options, conf map[string]string) {
	t.Helper()
	env := spate.NewEnv(spate.WithParallelism(p), spate.WithEncodedExchanges(true), spate.WithConfig(conf))
	Pipeline(env, o)
	if err := env.Execute("exactlyonce"); err != nil {
		t.Fatalf("Execute: %v", err)
	}
}

// TestExactlyOnceWithFailures runs the job in the local executor with
// checkpoints and injected task failures: it restarts in-process from its
// latest checkpoint each time, and its committed output is identical to
// the failure-free run's, K×N lines, each pair once.
func TestExactlyOnceWithFailures(t *testing.T) {
	const keys, count = 4, 4000
	var want []string
	for k := range keys {
		for n := 1; n <= count; n++ {
			want = append(want, fmt.Sprintf("%d %d", k, n))
		}
	}
	slices.Sort(want)
	conf := map[string]string{
		"execution.checkpointing.interval":      "20ms",
		"restart-strategy.type":                 "fixed-delay",
		"restart-strategy.fixed-delay.delay":    "0s",
		"restart-strategy.fixed-delay.attempts": "10",
	}
	for _, p := range []int{1, 2} {
		t.Run(fmt.Sprintf("parallelism=%d", p), func(t *testing.T) {
			clean := t.TempDir()
			run(t, p, Options{Keys: keys, Count: count, Rate: 16000, Out: clean}, conf)
			if got := committed(t, clean); !slices.Equal(got, want) {
				t.Fatalf("failure-free run committed %d lines, want the %d pairs once each", len(got), len(want))
			}

			dir := t.TempDir()
			var seen atomic.Int64
			var failures atomic.Int32
			inject := func(Record) error {
				switch seen.Add(1) {
				case 3000, 7000, 11000: // replays count again: each is passed once
					failures.Add(1)
					return errors.New("injected failure")
				}
				return nil
			}
			run(t, p, Options{Keys: keys, Count: count, Rate: 16000, Out: dir, Inject: inject}, conf)
			if n := failures.Load(); n != 3 {
				t.Fatalf("%d failures injected, want 3", n)
			}
			got := committed(t, dir)
			if !slices.Equal(got, committed(t, clean)) {
				t.Fatalf("with failures the job committed %d lines, the failure-free run %d: not identical", len(got), len(want))
			}
		})
	}
}
