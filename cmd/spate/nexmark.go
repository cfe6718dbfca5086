package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spate-dev/spate"
	nx "github.com/spate-dev/spate/nexmark"
	"github.com/spate-dev/spate/nexmark/queries"
)

// nexmarkResult is the measurement of one query run.
type nexmarkResult struct {
	Query       string  `json:"query"`
	Source      string  `json:"source"` // "generator", or "kafka topic T"
	Events      int64   `json:"events"`
	Results     int64   `json:"results"`
	Parallelism int     `json:"parallelism"`
	WallSec     float64 `json:"wall_seconds"`
	CPUSec      float64 `json:"cpu_seconds"` // user + system CPU time of the run
	EventsPerS  float64 `json:"events_per_second"`
	PerCore     float64 `json:"events_per_cpu_second"` // Events / CPUSec
	GOGC        string  `json:"gogc"`
	PeakRSSKiB  int64   `json:"peak_rss_kib"` // during the run where Linux can reset it, else of the process so far
}

// nexmark runs Nexmark queries on the embedded local executor with a
// discarding sink and prints their throughput:
//
//	spate nexmark [--query q5|all] [--events N] [--seed S] [--parallelism P]
//	    [--properties.bootstrap.servers HOST:PORT,... --topic T [--properties.group.id G]]
//	    [--gogc PERCENT] [--json FILE] [--markdown FILE] [--cpuprofile FILE] [--trace FILE]
//	spate nexmark --produce --properties.bootstrap.servers HOST:PORT,... --topic T
//	    [--events N] [--seed S] [--partitions N]
//
// For each query it prints the events per second of wall time, the events
// per second of CPU time (per core actually used), the wall and CPU times
// and the peak resident set size during the query. The events are
// generated in the process, or with --topic read from a Kafka topic,
// from its start to its end (see nexmarkKafka); --produce loads such a
// topic with --events generated events and exits.
func nexmark(args []string) error {
	fs := flag.NewFlagSet("nexmark", flag.ContinueOnError)
	query := fs.String("query", "all", "query to run, q0 to q8, or all")
	events := fs.Int64("events", 10_000_000, "number of events to generate (with --topic the topic's events are read, whatever their number)")
	seed := fs.Int64("seed", 0, "seed of the generator (nexmark.Config.Seed; 0 reproduces the reference's events)")
	var kf nexmarkKafka
	kf.register(fs)
	produce := fs.Bool("produce", false, "write --events generated events to --topic (created if missing) and exit")
	partitions := fs.Int("partitions", 4, "with --produce, the partitions of the topic if it is created")
	par := fs.Int("parallelism", 2, "parallelism of the job")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	mdOut := fs.String("markdown", "", "also write the results as a Markdown table to this file")
	cpuProf := fs.String("cpuprofile", "", "write a CPU profile of the query runs to this file")
	traceOut := fs.String("trace", "", "write an execution trace of the query runs to this file")
	gogc := fs.Int("gogc", 0, "run with this garbage collection target percentage (0: as the GOGC environment variable says, 100 by default)")
	var pf progressFlags
	pf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("nexmark: unexpected arguments %q", fs.Args())
	}
	if *events <= 0 || *par <= 0 {
		return fmt.Errorf("nexmark: --events and --parallelism must be positive")
	}
	if *gogc < 0 {
		return fmt.Errorf("nexmark: --gogc must not be negative")
	}
	if err := kf.check(); err != nil {
		return fmt.Errorf("nexmark: %w", err)
	}
	cfg := nx.DefaultConfig()
	cfg.NumEvents, cfg.Seed = *events, *seed
	if *produce {
		if !kf.enabled() {
			return fmt.Errorf("nexmark: --produce needs --topic and --properties.bootstrap.servers")
		}
		if *partitions <= 0 {
			return fmt.Errorf("nexmark: --partitions must be positive")
		}
		start := time.Now()
		n, err := kf.produce(context.Background(), cfg, int32(*partitions))
		if err != nil {
			return fmt.Errorf("nexmark: %w", err)
		}
		fmt.Printf("wrote %d events to topic %s in %.2f s\n", n, kf.topic, time.Since(start).Seconds())
		return nil
	}
	show, err := newNexmarkShow(pf, os.Stderr)
	if err != nil {
		return fmt.Errorf("nexmark: %w", err)
	}
	gc := os.Getenv("GOGC")
	if gc == "" {
		gc = "100"
	}
	if *gogc > 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(*gogc))
		gc = strconv.Itoa(*gogc)
	}
	names := []string{*query}
	if *query == "all" {
		names = queries.Names()
	} else if queries.Queries[*query] == nil {
		return fmt.Errorf("nexmark: unknown query %q (want one of %s or all)", *query, strings.Join(queries.Names(), ", "))
	}
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return fmt.Errorf("nexmark: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("nexmark: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *traceOut != "" {
		f, err := os.Create(*traceOut)
		if err != nil {
			return fmt.Errorf("nexmark: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return fmt.Errorf("nexmark: %w", err)
		}
		defer trace.Stop()
	}
	fmt.Printf("%-5s %12s %10s %9s %9s %14s %16s %12s\n", "query", "events", "results", "wall s", "cpu s", "events/s", "events/cpu-s", "peak RSS MiB")
	in := generatedEvents(cfg)
	if kf.enabled() {
		in = kafkaEvents(&kf)
	}
	var all []nexmarkResult
	for _, name := range names {
		r, err := runNexmark(name, in, *par, show, &queries.Discard{})
		if err != nil {
			return err
		}
		r.GOGC = gc
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
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, markdownTable(all), 0o644); err != nil {
			return fmt.Errorf("nexmark: %w", err)
		}
	}
	return nil
}

