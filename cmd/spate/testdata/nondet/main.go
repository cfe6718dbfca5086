// Command nondet is a deliberately non-deterministic program for the
// cluster tests: an operator's name depends on the environment, so the
// graph a worker rebuilds differs from the one its client submitted.
package main

import (
	"fmt"
	"os"

	"github.com/spate-dev/spate"
)

func main() {
	env := spate.NewEnv(spate.WithParallelism(1))
	src := spate.FromSlice(env, []int{1, 2, 3})
	m := spate.Map(src, func(v int) int { return v * 2 }).Name("double-" + os.Getenv(spate.TargetEnv))
	spate.SinkTo(m, spate.Print[int]())
	if err := env.Execute("nondet"); err != nil {
		fmt.Fprintln(os.Stderr, "nondet:", err)
		os.Exit(1)
	}
}
