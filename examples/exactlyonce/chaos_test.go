package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/file"
)

// chaosSeed is the seed of a chaos run: SPATE_CHAOS_SEED if set (to
// replay a failure), else the clock. The test prints it.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("SPATE_CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SPATE_CHAOS_SEED=%q: want an unsigned integer", s)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// TestExactlyOnceLocalChaos is the chaos test of the local executor: the
// job runs with checkpoints at a random interval and parallelism, and
// fails at random moments (random records of the checker, as an error or
// as a panic of user code), at least five times; each time the local
// executor restarts it in-process from its latest completed checkpoint.
// Its committed output must equal the failure-free run's exactly: K×N
// lines, each pair once. Rerun a failure with SPATE_CHAOS_SEED=<seed>.
func TestExactlyOnceLocalChaos(t *testing.T) {
	seed := chaosSeed(t)
	t.Logf("chaos seed %d (rerun with SPATE_CHAOS_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))

	const keys, count = 6, 2500
	total := int64(keys * count)
	var want []string
	for k := range keys {
		for n := 1; n <= count; n++ {
			want = append(want, fmt.Sprintf("%d %d", k, n))
		}
	}
	slices.Sort(want)

	for round := range 2 {
		p := 1 + rng.IntN(3)
		interval := time.Duration(5+rng.IntN(45)) * time.Millisecond
		failures := 5 + rng.IntN(4)
		// The checker's count of accepted records at which to fail: a
		// replayed record counts again, so the count passes every point
		// below the total before the job can finish, and each fails once.
		var at []int64
		for len(at) < failures {
			n := 1 + rng.Int64N(total-1)
			if !slices.Contains(at, n) {
				at = append(at, n)
			}
		}
		slices.Sort(at)
		t.Run(fmt.Sprintf("round=%d/parallelism=%d/interval=%v/failures=%d", round, p, interval, failures), func(t *testing.T) {
			conf := map[string]string{
				"execution.checkpointing.interval":      interval.String(),
				"restart-strategy.type":                 "fixed-delay",
				"restart-strategy.fixed-delay.delay":    "0s",
				"restart-strategy.fixed-delay.attempts": strconv.Itoa(failures + 1),
			}
			dir := t.TempDir()
			var seen atomic.Int64
			var injected atomic.Int32
			inject := func(r Record) error {
				n := seen.Add(1)
				i, ok := slices.BinarySearch(at, n)
				if !ok {
					return nil
				}
				injected.Add(1)
				if i%2 == 1 {
					panic(fmt.Sprintf("injected panic at accepted record %d (key %d number %d)", n, r.Key, r.N))
				}
				return errors.New("injected failure at accepted record " + strconv.FormatInt(n, 10))
			}
			run(t, p, Options{Keys: keys, Count: count, Rate: 20000, Out: dir, Inject: inject}, conf)
			if n := injected.Load(); int(n) != failures {
				t.Fatalf("%d failures injected, want %d (at accepted records %v)", n, failures, at)
			}
			got := committed(t, dir)
			if !slices.Equal(got, want) {
				t.Fatalf("after %d failures the job committed %d lines, want the %d pairs once each; %s", failures, len(got), len(want), diffPairs(got, want))
			}
			t.Logf("%d failures at accepted records %v; %d records accepted in all (%d replayed)", failures, at, seen.Load(), seen.Load()-total)
		})
	}
}

// diffPairs says how two sorted line lists differ: lines missing and
// lines duplicated or extra, the first few of each.
func diffPairs(got, want []string) string {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	var missing, extra []string
	for _, l := range want {
		if count[l] > 0 {
			missing = append(missing, l)
			count[l] = 0
		}
	}
	for _, l := range got {
		if count[l] < 0 {
			extra = append(extra, l)
			count[l] = 0
		}
	}
	return fmt.Sprintf("%d missing %q, %d duplicated or unexpected %q", len(missing), missing[:min(len(missing), 5)], len(extra), extra[:min(len(extra), 5)])
}

// TestExactlyOnceLocalChaosEverywhere injects the failures elsewhere than
// in the keyed function: in the source's reads (a panic), in the sink's
// writes, in its pre-commit at a barrier (a subtask failing
// mid-checkpoint) and in its commit after a checkpoint completed, once
// before the files were renamed and once after (a commit that happened but
// reported failure, which the restored run commits again: commits must be
// idempotent). The committed output must still be exactly the K×N pairs.
func TestExactlyOnceLocalChaosEverywhere(t *testing.T) {
	seed := chaosSeed(t)
	t.Logf("chaos seed %d (rerun with SPATE_CHAOS_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0xfa17))

	const keys, count = 5, 2000
	total := int64(keys * count)
	var want []string
	for k := range keys {
		for n := 1; n <= count; n++ {
			want = append(want, fmt.Sprintf("%d %d", k, n))
		}
	}
	slices.Sort(want)

	p := 1 + rng.IntN(3)
	interval := time.Duration(5+rng.IntN(25)) * time.Millisecond
	f := &faults{}
	// Reads and writes count every call, replays too, so each point below
	// the total is passed before the job can finish. Checkpoints go on
	// while the job runs, so the first few pre-commits and commits of the
	// run are reached too.
	f.read = randomPoints(rng, 1, total/64, 1)  // batches read
	f.write = randomPoints(rng, 1, total-1, 2)  // records written
	f.prepare = randomPoints(rng, 1, 4, 1)      // pre-commits
	f.commitBefore = randomPoints(rng, 1, 3, 1) // commits, failing before the rename
	f.commitAfter = randomPoints(rng, 4, 6, 1)  // commits, failing after it
	planned := len(f.read) + len(f.write) + len(f.prepare) + len(f.commitBefore) + len(f.commitAfter)
	t.Logf("parallelism %d, checkpoints every %v; failures at read batch %v, written record %v, pre-commit %v, commit %v (before the rename), commit %v (after it)",
		p, interval, f.read, f.write, f.prepare, f.commitBefore, f.commitAfter)

	conf := map[string]string{
		"execution.checkpointing.interval":      interval.String(),
		"restart-strategy.type":                 "fixed-delay",
		"restart-strategy.fixed-delay.delay":    "0s",
		"restart-strategy.fixed-delay.attempts": strconv.Itoa(planned + 1),
	}
	dir := t.TempDir()
	env := spate.NewEnv(spate.WithParallelism(p), spate.WithEncodedExchanges(true), spate.WithConfig(conf))
	recs := spate.FromSource(env, "Numbers", faultySource{Source: Source{Keys: keys, Count: count, Rate: 12000}, f: f}, spate.NoWatermarks[Record]())
	checked := spate.KeyedProcess(spate.KeyBy(recs, func(r Record) int { return r.Key }),
		func() spate.KeyedProcessFunction[int, Record, Record] { return &checker{} }).Name("Check")
	spate.SinkTo(checked, faultySink{inner: file.Sink[Record](dir, file.Format(func(r Record) string {
		return strconv.Itoa(r.Key) + " " + strconv.FormatInt(r.N, 10)
	})), f: f}).Name("Files")
	if err := env.Execute("exactlyonce-chaos"); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if n := f.injected.Load(); n < 5 {
		t.Fatalf("only %d failures injected (want at least 5 of the %d planned)", n, planned)
	}
	if got := committed(t, dir); !slices.Equal(got, want) {
		t.Fatalf("after %d failures the job committed %d lines, want the %d pairs once each; %s", f.injected.Load(), len(got), len(want), diffPairs(got, want))
	}
	t.Logf("%d failures injected, %d reads, %d writes, %d pre-commits, %d commits", f.injected.Load(), f.reads.Load(), f.writes.Load(), f.prepares.Load(), f.commits.Load())
}

// randomPoints returns n distinct numbers in [lo, hi], sorted.
func randomPoints(rng *rand.Rand, lo, hi int64, n int) []int64 {
	var at []int64
	for len(at) < n && int64(len(at)) <= hi-lo {
		v := lo + rng.Int64N(hi-lo+1)
		if !slices.Contains(at, v) {
			at = append(at, v)
		}
	}
	slices.Sort(at)
	return at
}

// faults counts the calls of the faulty source and sink across attempts
// and says when one must fail.
type faults struct {
	read, write, prepare, commitBefore, commitAfter []int64
	reads, writes, prepares, commits                atomic.Int64
	injected                                        atomic.Int32
}

func (f *faults) hit(at []int64, n int64) bool {
	if _, ok := slices.BinarySearch(at, n); ok {
		f.injected.Add(1)
		return true
	}
	return false
}

// faultySource is Source whose readers panic at the planned reads.
type faultySource struct {
	Source
	f *faults
}

func (s faultySource) Open(ctx context.Context, sp spate.Split) (spate.SourceReader[Record], error) {
	r, err := s.Source.Open(ctx, sp)
	return &faultyReader{reader: r.(*reader), f: s.f}, err
}

func (s faultySource) Restore(ctx context.Context, sp spate.Split, splits []spate.SplitState) (spate.SourceReader[Record], error) {
	r, err := s.Source.Restore(ctx, sp, splits)
	if err != nil {
		return nil, err
	}
	return &faultyReader{reader: r.(*reader), f: s.f}, nil
}

type faultyReader struct {
	*reader
	f *faults
}

func (r *faultyReader) Read(ctx context.Context, buf []Record) (int, error) {
	n, err := r.reader.Read(ctx, buf)
	if n > 0 && r.f.hit(r.f.read, r.f.reads.Add(1)) {
		panic("injected panic in the source's read")
	}
	return n, err
}

// faultySink wraps the file sink; its writers fail at the planned calls.
type faultySink struct {
	inner spate.Sink[Record]
	f     *faults
}

func (s faultySink) Open(ctx context.Context, info spate.SinkInfo) (spate.SinkWriter[Record], error) {
	w, err := s.inner.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	return &faultyWriter{w: w, txn: w.(spate.TransactionalSinkWriter[Record]), f: s.f}, nil
}

type faultyWriter struct {
	w   spate.SinkWriter[Record]
	txn spate.TransactionalSinkWriter[Record]
	f   *faults
}

func (w *faultyWriter) Write(r Record) error {
	if w.f.hit(w.f.write, w.f.writes.Add(1)) {
		return fmt.Errorf("injected failure writing %d %d", r.Key, r.N)
	}
	return w.w.Write(r)
}

func (w *faultyWriter) Close(err error) error { return w.w.Close(err) }

func (w *faultyWriter) Begin(attempt int64, restored [][]byte) error {
	return w.txn.Begin(attempt, restored)
}

func (w *faultyWriter) PrepareCommit(checkpoint int64) ([]byte, error) {
	if w.f.hit(w.f.prepare, w.f.prepares.Add(1)) {
		return nil, fmt.Errorf("injected failure pre-committing checkpoint %d", checkpoint)
	}
	return w.txn.PrepareCommit(checkpoint)
}

func (w *faultyWriter) Commit(c []byte) error {
	n := w.f.commits.Add(1)
	if w.f.hit(w.f.commitBefore, n) {
		return errors.New("injected failure before committing")
	}
	if err := w.txn.Commit(c); err != nil {
		return err
	}
	if w.f.hit(w.f.commitAfter, n) {
		return errors.New("injected failure after committing")
	}
	return nil
}
