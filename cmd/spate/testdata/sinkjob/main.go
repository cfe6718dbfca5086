// Command sinkjob runs the jobs of the sink tests:
//
//	sinkjob file DIR POISON   5,000 records through a map that panics on
//	                          record POISON (-1: none) into file.Sink(DIR)
//	sinkjob split DIR         two branches: 2,000 records into file.Sink(DIR)
//	                          in slot 0's worker, and a map whose subtask 1
//	                          (slot 1's worker) fails once the sink's share
//	                          has ended (its files exist, or are published)
//	sinkjob collect [POISON]  5,000 records at parallelism 4 into Collect;
//	                          prints the count and the sorted records; the
//	                          map panics on record POISON if given
package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/file"
)

// record is what the collect job gathers: a struct, so that its codec is
// the derived one.
type record struct {
	ID     int
	Square int64
	Text   string
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sinkjob:", err)
		os.Exit(1)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: sinkjob file DIR POISON | sinkjob collect")
	}
	switch args[0] {
	case "file":
		if len(args) != 3 {
			return fmt.Errorf("usage: sinkjob file DIR POISON")
		}
		poison, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		env := spate.NewEnv(spate.WithParallelism(2))
		mapped := spate.Map(spate.FromSlice(env, seq(5000)), func(v int) string {
			if v == poison {
				panic(fmt.Sprintf("record %d is poisoned", v))
			}
			return strconv.Itoa(v)
		}).Name("poisoned-map").Parallelism(1)
		spate.SinkTo(mapped, file.Sink[string](args[1], file.RollSize(4096))).Parallelism(2)
		return env.Execute("file-sink")
	case "split":
		if len(args) != 2 {
			return fmt.Errorf("usage: sinkjob split DIR")
		}
		dir := args[1]
		env := spate.NewEnv(spate.WithParallelism(2))
		spate.SinkTo(spate.FromSlice(env, seq(2000)).Parallelism(1).Name("sunk"),
			file.Sink[int](dir, file.RollSize(4096))).Parallelism(1)
		late := spate.Map(spate.FromSlice(env, seq(2)).Rebalance(), func(v int) int {
			if v == 1 {
				failAfterSink(dir)
			}
			return v
		}).Name("late-failure").Parallelism(2)
		spate.SinkTo(spate.Filter(late, func(int) bool { return false }), spate.Print[int]())
		return env.Execute("split")
	case "collect":
		poison := -1
		if len(args) > 1 {
			var err error
			if poison, err = strconv.Atoi(args[1]); err != nil {
				return err
			}
		}
		env := spate.NewEnv(spate.WithParallelism(4))
		recs := spate.Map(spate.FromSlice(env, seq(5000)).Rebalance(), func(v int) record {
			if v == poison {
				panic(fmt.Sprintf("record %d is poisoned", v))
			}
			return record{ID: v, Square: int64(v) * int64(v), Text: "r" + strconv.Itoa(v)}
		}).Name("to-record")
		got := spate.Collect(recs)
		if err := env.Execute("collect"); err != nil {
			return err
		}
		vals := got.Values()
		slices.SortFunc(vals, func(a, b record) int { return a.ID - b.ID })
		fmt.Printf("collected %d\n", len(vals))
		for _, r := range vals {
			fmt.Printf("%d %d %s\n", r.ID, r.Square, r.Text)
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

// failAfterSink panics once the other branch's sink has written its
// files, and then has had its chance to publish them: it returns early if
// a part file appears, or after a deadline.
func failAfterSink(dir string) {
	deadline := time.Now().Add(20 * time.Second)
	var written time.Time
	for time.Now().Before(deadline) {
		names, _ := os.ReadDir(dir)
		for _, n := range names {
			if strings.HasPrefix(n.Name(), "part-") {
				panic("failing after the other worker published " + n.Name())
			}
		}
		if len(names) > 0 && written.IsZero() {
			written = time.Now()
		}
		if !written.IsZero() && time.Since(written) > 2*time.Second {
			panic("failing after the other worker's sink wrote its files")
		}
		time.Sleep(20 * time.Millisecond)
	}
	panic("the other worker's sink wrote nothing")
}
