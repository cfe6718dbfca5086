package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

// numberedRecord is the n-th number of partition P of the input topic.
type numberedRecord struct {
	P int32
	N int64
}

// sequenceChecker fails the job when a partition's numbers do not follow
// each other: a record lost or replayed inside the job.
type sequenceChecker struct {
	last *spate.ValueState[int32, int64]
}

func (c *sequenceChecker) Open(ctx *spate.KeyedContext[int32, string]) error {
	c.last = spate.NewValueState[int64](ctx.State(), "last")
	return nil
}

func (c *sequenceChecker) ProcessElement(ctx *spate.KeyedContext[int32, string], r numberedRecord) error {
	last, _ := c.last.Value()
	if r.N != last+1 {
		return fmt.Errorf("partition %d: number %d after %d: a record was lost or replayed", r.P, r.N, last)
	}
	c.last.Update(r.N)
	ctx.Collect(fmt.Sprintf("%d %d", r.P, r.N))
	return nil
}

// TestJobExactlyOnceAcrossRestarts runs Kafka to Kafka with checkpoints
// every 20 ms and failures injected in the sink after a commit, with
// records written to Kafka in the open transaction: the job restarts in-process from
// its latest checkpoint each time, the source resumes at the
// checkpointed offsets (the checker inside the job sees every number of
// every partition once, in order), and a read_committed consumer of the
// output sees every result once, while a read_uncommitted one sees the
// aborted transactions' records too.
func TestJobExactlyOnceAcrossRestarts(t *testing.T) {
	_, brokers := newCluster(t)
	runExactlyOnceJob(t, brokers, 3, nil)
}

// TestJobSurvivesBrokerRestart: a broker of three crashes while the job
// runs (its partitions and coordinators move to the others, its
// connections break) and comes back on its port; the results are still
// exactly once.
//
// The job may restart from its checkpoint once or twice on the way: when
// leadership moves and a partition has no batch of the new leader epoch
// yet, kfake answers OffsetForLeaderEpoch for the epoch the reader
// consumed with UNDEFINED (Kafka's new leader would answer the log end),
// which kgo takes for a truncated log and reports as lost records; the
// source fails on that, as it must on a real truncation, and the restore
// resumes at the checkpointed offsets.
func TestJobSurvivesBrokerRestart(t *testing.T) {
	c, brokers := newCluster(t)
	runExactlyOnceJob(t, brokers, 0, func(round int) {
		switch round {
		case 10:
			c.crash(t, 1, brokers[1])
		case 20:
			c.restart(t, 1, brokers[1])
		}
	})
}

