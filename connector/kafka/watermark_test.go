package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

// stamped is a record with its Kafka timestamp.
type stamped struct {
	TS    int64
	Count int
}

// chanSink sends every record to a channel.
type chanSink[T any] struct{ ch chan T }

func (s chanSink[T]) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[T], error) {
	return chanWriter[T](s), nil
}

type chanWriter[T any] chanSink[T]

func (w chanWriter[T]) Write(v T) error   { w.ch <- v; return nil }
func (w chanWriter[T]) Close(error) error { return nil }

// TestSourcePerPartitionWatermarks: one reader of two partitions, one
// far ahead in event time: the watermark follows the one behind while it
// has records, so no window after its records fires; once it stays idle
// past the idleness timeout, the one ahead alone drives it.
func TestSourcePerPartitionWatermarks(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "wm", 2)
	pr := manual(t, brokers)
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	var ahead []*kgoRecord
	for s := int64(1); s <= 10; s++ {
		ahead = append(ahead, &kgoRecord{Topic: "wm", Partition: 0, Value: []byte("x"), Timestamp: at(s * 1000)})
	}
	produce(t, pr, ahead...)

	deser := Deserializer[stamped](func(r *Record) (stamped, error) {
		return stamped{TS: r.Timestamp.UnixMilli(), Count: 1}, nil
	})
	env := spate.NewEnv(spate.WithParallelism(1), spate.WithAutoWatermarkInterval(20*time.Millisecond))
	in := spate.FromSource(env, "Kafka", NewSource(SourceConfig{Brokers: brokers, Topics: []string{"wm"}}, deser),
		spate.ForBoundedOutOfOrderness[stamped](0).WithIdleness(500*time.Millisecond))
	windows := spate.ReduceWindow(spate.Windowed(spate.KeyBy(in, func(stamped) int { return 0 }), spate.TumblingEventTimeWindows(time.Second)),
		func(a, b stamped) stamped { return stamped{TS: min(a.TS, b.TS), Count: a.Count + b.Count} })
	out := make(chan stamped, 100)
	spate.SinkTo(windows, chanSink[stamped]{ch: out})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.ExecuteContext(ctx, "watermarks") }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("job: %v", err)
		}
	}()

	// Partition 1 stays at 1 s of event time, and active, for 1.5 s;
	// partition 0 at 10 s.
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		produce(t, pr, &kgoRecord{Topic: "wm", Partition: 1, Value: []byte("y"), Timestamp: at(1000)},
			&kgoRecord{Topic: "wm", Partition: 0, Value: []byte("x"), Timestamp: at(10000)})
		select {
		case w := <-out:
			t.Fatalf("window %+v fired while partition 1 held the watermark at 1 s", w)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Partition 1 idle: partition 0, still active at 10 s, alone makes the
	// watermark 10 s - 1 ms, firing the windows from 1 s to 9 s; the first
	// holds both partitions' records.
	got := map[int64]int{}
	deadline := time.After(30 * time.Second)
	for len(got) < 9 {
		produce(t, pr, &kgoRecord{Topic: "wm", Partition: 0, Value: []byte("x"), Timestamp: at(10000)})
		select {
		case w := <-out:
			got[w.TS/1000*1000] = w.Count
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("windows fired after partition 1 went idle: %v, want 1 s to 9 s", got)
		}
	}
	for s := int64(1); s <= 9; s++ {
		if c, ok := got[s*1000]; !ok || (s > 1 && c != 1) || (s == 1 && c < 2) {
			t.Errorf("window at %d s: count %d (fired %v)", s, c, ok)
		}
	}
	for range 3 {
		produce(t, pr, &kgoRecord{Topic: "wm", Partition: 0, Value: []byte("x"), Timestamp: at(10000)})
		select {
		case w := <-out:
			t.Errorf("window %+v fired, beyond the watermark", w)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestJobMalformedRecords: in a job, a malformed record goes to the
// spate.RecordErrors side output when the job consumes it, and otherwise
// fails the job with an error naming topic, partition and offset.
func TestJobMalformedRecords(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "bad", 1)
	produce(t, manual(t, brokers),
		&kgoRecord{Topic: "bad", Value: []byte(`{"N":1}`)},
		&kgoRecord{Topic: "bad", Value: []byte(`not json`)},
		&kgoRecord{Topic: "bad", Value: []byte(`{"N":3}`)})
	type event struct{ N int }
	src := NewSource(SourceConfig{Brokers: brokers, Topics: []string{"bad"}}, JSON[event]())

	t.Run("side output", func(t *testing.T) {
		env := spate.NewEnv(spate.WithParallelism(1))
		in := spate.FromSource(env, "Kafka", src, spate.NoWatermarks[event]())
		good, bad := make(chan event, 10), make(chan spate.RecordError, 10)
		spate.SinkTo(in, chanSink[event]{ch: good})
		spate.SinkTo(spate.SideOutput(in, spate.RecordErrors), chanSink[spate.RecordError]{ch: bad})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- env.ExecuteContext(ctx, "malformed") }()
		defer func() { cancel(); <-done }()
		var ns []int
		for len(ns) < 2 {
			select {
			case e := <-good:
				ns = append(ns, e.N)
			case <-time.After(30 * time.Second):
				t.Fatalf("read %v in 30s", ns)
			}
		}
		select {
		case re := <-bad:
			if re.Source != "kafka topic bad partition 0 offset 1" || re.Record != "not json" {
				t.Errorf("record error %+v", re)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no record error in 30s")
		}
		if ns[0] != 1 || ns[1] != 3 {
			t.Errorf("read %v, want [1 3]", ns)
		}
	})
	t.Run("fails the job", func(t *testing.T) {
		env := spate.NewEnv(spate.WithParallelism(1))
		spate.SinkTo(spate.FromSource(env, "Kafka", src, spate.NoWatermarks[event]()), chanSink[event]{ch: make(chan event, 10)})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := env.ExecuteContext(ctx, "malformed")
		if err == nil || !strings.Contains(err.Error(), "kafka topic bad partition 0 offset 1") {
			t.Errorf("job ended with %v, want the malformed record's topic, partition and offset", err)
		}
	})
}
