package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate"
)

// TestSourceReadsEveryPartitionOnce: three readers of a topic of six
// partitions read every record once, each from the partitions Flink's
// rule gives it, in partition order, with the records' timestamps.
func TestSourceReadsEveryPartitionOnce(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "events", 6)
	base := time.UnixMilli(1_700_000_000_000)
	recs := numbered("events", "v", 600, 6, base)
	produce(t, manual(t, brokers), recs...)
	wantTS := map[string]int64{}
	for _, r := range recs {
		wantTS[string(r.Value)] = r.Timestamp.UnixMilli()
	}

	src := NewSource(SourceConfig{Brokers: brokers, Topics: []string{"events"}}, String())
	var all []string
	for sub := range 3 {
		r := open(t, src, sub, 3)
		owned := 0
		for p := range int32(6) {
			if owner(topicPartition{"events", p}, 3) == sub {
				owned++
			}
		}
		got, evs, _ := readUntil(t, r, owned*100)
		if n := r.(spate.EventReader[string]).Splits(); n != owned {
			t.Errorf("reader %d has %d splits, want %d", sub, n, owned)
		}
		last := map[int]int{}
		for i, v := range got {
			if evs[i].Timestamp != wantTS[v] {
				t.Errorf("record %s has timestamp %d, want %d", v, evs[i].Timestamp, wantTS[v])
			}
			var n int
			fmt.Sscanf(v, "v%d", &n)
			p := int32(n % 6)
			if owner(topicPartition{"events", p}, 3) != sub {
				t.Errorf("reader %d read %s of partition %d, not its own", sub, v, p)
			}
			if prev, ok := last[evs[i].Split]; ok && n <= prev {
				t.Errorf("split %d: %d after %d", evs[i].Split, n, prev)
			}
			last[evs[i].Split] = n
		}
		expectNothing(t, r, 200*time.Millisecond)
		if recs, bytes := r.(spate.PendingReader).Pending(); recs != 0 || bytes != -1 {
			t.Errorf("reader %d: pending %d records, %d bytes after reading all, want 0 and -1 (unknown)", sub, recs, bytes)
		}
		all = append(all, got...)
	}
	var want []string
	for _, r := range recs {
		want = append(want, string(r.Value))
	}
	if !slices.Equal(sorted(all), sorted(want)) {
		t.Errorf("read %d records, want the %d produced, each once", len(all), len(want))
	}
}

// TestSourceStartupModes: each scan.startup.mode starts where Flink's
// does.
func TestSourceStartupModes(t *testing.T) {
	_, brokers := newCluster(t)
	base := time.UnixMilli(1_700_000_000_000)
	old := numbered("modes", "old", 20, 2, base) // timestamps base..base+19ms
	tests := []struct {
		name    string
		cfg     SourceConfig
		wantOld []string // records of old the reader sees, then it sees "new*"
	}{
		{name: "earliest-offset", cfg: SourceConfig{StartupMode: StartEarliest}, wantOld: values(old)},
		{name: "default", cfg: SourceConfig{}, wantOld: values(old)},
		{name: "latest-offset", cfg: SourceConfig{StartupMode: StartLatest}},
		{name: "latest-offset read_committed", cfg: SourceConfig{StartupMode: StartLatest, ReadCommitted: true}},
		{name: "timestamp", cfg: SourceConfig{StartupMode: StartTimestamp, StartupTimestamp: base.Add(15 * time.Millisecond)},
			wantOld: []string{"old15", "old16", "old17", "old18", "old19"}},
		{name: "specific-offsets", cfg: SourceConfig{StartupMode: StartSpecificOffsets, SpecificOffsets: map[string]map[int32]int64{"modes": {1: 8}}},
			wantOld: append(values(every(old, 0, 2)), "old17", "old19")},
		{name: "group-offsets", cfg: SourceConfig{StartupMode: StartGroupOffsets, GroupID: "g1"},
			wantOld: append([]string{"old14", "old16", "old18"}, values(every(old, 1, 2))...)},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("modes-%d", i)
			createTopic(t, brokers, topic, 2)
			pr := manual(t, brokers, kgo.DefaultProduceTopic(topic), kgo.DefaultProduceTopicAlways())
			produce(t, pr, old...)
			adm := kadm.NewClient(client(t, brokers))
			commit := kadm.Offsets{}
			commit.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: -1}) // old14, old16, old18 remain
			if resp, err := adm.CommitOffsets(context.Background(), "g1", commit); err != nil || resp.Error() != nil {
				t.Fatal(err, resp.Error())
			}
			cfg := tc.cfg
			cfg.Brokers, cfg.Topics = brokers, []string{topic}
			if cfg.SpecificOffsets != nil {
				cfg.SpecificOffsets = map[string]map[int32]int64{topic: cfg.SpecificOffsets["modes"]}
			}
			r := open(t, NewSource(cfg, String()), 0, 1)
			fresh := numbered(topic, fmt.Sprintf("new%d-", i), 4, 2, base.Add(time.Hour))
			produce(t, manual(t, brokers), fresh...)
			got, _, _ := readUntil(t, r, len(tc.wantOld)+len(fresh))
			want := append(slices.Clone(tc.wantOld), values(fresh)...)
			if !slices.Equal(sorted(got), sorted(want)) {
				t.Errorf("read %v\nwant %v", got, want)
			}
			expectNothing(t, r, 100*time.Millisecond)
		})
	}
}