// runExactlyOnceJob runs the Kafka-to-Kafka job of the tests above,
// injecting failures sink failures and calling onRound before each
// round of input, and checks its results.
func runExactlyOnceJob(t *testing.T, brokers []string, failures int32, onRound func(round int)) {
	const partitions, rounds, perRound = 4, 40, 50
	createTopic(t, brokers, "numbers", partitions)
	createTopic(t, brokers, "results", 3)

	deser := Deserializer[numberedRecord](func(r *Record) (numberedRecord, error) {
		n, err := strconv.ParseInt(string(r.Value), 10, 64)
		return numberedRecord{P: r.Partition, N: n}, err
	})
	env := spate.NewEnv(spate.WithParallelism(2), spate.WithConfig(map[string]string{
		"execution.checkpointing.interval":      "20ms",
		"restart-strategy.type":                 "fixed-delay",
		"restart-strategy.fixed-delay.delay":    "0s",
		"restart-strategy.fixed-delay.attempts": "10",
	}))
	in := spate.FromSource(env, "Numbers", NewSource(SourceConfig{Brokers: brokers, Topics: []string{"numbers"}, GroupID: "job"}, deser), spate.NoWatermarks[numberedRecord]())
	checked := spate.KeyedProcess(spate.KeyBy(in, func(r numberedRecord) int32 { return r.P }),
		func() spate.KeyedProcessFunction[int32, numberedRecord, string] { return &sequenceChecker{} })
	sink := NewSink(SinkConfig{Brokers: brokers, Topic: "results", DeliveryGuarantee: DeliveryExactlyOnce, TransactionalIDPrefix: "job"}, StringValues())
	var injected atomic.Int32
	spate.SinkTo(checked, &failingSink{Sink: sink, failures: &injected, max: failures})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.ExecuteContext(ctx, "kafka-exactly-once") }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("job: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("job did not stop within 30s of its cancellation")
		}
	}()

	// The input comes in rounds while the job runs, so that checkpoints
	// complete, and failures happen, in between.
	pr := manual(t, brokers)
	var want []string
	n := int64(0)
	for round := 0; round < rounds || injected.Load() < failures; round++ {
		if onRound != nil {
			onRound(round)
		}
		if round > 10*rounds {
			t.Fatalf("%d failures injected after %d rounds, want %d", injected.Load(), round, failures)
		}
		var batch []*kgoRecord
		for range perRound {
			n++
			for p := range int32(partitions) {
				batch = append(batch, &kgoRecord{Topic: "numbers", Partition: p, Value: []byte(strconv.FormatInt(n, 10))})
				want = append(want, fmt.Sprintf("%d %d", p, n))
			}
		}
		// Each round's records are new, so a deadline cannot cancel a
		// record kgo still holds for another call.
		pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := pr.ProduceSync(pctx, batch...).FirstErr(); err != nil {
			t.Fatalf("produce round %d of the input: %v", round, err)
		}
		pcancel()
		time.Sleep(10 * time.Millisecond) // pacing the input, not synchronisation
	}

	got := values(consume(t, brokers, "results", true, len(want), time.Second))
	if !slices.Equal(sorted(got), sorted(want)) {
		dups := 0
		for i, v := range sorted(got) {
			if i > 0 && v == sorted(got)[i-1] {
				dups++
			}
		}
		t.Fatalf("read_committed consumer read %d results (%d duplicates), want the %d once each", len(got), dups, len(want))
	}
	all := consume(t, brokers, "results", false, len(want), 300*time.Millisecond)
	t.Logf("%d results; read_uncommitted: %d records, of which %d of aborted transactions", len(want), len(all), len(all)-len(want))
	if failures > 0 && len(all) <= len(want) {
		t.Errorf("read_uncommitted consumer read %d records: no aborted transaction had records, the test proves nothing", len(all))
	}
	select {
	case err := <-done:
		t.Fatalf("job ended: %v", err)
	default:
	}
	// The group's offsets follow the checkpoints (monitoring only).
	waitFor(t, 10*time.Second, "the group's committed offsets to reach the end", func() bool {
		os, err := kadmClient(t, brokers).FetchOffsets(context.Background(), "job")
		if err != nil {
			return false
		}
		for p := range int32(partitions) {
			if o, ok := os.Lookup("numbers", p); !ok || o.At != n {
				return false
			}
		}
		return true
	})
}

// failingSink fails its writers' Write, up to max times in all, once
// they have committed a transaction and then written 50 records into the
// next and Kafka has them: the aborted transactions of a restart hold
// records.
type failingSink struct {
	*Sink[string]
	failures *atomic.Int32
	max      int32
}

func (s *failingSink) Open(ctx context.Context, info spate.SinkInfo) (spate.SinkWriter[string], error) {
	w, err := s.Sink.Open(ctx, info)
	if err != nil {
		return nil, err
	}
	return &failingWriter{txnWriter: w.(*txnWriter[string]), s: s}, nil
}

type failingWriter struct {
	*txnWriter[string]
	s         *failingSink
	written   int
	committed atomic.Bool
}

func (w *failingWriter) Commit(c []byte) error {
	w.committed.Store(true)
	return w.txnWriter.Commit(c)
}

func (w *failingWriter) Write(v string) error {
	if err := w.txnWriter.Write(v); err != nil {
		return err
	}
	w.written++
	if w.written == 50 && w.committed.Load() && w.s.failures.Load() < w.s.max {
		if err := w.cur.p.flush(w.ctx); err != nil {
			return err
		}
		w.s.failures.Add(1)
		return errors.New("injected sink failure")
	}
	return nil
}

func (w *failingWriter) PrepareCommit(id int64) ([]byte, error) {
	w.written = 0
	return w.txnWriter.PrepareCommit(id)
}
