// Command multijob runs several jobs from one main, for the application
// mode tests: two one after the other (Execute), then two at once
// (ExecuteAsync). Each prints "<job> <n>" for n in 1..5, doubled. With
// -fail, main returns an error after its jobs.
package main

import (
	"fmt"
	"os"

	"github.com/spate-dev/spate"
)

func declare(env *spate.Env, job string) {
	src := spate.FromSlice(env, []int{1, 2, 3, 4, 5})
	doubled := spate.Map(src.Rebalance(), func(v int) string { return fmt.Sprintf("%s %d", job, 2*v) }).Name("double-" + job)
	spate.SinkTo(doubled, spate.Print[string]()).Parallelism(1)
}

func main() {
	fail := len(os.Args) > 1 && os.Args[1] == "-fail"
	if err := run(fail); err != nil {
		fmt.Fprintln(os.Stderr, "multijob:", err)
		os.Exit(1)
	}
}

func run(fail bool) error {
	env := spate.NewEnv(spate.WithParallelism(2))
	for _, job := range []string{"first", "second"} {
		declare(env, job)
		if err := env.Execute(job); err != nil {
			return err
		}
	}
	var clients []*spate.JobClient
	for _, job := range []string{"third", "fourth"} {
		declare(env, job)
		c, err := env.ExecuteAsync(job)
		if err != nil {
			return err
		}
		clients = append(clients, c)
	}
	for _, c := range clients {
		if err := c.Wait(); err != nil {
			return err
		}
	}
	if fail {
		return fmt.Errorf("main fails after its jobs, as asked")
	}
	return nil
}