func every(rs []*kgo.Record, start, step int) []*kgo.Record {
	var out []*kgo.Record
	for i := start; i < len(rs); i += step {
		out = append(out, rs[i])
	}
	return out
}

func values(rs []*kgo.Record) []string {
	var vs []string
	for _, r := range rs {
		vs = append(vs, string(r.Value))
	}
	return vs
}

// TestSourceMalformedRecord: a record the deserializer refuses is a
// RecordError naming topic, partition and offset, between the good
// records around it, none lost.
func TestSourceMalformedRecord(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "json", 1)
	type event struct{ N int }
	var rs []*kgo.Record
	for i := range 10 {
		v := fmt.Sprintf(`{"N":%d}`, i)
		if i == 4 {
			v = `{"N":` // offset 4
		}
		rs = append(rs, &kgo.Record{Topic: "json", Value: []byte(v)})
	}
	produce(t, manual(t, brokers), rs...)
	r := open(t, NewSource(SourceConfig{Brokers: brokers, Topics: []string{"json"}}, JSON[event]()), 0, 1)
	got, _, errs := readUntil(t, r, 10)
	var ns []int
	for _, e := range got {
		ns = append(ns, e.N)
	}
	if want := []int{0, 1, 2, 3, 5, 6, 7, 8, 9}; !slices.Equal(ns, want) {
		t.Errorf("read %v, want %v", ns, want)
	}
	if len(errs) != 1 {
		t.Fatalf("got %d record errors, want 1", len(errs))
	}
	msg := errs[0].Error()
	for _, want := range []string{"topic json", "partition 0", "offset 4", "decode JSON"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if errs[0].Record != `{"N":` {
		t.Errorf("error's record is %q", errs[0].Record)
	}
}

// TestSourceUserDeserializer: a user function sees key, headers,
// timestamp, topic, partition and offset.
func TestSourceUserDeserializer(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "meta", 3)
	ts := time.UnixMilli(1_700_000_123_456)
	produce(t, manual(t, brokers), &kgo.Record{Topic: "meta", Partition: 2, Key: []byte("k"), Value: []byte("v"),
		Headers: []kgo.RecordHeader{{Key: "h1", Value: []byte("x")}, {Key: "h2", Value: []byte("y")}}, Timestamp: ts})
	deser := func(r *Record) (string, error) {
		var hs []string
		for _, h := range r.Headers {
			hs = append(hs, h.Key+"="+string(h.Value))
		}
		return fmt.Sprintf("%s/%d@%d key=%s value=%s %s t=%d", r.Topic, r.Partition, r.Offset, r.Key, r.Value, strings.Join(hs, ","), r.Timestamp.UnixMilli()), nil
	}
	r := open(t, NewSource(SourceConfig{Brokers: brokers, Topics: []string{"meta"}}, Deserializer[string](deser)), 0, 1)
	got, _, _ := readUntil(t, r, 1)
	if want := "meta/2@0 key=k value=v h1=x,h2=y t=1700000123456"; got[0] != want {
		t.Errorf("got %q, want %q", got[0], want)
	}
}

