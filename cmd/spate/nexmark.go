package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spate-dev/spate"
	nx "github.com/spate-dev/spate/nexmark"
	"github.com/spate-dev/spate/nexmark/queries"
)

// nexmarkResult is the measurement of one query run.
type nexmarkResult struct {
	Query       string  `json:"query"`
	Events      int64   `json:"events"`
	Results     int64   `json:"results"`
	Parallelism int     `json:"parallelism"`
	WallSec     float64 `json:"wall_seconds"`
	CPUSec      float64 `json:"cpu_seconds"` // user + system CPU time of the run
	EventsPerS  float64 `json:"events_per_second"`
	PerCore     float64 `json:"events_per_cpu_second"` // Events / CPUSec
	PeakRSSKiB  int64   `json:"peak_rss_kib"`          // of the process so far
}

// nexmark runs Nexmark queries on the embedded local executor with a
// discarding sink and prints their throughput:
//
//	spate nexmark [--query q5|all] [--events N] [--parallelism P] [--json FILE]
func nexmark(args []string) error {
	fs := flag.NewFlagSet("nexmark", flag.ContinueOnError)
	query := fs.String("query", "all", "query to run, q0 to q8, or all")
	events := fs.Int64("events", 10_000_000, "number of events to generate")
	par := fs.Int("parallelism", 2, "parallelism of the job")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("nexmark: unexpected arguments %q", fs.Args())
	}
	if *events <= 0 || *par <= 0 {
		return fmt.Errorf("nexmark: --events and --parallelism must be positive")
	}
	names := []string{*query}
	if *query == "all" {
		names = queries.Names()
	} else if queries.Queries[*query] == nil {
		return fmt.Errorf("nexmark: unknown query %q (want one of %s or all)", *query, strings.Join(queries.Names(), ", "))
	}
	fmt.Printf("%-5s %12s %10s %9s %9s %14s %16s %12s\n", "query", "events", "results", "wall s", "cpu s", "events/s", "events/cpu-s", "peak RSS MiB")
	var all []nexmarkResult
	for _, name := range names {
		r, err := runNexmark(name, *events, *par)
		if err != nil {
			return err
		}
		all = append(all, r)
		fmt.Printf("%-5s %12d %10d %9.2f %9.2f %14.0f %16.0f %12.1f\n", r.Query, r.Events, r.Results, r.WallSec, r.CPUSec, r.EventsPerS, r.PerCore, float64(r.PeakRSSKiB)/1024)
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(all, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("nexmark: %w", err)
		}
	}
	return nil
}

func runNexmark(name string, events int64, par int) (nexmarkResult, error) {
	cfg := nx.DefaultConfig()
	cfg.NumEvents = events
	env := spate.NewEnv(spate.WithParallelism(par))
	sink := &discard{}
	queries.Queries[name](env, queries.Events(env, cfg), sink)
	runtime.GC()
	cpu0 := cpuTime()
	start := time.Now()
	if err := env.ExecuteContext(context.Background(), "nexmark "+name); err != nil {
		return nexmarkResult{}, err
	}
	wall := time.Since(start).Seconds()
	cpu := cpuTime() - cpu0
	r := nexmarkResult{
		Query: name, Events: events, Results: sink.n.Load(), Parallelism: par,
		WallSec: wall, CPUSec: cpu, EventsPerS: float64(events) / wall, PeakRSSKiB: peakRSS(),
	}
	if cpu > 0 {
		r.PerCore = float64(events) / cpu
	}
	return r, nil
}

// cpuTime is the user and system CPU time of the process, in seconds.
func cpuTime() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// peakRSS is the process's peak resident set size in KiB (Linux's unit
// for Maxrss).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss)
}

// discard is a sink that counts and drops its records.
type discard struct{ n atomic.Int64 }

func (d *discard) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[any], error) {
	return &discardWriter{d: d}, nil
}

type discardWriter struct {
	d *discard
	n int64
}

func (w *discardWriter) Write(any) error { w.n++; return nil }

func (w *discardWriter) Close() error {
	w.d.n.Add(w.n)
	w.n = 0
	return nil
}
