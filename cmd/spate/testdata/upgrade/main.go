// Command upgrade is one program in several builds, for the savepoint
// upgrade tests: -version picks the build. v1 sums the numbers 0..N-1 by
// key (n % -keys, 4 by default) in a keyed function with uid "count" and writes "key sum"
// lines; "body" is v1 with a changed function body (it writes "key sum
// v2"); "removed" has no counting operator; "type" keeps the uid but
// holds its sum as a string, which v1's state does not decode as.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
	"github.com/spate-dev/spate/connector/file"
)

func main() {
	version := flag.String("version", "v1", "the build: v1, body, removed or type")
	count := flag.Int64("count", 1000, "numbers")
	rate := flag.Float64("rate", 0, "numbers per second (0: no limit)")
	out := flag.String("out", "", "output directory")
	keys := flag.Int64("keys", 4, "keys (n % keys): each holds a sum in state")
	interval := flag.String("checkpoint-interval", "200ms", "execution.checkpointing.interval")
	flag.Parse()
	env := spate.NewEnv(spate.WithParallelism(1), spate.WithConfig(map[string]string{"execution.checkpointing.interval": *interval}))
	opts := []datagen.Option{datagen.Count(*count)}
	if *rate > 0 {
		opts = append(opts, datagen.RatePerSecond(*rate))
	}
	nums := spate.FromSource(env, "Numbers", datagen.New(func(i int64) int64 { return i }, opts...), spate.NoWatermarks[int64]()).UID("numbers")
	var lines spate.Stream[string]
	k := *keys
	keyed := spate.KeyBy(nums, func(n int64) int64 { return n % k })
	switch *version {
	case "v1", "body":
		suffix := ""
		if *version == "body" {
			suffix = " v2"
		}
		lines = spate.KeyedProcess(keyed, func() spate.KeyedProcessFunction[int64, int64, string] { return &sum{suffix: suffix} }).Name("Count").UID("count")
	case "type":
		lines = spate.KeyedProcess(keyed, func() spate.KeyedProcessFunction[int64, int64, string] { return &textSum{} }).Name("Count").UID("count")
	case "removed":
		lines = spate.Map(nums, func(n int64) string { return fmt.Sprintf("%d %d", n%k, n) }).Name("Format")
	default:
		fmt.Fprintf(os.Stderr, "upgrade: unknown -version %q\n", *version)
		os.Exit(2)
	}
	spate.SinkTo(lines, file.Sink[string](*out)).Name("Files").UID("files")
	if err := env.Execute("upgrade"); err != nil {
		fmt.Fprintln(os.Stderr, "upgrade:", err)
		os.Exit(1)
	}
}

// sum keeps each key's running sum.
type sum struct {
	total  *spate.ValueState[int64, int64]
	suffix string
}

func (s *sum) Open(ctx *spate.KeyedContext[int64, string]) error {
	s.total = spate.NewValueState[int64](ctx.State(), "sum")
	return nil
}

func (s *sum) ProcessElement(ctx *spate.KeyedContext[int64, string], n int64) error {
	t, _ := s.total.Value()
	t += n
	s.total.Update(t)
	ctx.Collect(fmt.Sprintf("%d %d%s", ctx.Key(), t, s.suffix))
	return nil
}

// textSum is sum with its state as text: a changed state type.
type textSum struct {
	total *spate.ValueState[int64, string]
}

func (s *textSum) Open(ctx *spate.KeyedContext[int64, string]) error {
	s.total = spate.NewValueState[string](ctx.State(), "sum")
	return nil
}

func (s *textSum) ProcessElement(ctx *spate.KeyedContext[int64, string], n int64) error {
	v, _ := s.total.Value()
	t, _ := strconv.ParseInt(v, 10, 64)
	s.total.Update(strconv.FormatInt(t+n, 10))
	ctx.Collect(fmt.Sprintf("%d %d", ctx.Key(), t+n))
	return nil
}
