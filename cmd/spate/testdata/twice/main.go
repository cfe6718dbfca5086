// Command twice is shaped the way real programs are: main loops over its
// inputs and runs the same pipeline once per input, as the job "daily"
// each time. Each job prints "<input> <n>" for n in 1..3.
//
//	-async   start both jobs with ExecuteAsync, then wait for both
//	-envs    declare each job on a new Env: both jobs then have the same
//	         fingerprint and differ only in the data their closures capture
//	-nondet  a deliberately non-deterministic main: run as a worker it
//	         skips the first input, so its first job is another dataflow
//	-forever unbounded jobs: each prints its three lines, then runs until
//	         cancelled
package main

import (
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
)

func main() {
	async := flag.Bool("async", false, "start the jobs with ExecuteAsync")
	envs := flag.Bool("envs", false, "declare each job on a new Env")
	nondet := flag.Bool("nondet", false, "skip the first input when run as a worker")
	forever := flag.Bool("forever", false, "run unbounded jobs")
	flag.Parse()
	if err := run(*async, *envs, *nondet, *forever); err != nil {
		fmt.Fprintln(os.Stderr, "twice:", err)
		os.Exit(1)
	}
}

func run(async, envs, nondet, forever bool) error {
	inputs := []string{"alpha", "beta"}
	if nondet && os.Getenv(spate.TargetEnv) == "" {
		// Workers have no target: only they skip.
		inputs = inputs[1:]
	}
	env := spate.NewEnv(spate.WithParallelism(2))
	var jobs []*spate.JobClient
	for _, in := range inputs {
		if envs {
			env = spate.NewEnv(spate.WithParallelism(2))
		}
		name := "tag"
		if nondet {
			name += "-" + in
		}
		src := spate.FromSlice(env, []int{1, 2, 3})
		if forever {
			ticks := datagen.New(func(i int64) int { return int(i) + 1 }, datagen.Count(math.MaxInt64), datagen.RatePerSecond(100))
			src = spate.Filter(spate.FromSource(env, "ticks", ticks, spate.NoWatermarks[int]()), func(v int) bool { return v <= 3 })
		}
		tagged := spate.Map(src.Rebalance(), func(v int) string { return fmt.Sprintf("%s %d", in, v) }).Name(name)
		spate.SinkTo(tagged, spate.Print[string]()).Parallelism(1)
		if !async {
			if err := env.Execute("daily"); err != nil {
				return err
			}
			continue
		}
		j, err := env.ExecuteAsync("daily")
		if err != nil {
			return err
		}
		jobs = append(jobs, j)
	}
	for _, j := range jobs {
		if err := j.Wait(); err != nil {
			return err
		}
	}
	return nil
}
