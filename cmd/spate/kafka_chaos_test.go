package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	nx "github.com/spate-dev/spate/nexmark"
	"github.com/spate-dev/spate/nexmark/queries"
)

// TestChaosKafka runs examples/kafka from a topic to another, exactly
// once, with Nexmark's q1 (every bid in euros: a steady stream of
// results) on a session cluster with checkpoints every 200 ms against a
// three-broker kfake cluster of the test, while its input streams in,
// and SIGKILLs five TaskManagers and workers: a read_committed consumer
// of the output must see every result of the reference exactly once, and
// a read_uncommitted one the records of transactions the restores
// aborted too. The job is unbounded: the test ends it by stopping the
// session.
func TestChaosKafka(t *testing.T) {
	seed := chaosSeed(t)
	// A run whose kills all fall between transactions aborts none, and
	// proves exactly once without proving the restores aborted anything:
	// such a run is repeated with the next seed, up to three runs.
	for run := range uint64(3) {
		if aborted := chaosKafkaRun(t, seed+run); aborted > 0 || t.Failed() {
			return
		}
		t.Logf("run with seed %d aborted no transaction; running again with seed %d", seed+run, seed+run+1)
	}
	t.Errorf("the output topic held no record of an aborted transaction in three runs: no kill caught a transaction open, so the test proves little")
}

// chaosKafkaRun is one run of TestChaosKafka with seed; it returns the
// number of records of aborted transactions in the output topic.
func chaosKafkaRun(t *testing.T, seed uint64) int {
	bin := binaries(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := kc.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("chaos-events"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for topic, parts := range map[string]int32{"chaos-events": 4, "chaos-hot": 2} {
		if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), parts, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	cfg := nx.DefaultConfig()
	cfg.NumEvents, cfg.FirstEventRate, cfg.NextEventRate = 40_000, 1_000, 1_000 // 40 s of event time
	gen, err := nx.NewGenerator(cfg, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	var events []nx.Event
	for e, ok := gen.Next(); ok; e, ok = gen.Next() {
		events = append(events, e)
	}
	want := queries.RefQ1(events)

	home := t.TempDir()
	o, err := spateEnv(t, home, "session", "start", "--target", "process-session", "--taskmanagers", "2", "--slots", "1")
	if err != nil {
		t.Fatalf("session start: %v\n%s", err, o)
	}
	ss := listSessions(t, home)
	if len(ss) != 1 {
		t.Fatalf("sessions %+v after start:\n%s", ss, o)
	}
	s := ss[0]
	t.Cleanup(func() {
		if o, err := spateEnv(t, home, "session", "stop", s.ID); err != nil {
			t.Logf("session stop: %v\n%s", err, o)
		}
	})
	args := append([]string{"run", "--session", s.ID, "--detached"}, chaosConf...)
	args = append(args, filepath.Join(bin, "kafka"), "-brokers", strings.Join(brokers, ","), "-in", "chaos-events", "-out", "chaos-hot",
		"-transactional-id-prefix", "chaos", "-group", "chaos", "-query", "q1", "-checkpoint-interval", "200ms")
	o, err = spateEnv(t, home, args...)
	m := regexpJobID.FindStringSubmatch(o)
	if err != nil || m == nil {
		t.Fatalf("run --session: %v\n%s", err, o)
	}
	id := m[1]

	// The input streams in over about 20 s, while the kills go on.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	produced := make(chan error, 1)
	go func() {
		for i := 0; i < len(events); i += 1000 {
			for _, e := range events[i:min(i+1000, len(events))] {
				cl.Produce(ctx, &kgo.Record{Value: e.AppendJSON(nil), Timestamp: e.EventTime()}, nil)
			}
			if err := cl.Flush(ctx); err != nil {
				produced <- err
				return
			}
			select {
			case <-ctx.Done():
				produced <- ctx.Err()
				return
			case <-time.After(500 * time.Millisecond): // the input's rate, not synchronisation
			}
		}
		produced <- nil
	}()

	c := &cluster{rest: s.REST}
	k := &killer{t: t, rng: rand.New(rand.NewPCG(seed, 3)), c: c, job: id, jm: s.PID, mark: "-in chaos-events", kills: chaosKills}
	k.run()
	if err := <-produced; err != nil {
		t.Fatalf("produce the input: %v", err)
	}
	got := consumeResults(t, brokers, true, len(want))
	order := func(a, b queries.Q1Result) int {
		if a.DateTime != b.DateTime {
			return int(a.DateTime - b.DateTime)
		}
		if a.Auction != b.Auction {
			return int(a.Auction - b.Auction)
		}
		return strings.Compare(a.Extra, b.Extra)
	}
	slices.SortFunc(got, order)
	slices.SortFunc(want, order)
	if !slices.Equal(got, want) {
		t.Errorf("after %d kills (%v) the read_committed consumer read %d results, want the reference's %d once each", len(k.killed), k.killed, len(got), len(want))
	}
	all := consumeResults(t, brokers, false, len(want))
	t.Logf("%d kills; %d results committed, %d records in the output topic (%d of aborted transactions)", len(k.killed), len(got), len(all), len(all)-len(got))
	c.get(t, "/v1/jobs/"+id+"/checkpoints", &k.last)
	if k.last.Counts.Completed == 0 || k.last.Counts.Restored == 0 {
		t.Errorf("checkpoints %+v: the job must have completed checkpoints and restored one", k.last)
	}
	return len(all) - len(got)
}

// consumeResults reads the output topic until it has want results and
// nothing new came for a second.
func consumeResults(t *testing.T, brokers []string, readCommitted bool, want int) []queries.Q1Result {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("chaos-hot"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []queries.Q1Result
	deadline := time.Now().Add(3 * time.Minute)
	lastNew := time.Now()
	for len(got) < want || time.Since(lastNew) < time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("read %d results in 3 min, want %d", len(got), want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, r := range fs.Records() {
			var res queries.Q1Result
			if err := json.Unmarshal(r.Value, &res); err != nil {
				t.Fatalf("result %q: %v", r.Value, err)
			}
			got = append(got, res)
			lastNew = time.Now()
		}
	}
	return got
}
