// Command misbehave is a job whose user code misbehaves, for the isolation
// tests: -mode panic panics on a record, -mode memory keeps every record's
// megabyte forever, -mode spin spins the CPU in a map function.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
)

var hoard [][]byte

func main() {
	mode := flag.String("mode", "panic", "panic, memory or spin")
	flag.Parse()
	env := spate.NewEnv(spate.WithParallelism(2))
	src := spate.FromSource(env, "numbers", datagen.New(func(i int64) int64 { return i }, datagen.Count(1<<40)), spate.NoWatermarks[int64]())
	bad := spate.Map(src.Rebalance(), func(v int64) int64 {
		switch *mode {
		case "panic":
			if v == 1000 {
				panic(fmt.Sprintf("user code panics on record %d", v))
			}
		case "memory":
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = byte(v)
			}
			hoard = append(hoard, b)
		case "spin":
			for {
			}
		}
		return v
	}).Name("Misbehave")
	spate.SinkTo(spate.Filter(bad, func(int64) bool { return false }), spate.Print[int64]())
	if err := env.Execute("misbehave-" + *mode); err != nil {
		fmt.Fprintln(os.Stderr, "misbehave:", err)
		os.Exit(1)
	}
}
