// Command envprobe prints, from inside its job's operators, the
// environment variables and the configuration entry a job was given at
// submission, for the per-job isolation tests.
package main

import (
	"fmt"
	"os"

	"github.com/spate-dev/spate"
)

func main() {
	env := spate.NewEnv()
	// Read in main: in a worker, main runs again with its job's
	// configuration.
	greeting, _ := env.Config("app.greeting")
	src := spate.FromSlice(env, []int{1, 2, 3, 4})
	probe := spate.Map(src, func(v int) string {
		return fmt.Sprintf("probe %d SECRET=%q TOKEN=%q greeting=%q GOMEMLIMIT=%q", v, os.Getenv("PROBE_SECRET"), os.Getenv("PROBE_TOKEN"), greeting, os.Getenv("GOMEMLIMIT"))
	})
	spate.SinkTo(probe, spate.Print[string]())
	if err := env.Execute("envprobe"); err != nil {
		fmt.Fprintln(os.Stderr, "envprobe:", err)
		os.Exit(1)
	}
}
