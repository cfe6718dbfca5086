package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/nexmark"
	"github.com/spate-dev/spate/nexmark/queries"
)

// TestHotItemsFromKafka runs the example against a three-broker kfake
// cluster: every window the watermark has passed holds exactly the
// reference's hot items, each once, read with read_committed.
func TestHotItemsFromKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	adm := kadm.NewClient(mustClient(t, kgo.SeedBrokers(brokers...)))
	for topic, parts := range map[string]int32{"events": 4, "hot": 2} {
		if _, err := adm.CreateTopic(context.Background(), parts, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	cfg := nexmark.DefaultConfig()
	cfg.NumEvents, cfg.FirstEventRate, cfg.NextEventRate = 20_000, 1_000, 1_000 // 20 s of event time
	if err := Generate(context.Background(), brokers, "events", cfg); err != nil {
		t.Fatal(err)
	}
	gen, err := nexmark.NewGenerator(cfg, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	var events []nexmark.Event
	for e, ok := gen.Next(); ok; e, ok = gen.Next() {
		events = append(events, e)
	}
	// Every partition has one of the last four events: the watermark
	// passes at least the earliest of them.
	passed := events[len(events)-4].UnixMilli() - queries.Q5SlideMs
	var want []queries.Q5Result
	for _, r := range queries.RefQ5(events) {
		if r.WindowEnd <= passed {
			want = append(want, r)
		}
	}
	if len(want) < 5 {
		t.Fatalf("only %d expected results: the test would prove little", len(want))
	}

	env := spate.NewEnv(spate.WithParallelism(2), spate.WithConfig(map[string]string{"execution.checkpointing.interval": "100ms"}))
	Pipeline(env, Options{Brokers: brokers, In: "events", Out: "hot", Group: "hot", TransactionalIDPrefix: "hot"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.ExecuteContext(ctx, "kafka-hot-items") }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("job: %v", err)
		}
	}()

	cl := mustClient(t, kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("hot"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []queries.Q5Result
	deadline := time.Now().Add(2 * time.Minute)
	for len(got) < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("read %d results of windows the watermark passed in 2 min, want %d", len(got), len(want))
		}
		pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		for _, r := range fs.Records() {
			var res queries.Q5Result
			if err := json.Unmarshal(r.Value, &res); err != nil {
				t.Fatalf("result %q: %v", r.Value, err)
			}
			if string(r.Key) != fmt.Sprint(res.Auction) {
				t.Errorf("result %+v has key %q", res, r.Key)
			}
			if res.WindowEnd <= passed {
				got = append(got, res)
			}
		}
	}
	order := func(a, b queries.Q5Result) int {
		if a.WindowStart != b.WindowStart {
			return int(a.WindowStart - b.WindowStart)
		}
		return int(a.Auction - b.Auction)
	}
	slices.SortFunc(got, order)
	slices.SortFunc(want, order)
	if !slices.Equal(got, want) {
		t.Errorf("hot items differ from the reference:\n got %v\nwant %v", got, want)
	}
}

func mustClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
