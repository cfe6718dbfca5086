package spate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/kafka"
	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/localexec"
)

// TestRescaleKafka: a Kafka-to-Kafka exactly-once job stopped at
// parallelism p1 after some checkpoints and restored from its latest at
// p2 reads every partition on from its checkpointed offset (a partition
// whose split went to another reader is not taken for a new one and read
// from its start), commits the transactions the checkpoint had
// pre-committed, and aborts what the old subtasks left open, those no
// new subtask has the index of included: a read_committed consumer of
// the output sees every input record once, and no transaction of the
// job stays open.
func TestRescaleKafka(t *testing.T) {
	for _, pp := range [][2]int{{2, 3}, {3, 2}, {1, 4}, {4, 1}} {
		t.Run(fmt.Sprintf("p1=%d/p2=%d", pp[0], pp[1]), func(t *testing.T) {
			testRescaleKafka(t, pp[0], pp[1])
		})
	}
}

func testRescaleKafka(t *testing.T, p1, p2 int) {
	const partitions, perPartition = 6, 300
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(kc.Close)
	brokers := kc.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	for topic, n := range map[string]int32{"in": partitions, "out": 3} {
		if resp, err := adm.CreateTopic(context.Background(), n, 1, nil, topic); err != nil || resp.Err != nil {
			t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
		}
	}
	var want []string
	var in []*kgo.Record
	for i := range perPartition {
		for p := range int32(partitions) {
			v := fmt.Sprintf("%d-%d", p, i)
			in = append(in, &kgo.Record{Topic: "in", Partition: p, Value: []byte(v)})
			want = append(want, v)
		}
	}
	pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(pctx, in...).FirstErr(); err != nil {
		t.Fatalf("produce the input: %v", err)
	}

	job := func(env *spate.Env, inject func() error) {
		src := spate.FromSource(env, "In", kafka.NewSource(kafka.SourceConfig{Brokers: brokers, Topics: []string{"in"}, NoOffsetCommit: true}, kafka.String()), spate.NoWatermarks[string]())
		paced := spate.Map(src, func(v string) string {
			if err := inject(); err != nil {
				panic(err)
			}
			time.Sleep(200 * time.Microsecond) // pacing, so that checkpoints fall mid-input
			return v
		})
		spate.SinkTo(paced, kafka.NewSink(kafka.SinkConfig{Brokers: brokers, Topic: "out", DeliveryGuarantee: kafka.DeliveryExactlyOnce, TransactionalIDPrefix: "rescale"}, kafka.StringValues()))
	}
	conf := map[string]string{"execution.checkpointing.interval": "10ms", "restart-strategy.type": "none"}

	// The first run stops after a third of the input and two
	// checkpoints.
	var meta *checkpoint.Metadata
	var completed, seen atomic.Int64
	env := spate.NewEnv(spate.WithParallelism(p1), spate.WithConfig(conf))
	spate.RestoreLocal(env, nil, func(int64) { completed.Add(1) }, func(st localexec.Stats) { meta = st.Metadata })
	job(env, func() error {
		if seen.Add(1) >= int64(len(want)/3) && completed.Load() >= 2 {
			return errors.New("injected stop")
		}
		return nil
	})
	if err := env.Execute("rescale-kafka"); err == nil || !strings.Contains(err.Error(), "injected stop") {
		t.Fatalf("the run at parallelism %d was to stop after a third of the input and two checkpoints: %v (%d records, %d checkpoints)", p1, err, seen.Load(), completed.Load())
	}
	if meta == nil {
		t.Fatalf("the run at parallelism %d stopped without a completed checkpoint", p1)
	}

	// The second runs from that checkpoint at p2 until the output is
	// complete.
	env = spate.NewEnv(spate.WithParallelism(p2), spate.WithConfig(conf))
	spate.RestoreLocal(env, meta, nil, nil)
	job(env, func() error { return nil })
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.ExecuteContext(ctx, "rescale-kafka") }()
	got := consumeValues(t, brokers, "out", true, len(want), 500*time.Millisecond)
	stop()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("the run at parallelism %d from checkpoint %d: %v", p2, meta.ID, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the restored job did not stop within 30s of its cancellation")
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		dups := len(got) - len(slices.Compact(slices.Clone(got)))
		t.Fatalf("read_committed consumer read %d records (%d duplicates), want the %d input records once each", len(got), dups, len(want))
	}
	all := consumeValues(t, brokers, "out", false, len(want), 300*time.Millisecond)
	t.Logf("restored checkpoint %d at parallelism %d; read_uncommitted: %d records, of which %d of aborted transactions", meta.ID, p2, len(all), len(all)-len(want))

	lts, err := adm.ListTransactions(context.Background(), nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	for id := range lts {
		if strings.HasPrefix(id, "rescale-") {
			t.Errorf("transaction %s is still open: nobody aborted it", id)
		}
	}
}

// consumeValues reads topic from its start until it has at least want
// records and nothing new came for quiet, failing after a minute.
func consumeValues(t *testing.T, brokers []string, topic string, readCommitted bool, want int, quiet time.Duration) []string {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	deadline, lastNew := time.Now().Add(time.Minute), time.Now()
	for len(got) < want || time.Since(lastNew) < quiet {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d records of %s in a minute, want %d", len(got), topic, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, r := range fs.Records() {
			got = append(got, string(r.Value))
			lastNew = time.Now()
		}
	}
	return got
}