// TestSourceDiscoversPartitions: partitions added while a reader runs,
// and a topic created that matches its pattern, are read from their
// earliest offset, by the reader that owns them.
func TestSourceDiscoversPartitions(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "in-a", 2)
	createTopic(t, brokers, "other", 2)
	src := NewSource(SourceConfig{Brokers: brokers, TopicPattern: "in-.*", DiscoveryInterval: 100 * time.Millisecond}, String())
	readers := []spate.SourceReader[string]{open(t, src, 0, 2), open(t, src, 1, 2)}
	pr := manual(t, brokers)
	produce(t, pr, numbered("in-a", "a", 4, 2, time.Now())...)
	produce(t, pr, numbered("other", "o", 4, 2, time.Now())...)
	adm := kadm.NewClient(client(t, brokers))
	if _, err := adm.CreatePartitions(context.Background(), 2, "in-a"); err != nil {
		t.Fatal(err)
	}
	createTopic(t, brokers, "in-b", 3)
	// Records written to the new partitions before any reader found them.
	later := append(numbered("in-a", "A", 8, 4, time.Now()), numbered("in-b", "b", 6, 3, time.Now())...)
	produce(t, manual(t, brokers), later...)

	want := map[int][]string{}
	for _, r := range append(numbered("in-a", "a", 4, 2, time.Now()), later...) {
		o := owner(topicPartition{r.Topic, r.Partition}, 2)
		want[o] = append(want[o], string(r.Value))
	}
	for i, r := range readers {
		got, _, _ := readUntil(t, r, len(want[i]))
		if !slices.Equal(sorted(got), sorted(want[i])) {
			t.Errorf("reader %d read %v, want %v", i, sorted(got), sorted(want[i]))
		}
		expectNothing(t, r, 200*time.Millisecond)
	}
}

// TestSourceRestoreResumesAtOffsets: a reader restored from a snapshot
// reads exactly the records after it, including those of partitions it
// had fetched ahead, and a partition added since starts at its earliest
// offset.
func TestSourceRestoreResumesAtOffsets(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "resume", 3)
	pr := manual(t, brokers)
	first := numbered("resume", "x", 300, 3, time.Now())
	produce(t, pr, first...)
	src := NewSource(SourceConfig{Brokers: brokers, Topics: []string{"resume"}}, String())
	r := open(t, src, 0, 1)
	got, _, _ := readUntil(t, r, 100)
	snap, err := r.(spate.CheckpointedReader[string]).SnapshotSplits()
	if err != nil {
		t.Fatal(err)
	}
	rest, _, _ := readUntil(t, r, 200)
	r.Close()
	if len(snap) != 3 {
		t.Fatalf("snapshot has %d splits, want 3: %v", len(snap), snap)
	}
	adm := kadm.NewClient(client(t, brokers))
	if _, err := adm.CreatePartitions(context.Background(), 1, "resume"); err != nil {
		t.Fatal(err)
	}
	added := &kgo.Record{Topic: "resume", Partition: 3, Value: []byte("added")}
	produce(t, manual(t, brokers), added)

	r2, err := src.Restore(context.Background(), spate.Split{Subtask: 0, Parallelism: 1}, snap)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	again, _, _ := readUntil(t, r2, 201)
	if want := append(slices.Clone(rest), "added"); !slices.Equal(sorted(again), sorted(want)) {
		t.Errorf("restored reader read %d records, want the %d after the snapshot", len(again), len(want))
	}
	if all := append(got, rest...); !slices.Equal(sorted(all), sorted(values(first))) {
		t.Errorf("first reader read %d records, want %d", len(all), len(first))
	}
	expectNothing(t, r2, 100*time.Millisecond)
}

