// Command exactlyonce is the yardstick of Spate's fault tolerance: for each
// of K keys it emits the numbers 1..N in order, a keyed function keeps each
// key's last number in state and fails the job if a number does not follow
// the previous one (so a lost or replayed record is caught inside the job),
// and the records are written as "key number" lines to the exactly-once
// file sink in DIR.
//
//	go run ./examples/exactlyonce -keys K -count N [-rate R] -out DIR
//
// Without failures DIR's committed files hold K×N lines, each pair once;
// with checkpoints (every -checkpoint-interval, 1s by default) the same
// holds across any number of failures and restarts.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/file"
)

// Record is one number of one key.
type Record struct {
	Key int
	N   int64
}

func main() {
	keys := flag.Int("keys", 10, "number of keys")
	count := flag.Int64("count", 1000, "numbers per key")
	rate := flag.Float64("rate", 0, "records per second in total (0: as fast as possible)")
	out := flag.String("out", "", "directory of the output files")
	interval := flag.Duration("checkpoint-interval", time.Second, "execution.checkpointing.interval (0: no checkpoints)")
	p := flag.Int("p", 0, "parallelism (default: parallelism.default from the configuration, else the number of CPUs)")
	extra := flag.Bool("extra", false, "add a stateless operator (\"Stamp\") between the checker and the sink: a changed build that restores a savepoint of the plain one")
	flag.Parse()
	if *out == "" || *keys < 1 || *count < 1 || *rate < 0 {
		fmt.Fprintln(os.Stderr, "usage: exactlyonce -keys K -count N [-rate R] -out DIR")
		flag.PrintDefaults()
		os.Exit(2)
	}
	conf := map[string]string{}
	if *interval > 0 {
		conf["execution.checkpointing.interval"] = interval.String()
	}
	env := spate.NewEnv(spate.WithParallelism(*p), spate.WithConfig(conf))
	Pipeline(env, Options{Keys: *keys, Count: *count, Rate: *rate, Out: *out, Extra: *extra})
	if err := env.Execute("exactlyonce"); err != nil {
		fmt.Fprintln(os.Stderr, "exactlyonce:", err)
		os.Exit(1)
	}
}

// Options configure the pipeline.
type Options struct {
	Keys  int
	Count int64
	Rate  float64 // records per second in total, 0 for no limit
	Out   string
	// Inject, if set, is called with every record the checker accepts; an
	// error fails the job there (tests inject failures with it).
	Inject func(Record) error
	// Extra adds a stateless operator between the checker and the sink:
	// a changed build that restores the plain one's savepoints (the
	// stateful operators keep their uids).
	Extra bool
}

// Pipeline declares the job on env. The stateful operators have uids, so
// that a savepoint of one build restores into another.
func Pipeline(env *spate.Env, o Options) {
	recs := spate.FromSource(env, "Numbers", Source{Keys: o.Keys, Count: o.Count, Rate: o.Rate}, spate.NoWatermarks[Record]()).UID("numbers")
	checked := spate.KeyedProcess(spate.KeyBy(recs, func(r Record) int { return r.Key }),
		func() spate.KeyedProcessFunction[int, Record, Record] { return &checker{inject: o.Inject} }).Name("Check").UID("check")
	if o.Extra {
		checked = spate.Map(checked, func(r Record) Record { return r }).Name("Stamp")
	}
	spate.SinkTo(checked, file.Sink[Record](o.Out, file.Format(func(r Record) string {
		return strconv.Itoa(r.Key) + " " + strconv.FormatInt(r.N, 10)
	}))).Name("Files").UID("files")
}

// checker fails the job when a key's number does not follow its last one.
type checker struct {
	last   *spate.ValueState[int, int64]
	inject func(Record) error
}

func (c *checker) Open(ctx *spate.KeyedContext[int, Record]) error {
	c.last = spate.NewValueState[int64](ctx.State(), "last")
	return nil
}

func (c *checker) ProcessElement(ctx *spate.KeyedContext[int, Record], r Record) error {
	last, _ := c.last.Value()
	if r.N != last+1 {
		return fmt.Errorf("key %d: number %d after %d: a record was lost or replayed", r.Key, r.N, last)
	}
	c.last.Update(r.N)
	if c.inject != nil {
		if err := c.inject(r); err != nil {
			return err
		}
	}
	ctx.Collect(r)
	return nil
}

// Source emits, for each of Keys keys, the numbers 1..Count in order, at
// Rate records per second in total if Rate is set. Each key is a split,
// whose position is the next number: subtask s of p reads the keys k with
// k % p == s.
type Source struct {
	Keys  int
	Count int64
	Rate  float64
}

// Open implements spate.Source.
func (s Source) Open(_ context.Context, sp spate.Split) (spate.SourceReader[Record], error) {
	r := &reader{src: s, rate: s.Rate / float64(sp.Parallelism), start: time.Now()}
	for k := sp.Subtask; k < s.Keys; k += sp.Parallelism {
		r.keys = append(r.keys, k)
		r.next = append(r.next, 1)
	}
	return r, nil
}

// Restore implements spate.RestorableSource: the reader goes on with the
// splits (keys) it is given, each at its checkpointed number. At the
// checkpoint's parallelism those are the keys it had; at another, its
// share of every reader's (so a key's numbers go on in order wherever its
// split and its keyed state went).
func (s Source) Restore(_ context.Context, sp spate.Split, splits []spate.SplitState) (spate.SourceReader[Record], error) {
	r := &reader{src: s, rate: s.Rate / float64(sp.Parallelism), start: time.Now()}
	for _, st := range splits {
		k, err := strconv.Atoi(strings.TrimPrefix(st.ID, "key-"))
		n, m := binary.Varint(st.Position)
		if err != nil || !strings.HasPrefix(st.ID, "key-") || k < 0 || k >= s.Keys || m <= 0 || m != len(st.Position) || n < 1 {
			return nil, fmt.Errorf("exactlyonce source: malformed split %q at %x", st.ID, st.Position)
		}
		r.keys = append(r.keys, k)
		r.next = append(r.next, n)
	}
	return r, nil
}

type reader struct {
	src     Source
	keys    []int
	next    []int64 // per key, the next number
	turn    int     // the key whose turn it is
	rate    float64
	start   time.Time
	emitted int64
}

func (r *reader) Read(_ context.Context, buf []Record) (int, error) {
	if r.rate > 0 {
		allowed := int64(time.Since(r.start).Seconds()*r.rate) - r.emitted
		if allowed <= 0 {
			return 0, nil
		}
		buf = buf[:min(int64(len(buf)), allowed)]
	}
	n := 0
	for n < len(buf) {
		done := 0
		for range r.keys {
			if r.next[r.turn] <= r.src.Count {
				break
			}
			r.turn = (r.turn + 1) % len(r.keys)
			done++
		}
		if len(r.keys) == 0 || done == len(r.keys) {
			break
		}
		buf[n] = Record{Key: r.keys[r.turn], N: r.next[r.turn]}
		r.next[r.turn]++
		n++
		r.turn = (r.turn + 1) % len(r.keys)
	}
	r.emitted += int64(n)
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// SnapshotSplits implements spate.CheckpointedReader.
func (r *reader) SnapshotSplits() ([]spate.SplitState, error) {
	splits := make([]spate.SplitState, len(r.keys))
	for i, k := range r.keys {
		splits[i] = spate.SplitState{ID: "key-" + strconv.Itoa(k), Position: binary.AppendVarint(nil, r.next[i])}
	}
	return splits, nil
}

func (r *reader) Close() error { return nil }
