// Command slowsink is a job whose sink is deliberately slow, for the
// metric tests: a generator of -n records with event timestamps (now plus
// the record's index in ms) feeds a map, which a rebalancing exchange
// connects to a sink that takes -delay per record. At the end of its input
// the sink waits until the file -gate exists before it finishes, so that
// the job's final counts stay readable while it runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
)

type slowSink struct {
	delay time.Duration
	gate  string
}

func (s slowSink) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[int64], error) {
	return s, nil
}

func (s slowSink) Write(int64) error {
	time.Sleep(s.delay) // the deliberate slowness
	return nil
}

func (s slowSink) Close(err error) error {
	if err != nil || s.gate == "" {
		return nil
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(s.gate); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("slowsink: the gate file never appeared")
		}
		time.Sleep(20 * time.Millisecond) // poll the gate
	}
}

func main() {
	n := flag.Int64("n", 4000, "records")
	delay := flag.Duration("delay", time.Millisecond, "time the sink takes per record")
	gate := flag.String("gate", "", "file whose existence lets the sink finish")
	flag.Parse()
	base := time.Now().UnixMilli()
	env := spate.NewEnv()
	ws := spate.ForBoundedOutOfOrderness[int64](0).WithTimestampAssigner(func(v int64, _ int64) int64 { return base + v })
	src := spate.FromSource(env, "gen", datagen.New(func(i int64) int64 { return i }, datagen.Count(*n)), ws)
	up := spate.Map(src, func(v int64) int64 { return v }).Name("Upstream")
	spate.SinkTo(up.Rebalance(), spate.Sink[int64](slowSink{delay: *delay, gate: *gate})).Name("SlowSink")
	if err := env.Execute("slowsink"); err != nil {
		fmt.Fprintln(os.Stderr, "slowsink:", err)
		os.Exit(1)
	}
}