// TestSourceCommitsGroupOffsets: a completed checkpoint's offsets are
// committed to the group; with NoOffsetCommit they are not.
func TestSourceCommitsGroupOffsets(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "lag", 2)
	produce(t, manual(t, brokers), numbered("lag", "x", 10, 2, time.Now())...)
	adm := kadm.NewClient(client(t, brokers))
	for _, off := range []bool{false, true} {
		group := fmt.Sprintf("g-%v", off)
		r := open(t, NewSource(SourceConfig{Brokers: brokers, Topics: []string{"lag"}, GroupID: group, NoOffsetCommit: off}, String()), 0, 1)
		readUntil(t, r, 10)
		snap, _ := r.(spate.CheckpointedReader[string]).SnapshotSplits()
		if err := r.(spate.CheckpointListener).NotifyCheckpointComplete(1, snap); err != nil {
			t.Fatal(err)
		}
		os, err := adm.FetchOffsets(context.Background(), group)
		if err != nil && !(off && errors.Is(err, kerr.GroupIDNotFound)) {
			t.Fatal(err)
		}
		for p := range int32(2) {
			o, ok := os.Lookup("lag", p)
			switch {
			case off && ok && o.At >= 0:
				t.Errorf("NoOffsetCommit: group %s has offset %d for partition %d", group, o.At, p)
			case !off && (!ok || o.At != 5):
				t.Errorf("group %s has offset %+v for partition %d, want 5", group, o, p)
			}
		}
	}
}

// TestSourceConfigErrors: a wrong configuration fails at open, naming
// the Flink option.
func TestSourceConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  SourceConfig
		want string
	}{
		{"no brokers", SourceConfig{Topics: []string{"t"}}, "properties.bootstrap.servers"},
		{"no topic", SourceConfig{Brokers: []string{"b:1"}}, "topic-pattern"},
		{"bad mode", SourceConfig{Brokers: []string{"b:1"}, Topics: []string{"t"}, StartupMode: "earliest"}, "scan.startup.mode"},
		{"group without id", SourceConfig{Brokers: []string{"b:1"}, Topics: []string{"t"}, StartupMode: StartGroupOffsets}, "properties.group.id"},
		{"bad pattern", SourceConfig{Brokers: []string{"b:1"}, TopicPattern: "("}, "topic-pattern"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSource(tc.cfg, String()).Open(context.Background(), spate.Split{Parallelism: 1})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestSourceRecyclesRecords: the reader gives the records kgo decoded
// back to the pool (recordPool) as it goes, and what a Deserializer keeps
// of a record, here its key, value and a header's value without copies,
// is never rewritten by later fetches, compressed or not.
func TestSourceRecyclesRecords(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "recycle", 2)
	const n = 4000
	plain := manual(t, brokers, kgo.ProducerBatchCompression(kgo.NoCompression()))
	snappy := manual(t, brokers, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	want := make([]string, n)
	for i := 0; i < n; i += 100 {
		rs := make([]*kgo.Record, 100)
		for j := range rs {
			k := i + j
			want[k] = fmt.Sprintf("k%d v%d-%s h%d", k, k, strings.Repeat("x", k%37), k)
			rs[j] = &kgo.Record{Topic: "recycle", Partition: int32(k % 2), Key: fmt.Appendf(nil, "k%d", k),
				Value: fmt.Appendf(nil, "v%d-%s", k, strings.Repeat("x", k%37)), Headers: []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "h%d", k)}}}
		}
		cl := plain
		if i/100%2 == 1 {
			cl = snappy
		}
		produce(t, cl, rs...)
	}
	type kept struct{ key, value, header []byte }
	deser := func(r *Record) (kept, error) {
		return kept{r.Key, r.Value, r.Headers[0].Value}, nil
	}
	puts := records.puts.Load()
	r := open(t, NewSource(SourceConfig{Brokers: brokers, Topics: []string{"recycle"}}, Deserializer[kept](deser)), 0, 1)
	got, _, _ := readUntil(t, r, n)
	if records.puts.Load() == puts {
		t.Errorf("no record slice came back to the pool after %d records", n)
	}
	seen := map[string]bool{}
	for _, g := range got {
		s := fmt.Sprintf("%s %s %s", g.key, g.value, g.header)
		if seen[s] {
			t.Fatalf("record %q read twice", s)
		}
		seen[s] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Fatalf("record %q missing or rewritten; %d distinct records read", w, len(seen))
		}
	}
}