// markdownTable formats results as a Markdown table, preceded by a line
// describing the machine and the Go version.
func markdownTable(rs []nexmarkResult) []byte {
	var b strings.Builder
	gc := ""
	if len(rs) > 0 {
		gc = ", GOGC " + rs[0].GOGC
	}
	fmt.Fprintf(&b, "%s/%s, %d CPUs (GOMAXPROCS %d), %s%s\n\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), gc)
	b.WriteString("| query | events | results | parallelism | wall s | CPU s | events/s | events/s per core | peak RSS MiB |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %.2f | %.2f | %s | %s | %.1f |\n",
			r.Query, r.Events, r.Results, r.Parallelism, r.WallSec, r.CPUSec, mega(r.EventsPerS), mega(r.PerCore), float64(r.PeakRSSKiB)/1024)
	}
	return []byte(b.String())
}

// mega formats a rate in millions, "2.41 M".
func mega(x float64) string {
	return fmt.Sprintf("%.2f M", x/1e6)
}

// nexmarkInput is where a run's events come from: what it calls them in
// the report, how many it expects (for the progress) and the stream of
// them, counted by p.
type nexmarkInput struct {
	name   string
	total  func() (int64, error)
	events func(env *spate.Env, p *nexmarkProgress) spate.Stream[nx.Event]
}

// generatedEvents are the events of cfg, generated in the process.
func generatedEvents(cfg nx.Config) nexmarkInput {
	return nexmarkInput{
		name:  "generator",
		total: func() (int64, error) { return cfg.NumEvents, nil },
		events: func(env *spate.Env, p *nexmarkProgress) spate.Stream[nx.Event] {
			return nexmarkEvents(env, cfg, p)
		},
	}
}

// kafkaEvents are the events of k's topic.
func kafkaEvents(k *nexmarkKafka) nexmarkInput {
	return nexmarkInput{
		name:   "kafka topic " + k.topic,
		total:  func() (int64, error) { return k.records(context.Background()) },
		events: k.events,
	}
}

// runNexmark runs query name over in's events with parallelism par,
// its results to sink (a *queries.Discard for a measurement).
func runNexmark(name string, in nexmarkInput, par int, show nexmarkShow, sink spate.Sink[any]) (nexmarkResult, error) {
	total, err := in.total()
	if err != nil {
		return nexmarkResult{}, fmt.Errorf("nexmark %s: %w", name, err)
	}
	env := spate.NewEnv(spate.WithParallelism(par))
	prog := show.start(name, total)
	defer prog.Close()
	queries.Queries[name](env, in.events(env, prog), sink)
	runtime.GC()
	resetPeakRSS()
	cpu0 := cpuTime()
	start := time.Now()
	if err := env.ExecuteContext(context.Background(), "nexmark "+name); err != nil {
		return nexmarkResult{}, err
	}
	wall := time.Since(start).Seconds()
	prog.Close()
	cpu := cpuTime() - cpu0
	events := prog.events.Load()
	r := nexmarkResult{
		Query: name, Source: in.name, Events: events, Parallelism: par,
		WallSec: wall, CPUSec: cpu, EventsPerS: float64(events) / wall, PeakRSSKiB: peakRSS(),
	}
	if d, ok := sink.(*queries.Discard); ok {
		r.Results = d.Count()
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

// resetPeakRSS resets the process's peak resident set size to its current
// size, where Linux allows it (clear_refs 5, since Linux 4.0), so that
// peakRSS measures one query rather than the process so far.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS is the process's peak resident set size in KiB: VmHWM from
// /proc/self/status (which resetPeakRSS resets) or else getrusage's Maxrss
// (KiB on Linux), the peak since the process started.
func peakRSS() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				if kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64); err == nil {
					return kib
				}
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss)
}
