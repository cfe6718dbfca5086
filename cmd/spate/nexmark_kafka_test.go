package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/spate-dev/spate"
	nx "github.com/spate-dev/spate/nexmark"
	"github.com/spate-dev/spate/nexmark/queries"
)

// kafkaCluster starts an in-process Kafka cluster of three brokers for
// the test and returns its seed brokers, comma separated.
func kafkaCluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// collected is a sink that keeps its results.
type collected struct {
	mu   sync.Mutex
	vals []any
}

func (c *collected) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[any], error) {
	return c, nil
}

func (c *collected) Write(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vals = append(c.vals, v)
	return nil
}

func (c *collected) Close(error) error { return nil }

// results returns the results printed with %+v, sorted; q4's changelog
// (a rolling average per category, whose intermediate updates depend on
// the order in which auctions close at the same time) is reduced to each
// category's last update, the one over the most auctions.
func (c *collected) results() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	vals := c.vals
	last := map[int64]queries.Q4Result{}
	for _, v := range c.vals {
		if r, ok := v.(queries.Q4Result); ok {
			if l, ok := last[r.Category]; !ok || r.Count > l.Count {
				last[r.Category] = r
			}
		}
	}
	if len(last) > 0 {
		vals = nil
		for _, r := range last {
			vals = append(vals, r)
		}
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = fmt.Sprintf("%+v", v)
	}
	slices.Sort(out)
	return out
}

// TestNexmarkKafkaMatchesGenerator loads a topic of a kfake cluster with
// --produce and runs every query over it, at parallelism 1 and 3 (3
// partitions: a reader with several, or one each): the results equal
// those of the same queries over the in-process generator with the same
// seed and count.
func TestNexmarkKafkaMatchesGenerator(t *testing.T) {
	brokers := kafkaCluster(t)
	// 500 events/s of event time over 30,000 events span a minute: every
	// windowed query has results.
	cfg := nx.DefaultConfig()
	cfg.NumEvents, cfg.Seed = 30_000, 7
	cfg.FirstEventRate, cfg.NextEventRate = 500, 500
	kf := nexmarkKafka{brokers: brokers, topic: "nexmark"}
	n, err := kf.produce(context.Background(), cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	if n != cfg.NumEvents {
		t.Fatalf("produced %d events, want %d", n, cfg.NumEvents)
	}
	show := nexmarkShow{off: true}
	for _, q := range queries.Names() {
		for _, par := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/p%d", q, par), func(t *testing.T) {
				var gen, kaf collected
				rg, err := runNexmark(q, generatedEvents(cfg), par, show, &gen)
				if err != nil {
					t.Fatal(err)
				}
				rk, err := runNexmark(q, kafkaEvents(&kf), par, show, &kaf)
				if err != nil {
					t.Fatal(err)
				}
				if rg.Events != cfg.NumEvents || rk.Events != cfg.NumEvents {
					t.Fatalf("events read: %d from the generator, %d from Kafka; want %d", rg.Events, rk.Events, cfg.NumEvents)
				}
				want, got := gen.results(), kaf.results()
				if len(want) == 0 {
					t.Fatal("no results from the generator: the test exercises nothing")
				}
				if !slices.Equal(got, want) {
					t.Errorf("%d results from Kafka, %d from the generator", len(got), len(want))
					for i := 0; i < min(len(got), len(want)); i++ {
						if got[i] != want[i] {
							t.Errorf("first difference at %d:\nkafka:     %s\ngenerator: %s", i, got[i], want[i])
							break
						}
					}
				} else {
					t.Logf("%d results match", len(got))
				}
			})
		}
	}
}

// TestNexmarkKafkaCommand runs the command end to end: --produce loads a
// topic, then a run with --topic reports as many events and results per
// query as a run over the generator with the same --events and --seed.
func TestNexmarkKafkaCommand(t *testing.T) {
	brokers := kafkaCluster(t)
	common := []string{"--events", "20000", "--seed", "3", "--parallelism", "2", "--progress", "off"}
	if err := nexmark(append([]string{"--produce", "--bootstrap-servers", brokers, "--topic", "events", "--partitions", "2"}, common...)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(file string, extra ...string) []nexmarkResult {
		t.Helper()
		out := filepath.Join(dir, file)
		if err := nexmark(append(append([]string{"--query", "all", "--json", out}, common...), extra...)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var rs []nexmarkResult
		if err := json.Unmarshal(b, &rs); err != nil {
			t.Fatal(err)
		}
		return rs
	}
	gen := run("gen.json")
	kaf := run("kafka.json", "--properties.bootstrap.servers", brokers, "--topic", "events")
	if len(gen) != 9 || len(kaf) != 9 {
		t.Fatalf("%d and %d results, want 9 each", len(gen), len(kaf))
	}
	for i := range gen {
		g, k := gen[i], kaf[i]
		if k.Source != "kafka topic events" || g.Source != "generator" {
			t.Errorf("sources %q and %q", g.Source, k.Source)
		}
		// q4's changelog depends on the order of closes at the same time.
		if k.Query != g.Query || k.Events != 20000 || g.Events != 20000 || (g.Query != "q4" && k.Results != g.Results) {
			t.Errorf("kafka %+v\ngenerator %+v", k, g)
		}
	}
}

func TestNexmarkKafkaBadArgs(t *testing.T) {
	for _, args := range [][]string{
		{"--topic", "t"},
		{"--bootstrap-servers", "localhost:1"},
		{"--produce"},
		{"--produce", "--topic", "t", "--bootstrap-servers", "localhost:1", "--partitions", "0"},
	} {
		if err := nexmark(args); err == nil {
			t.Errorf("nexmark(%q) succeeded", args)
		}
	}
}
