// Command hang is a Spate program whose main, run again as a job's worker,
// blocks before it reaches Execute (until the TaskManager stops it), for
// the deployment-timeout test: its job's worker never reports ready.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spate-dev/spate"
)

func main() {
	if os.Getenv("SPATE_WORKER_DEPLOYMENT") != "" {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
		<-stop
		os.Exit(0)
	}
	env := spate.NewEnv(spate.WithParallelism(1))
	spate.SinkTo(spate.FromSlice(env, []int{1, 2, 3}), spate.Print[int]())
	if err := env.Execute("hang"); err != nil {
		fmt.Fprintln(os.Stderr, "hang:", err)
		os.Exit(1)
	}
}
