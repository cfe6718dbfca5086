package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/spate-dev/spate"
)

// TestSinkRoundTrip: a bounded job writes its records with each delivery
// guarantee, keys and headers included; a read_committed consumer reads
// each once.
func TestSinkRoundTrip(t *testing.T) {
	_, brokers := newCluster(t)
	for _, g := range []DeliveryGuarantee{DeliveryNone, DeliveryAtLeastOnce, DeliveryExactlyOnce} {
		t.Run(string(g), func(t *testing.T) {
			topic := "out-" + string(g)
			createTopic(t, brokers, topic, 3)
			var in []string
			for i := range 500 {
				in = append(in, "r"+strconv.Itoa(i))
			}
			ser := Serializer[string](func(v string) (Record, error) {
				return Record{Value: []byte(v), Headers: []Header{{Key: "h", Value: []byte("x" + v)}}}, nil
			}).WithKey(func(v string) []byte { return []byte("k" + v) })
			env := spate.NewEnv(spate.WithParallelism(2))
			s := spate.FromSlice(env, in)
			spate.SinkTo(s, NewSink(SinkConfig{Brokers: brokers, Topic: topic, DeliveryGuarantee: g, TransactionalIDPrefix: "rt"}, ser)).Parallelism(2)
			if err := env.Execute("roundtrip"); err != nil {
				t.Fatal(err)
			}
			got := consume(t, brokers, topic, true, len(in), 200*time.Millisecond)
			var vs []string
			for _, r := range got {
				v := string(r.Value)
				vs = append(vs, v)
				if string(r.Key) != "k"+v || len(r.Headers) != 1 || string(r.Headers[0].Value) != "x"+v {
					t.Errorf("record %s has key %q headers %v", v, r.Key, r.Headers)
				}
			}
			if !slices.Equal(sorted(vs), sorted(in)) {
				t.Errorf("consumed %d records, want the %d written, each once", len(vs), len(in))
			}
		})
	}
}

// TestSinkPartitioners: records land where each partitioner says.
func TestSinkPartitioners(t *testing.T) {
	_, brokers := newCluster(t)
	tests := []struct {
		name  string
		p     *Partitioner
		check func(t *testing.T, byPart map[int32][]string)
	}{
		{"default", PartitionDefault, func(t *testing.T, byPart map[int32][]string) {
			// Murmur2 of the key, as Kafka's Java client: "key-0" goes to the
			// partition Java's producer would use for 4 partitions.
			for p, vs := range byPart {
				for _, v := range vs {
					key := "key-" + strings.TrimPrefix(v, "v")[0:1]
					if want := int32(murmur2([]byte(key))&0x7fffffff) % 4; p != want {
						t.Errorf("%s (key %s) in partition %d, want %d", v, key, p, want)
					}
				}
			}
		}},
		{"round-robin", PartitionRoundRobin, func(t *testing.T, byPart map[int32][]string) {
			for p := range int32(4) {
				if len(byPart[p]) != 10 {
					t.Errorf("partition %d has %d records, want 10", p, len(byPart[p]))
				}
			}
		}},
		{"fixed", PartitionFixed, func(t *testing.T, byPart map[int32][]string) {
			if len(byPart[0]) != 40 {
				t.Errorf("subtask 0 wrote %d records to partition 0, want all 40: %v", len(byPart[0]), byPart)
			}
		}},
		{"custom", PartitionBy(func(r *Record, n int) int { v, _ := strconv.Atoi(string(r.Value[1:])); return v % n }), func(t *testing.T, byPart map[int32][]string) {
			for p, vs := range byPart {
				for _, v := range vs {
					if n, _ := strconv.Atoi(v[1:]); int32(n%4) != p {
						t.Errorf("%s in partition %d", v, p)
					}
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := "part-" + tc.name
			createTopic(t, brokers, topic, 4)
			var in []string
			for i := range 40 {
				in = append(in, "v"+strconv.Itoa(i))
			}
			ser := StringValues().WithKey(func(v string) []byte { return []byte("key-" + v[1:2]) })
			env := spate.NewEnv(spate.WithParallelism(1))
			spate.SinkTo(spate.FromSlice(env, in), NewSink(SinkConfig{Brokers: brokers, Topic: topic, Partitioner: tc.p}, ser))
			if err := env.Execute("partitioners"); err != nil {
				t.Fatal(err)
			}
			byPart := map[int32][]string{}
			for _, r := range consume(t, brokers, topic, false, len(in), 100*time.Millisecond) {
				byPart[r.Partition] = append(byPart[r.Partition], string(r.Value))
			}
			tc.check(t, byPart)
		})
	}
}

// murmur2 is Kafka's Java partitioner hash, written out for the test.
func murmur2(b []byte) uint32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		b = b[4:]
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// TestSinkTransactionsRecovery drives an exactly-once writer as the
// runtime does across a crash: a restored checkpoint's transaction is
// committed (again and again, idempotently), the one pre-committed after
// it and the open one are aborted, and a read_committed consumer sees
// each record of the committed ones once.
func TestSinkTransactionsRecovery(t *testing.T) {
	_, brokers := newCluster(t)
	createTopic(t, brokers, "txn", 2)
	sink := NewSink(SinkConfig{Brokers: brokers, Topic: "txn", DeliveryGuarantee: DeliveryExactlyOnce, TransactionalIDPrefix: "rec"}, StringValues())
	open := func() *txnWriter[string] {
		w, err := sink.Open(context.Background(), spate.SinkInfo{Subtask: 0, Parallelism: 1})
		if err != nil {
			t.Fatal(err)
		}
		return w.(*txnWriter[string])
	}
	write := func(w *txnWriter[string], prefix string, n int) {
		for i := range n {
			if err := w.Write(fmt.Sprintf("%s%d", prefix, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	w1 := open()
	if err := w1.Begin(1, nil); err != nil {
		t.Fatal(err)
	}
	write(w1, "a", 10)
	c1, err := w1.PrepareCommit(1)
	if err != nil || c1 == nil {
		t.Fatalf("PrepareCommit: %v %v", c1, err)
	}
	write(w1, "b", 10)
	if _, err := w1.PrepareCommit(2); err != nil { // checkpoint 2 never completes
		t.Fatal(err)
	}
	write(w1, "c", 10)
	if err := w1.cur.p.flush(context.Background()); err != nil { // written, in the open transaction
		t.Fatal(err)
	}
	// The process dies: nothing ends its transactions.

	for attempt := int64(2); attempt <= 3; attempt++ {
		w := open()
		if err := w.Begin(attempt, [][]byte{c1}); err != nil {
			t.Fatalf("attempt %d: Begin: %v", attempt, err)
		}
		write(w, fmt.Sprintf("d%d-", attempt), 5)
		c, err := w.PrepareCommit(3)
		if err != nil {
			t.Fatal(err)
		}
		if attempt == 3 {
			if err := w.Commit(c); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(c); err != nil {
				t.Fatalf("a second commit of one committable: %v", err)
			}
		}
		if err := w.Close(nil); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("a%d", i))
	}
	for i := range 5 {
		want = append(want, fmt.Sprintf("d3-%d", i))
	}
	got := values(consume(t, brokers, "txn", true, len(want), 300*time.Millisecond))
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("read_committed consumer read %v\nwant %v", sorted(got), sorted(want))
	}
	// The aborted records are in the log: the test saw aborts happen.
	all := values(consume(t, brokers, "txn", false, 10+10+10+5+5, 300*time.Millisecond))
	if len(all) != 40 {
		t.Errorf("read_uncommitted consumer read %d records, want all 40 written", len(all))
	}
	lts, err := kadm.NewClient(client(t, brokers)).ListTransactions(context.Background(), nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	for id := range lts {
		if strings.HasPrefix(id, "rec-") {
			t.Errorf("transaction %s still open", id)
		}
	}
}

// TestSinkConfigErrors: a wrong configuration fails at open, naming the
// Flink option.
func TestSinkConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  SinkConfig
		want string
	}{
		{"no brokers", SinkConfig{Topic: "t"}, "properties.bootstrap.servers"},
		{"exactly-once without prefix", SinkConfig{Brokers: []string{"b:1"}, DeliveryGuarantee: DeliveryExactlyOnce}, "sink.transactional-id-prefix"},
		{"bad guarantee", SinkConfig{Brokers: []string{"b:1"}, DeliveryGuarantee: "exactly_once"}, "sink.delivery-guarantee"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSink(tc.cfg, StringValues()).Open(context.Background(), spate.SinkInfo{Parallelism: 1})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestSinkTransactionalIDPool drives an exactly-once writer through many
// checkpoints, each committed one barrier late (and every tenth two
// late): the transactions use a pool of a few transactional ids, reused
// once committed, not an id per checkpoint. A restore of the last
// completed checkpoint, whose transaction's id was already reused,
// commits nothing twice and aborts what came after; a committable whose
// transaction was aborted fails the restore.
func TestSinkTransactionalIDPool(t *testing.T) {
	const checkpoints, perCheckpoint = 60, 3
	_, brokers := newCluster(t)
	createTopic(t, brokers, "pool", 2)
	sink := NewSink(SinkConfig{Brokers: brokers, Topic: "pool", DeliveryGuarantee: DeliveryExactlyOnce, TransactionalIDPrefix: "pool"}, StringValues())
	open := func() *txnWriter[string] {
		w, err := sink.Open(context.Background(), spate.SinkInfo{Subtask: 0, Parallelism: 1})
		if err != nil {
			t.Fatal(err)
		}
		return w.(*txnWriter[string])
	}
	var want []string
	write := func(w *txnWriter[string], prefix string, committed bool) {
		for i := range perCheckpoint {
			v := fmt.Sprintf("%s-%d", prefix, i)
			if err := w.Write(v); err != nil {
				t.Fatal(err)
			}
			if committed {
				want = append(want, v)
			}
		}
	}
	commit := func(w *txnWriter[string], c []byte) {
		if err := w.Commit(c); err != nil {
			t.Fatal(err)
		}
	}

	w1 := open()
	if err := w1.Begin(1, nil); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var pending [][]byte
	for n := int64(1); n <= checkpoints; n++ {
		write(w1, fmt.Sprint(n), true)
		c, err := w1.PrepareCommit(n)
		if err != nil || c == nil {
			t.Fatalf("PrepareCommit(%d): %v %v", n, c, err)
		}
		dc, err := decodeCommittable(c)
		if err != nil {
			t.Fatal(err)
		}
		ids[dc.id] = true
		// The checkpoints before n complete now, but every tenth's
		// notification is late by one more.
		if n%10 != 0 {
			for _, p := range pending {
				commit(w1, p)
			}
			pending = pending[:0]
		}
		pending = append(pending, c)
	}
	// The last checkpoint completes; its transaction's id serves the
	// next transaction, pre-committed for a checkpoint that never
	// completes, and the one after stays open: the process dies.
	last := pending[len(pending)-1]
	for _, p := range pending {
		commit(w1, p)
	}
	write(w1, "after-1", false)
	lingering, err := w1.PrepareCommit(checkpoints + 1)
	if err != nil {
		t.Fatal(err)
	}
	write(w1, "after-2", false)
	if err := w1.cur.p.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(ids) > 3 || len(ids) < 2 {
		t.Errorf("%d checkpoints used %d transactional ids %v, want 2 or 3 reused", checkpoints, len(ids), ids)
	}
	lastID, _ := decodeCommittable(last)
	if dl, _ := decodeCommittable(lingering); !ids[dl.id] {
		t.Errorf("the transaction after the last checkpoint has id %s, not one of the pool's %v", dl.id, ids)
	}
	t.Logf("%d checkpoints, transactional ids %v; last completed: %s", checkpoints, ids, lastID.id)

	// The restore commits the last checkpoint's transaction again: its
	// id has a later epoch now, which means committed.
	w2 := open()
	if err := w2.Begin(2, [][]byte{last}); err != nil {
		t.Fatalf("Begin with a committed transaction whose id was reused: %v", err)
	}
	write(w2, "restored", true)
	c, err := w2.PrepareCommit(checkpoints + 2)
	if err != nil {
		t.Fatal(err)
	}
	commit(w2, c)
	if err := w2.Close(nil); err != nil {
		t.Fatal(err)
	}
	// The transaction pre-committed after the restored checkpoint was
	// aborted: a restore that would commit it fails, saying so.
	w3 := open()
	if err := w3.Begin(3, [][]byte{lingering}); err == nil || !strings.Contains(err.Error(), "commit transaction") {
		t.Errorf("Begin with an aborted transaction's committable: %v, want an error", err)
	}
	w3.Close(errors.New("restore failed"))

	got := values(consume(t, brokers, "pool", true, len(want), 300*time.Millisecond))
	if !slices.Equal(sorted(got), sorted(want)) {
		t.Errorf("read_committed consumer read %d records, want the %d committed once each", len(got), len(want))
	}
	all := consume(t, brokers, "pool", false, len(want)+2*perCheckpoint, 300*time.Millisecond)
	if len(all) != len(want)+2*perCheckpoint {
		t.Errorf("read_uncommitted consumer read %d records, want %d: the aborted ones too", len(all), len(want)+2*perCheckpoint)
	}
	lts, err := kadm.NewClient(client(t, brokers)).ListTransactions(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var run1 int
	for id, lt := range lts {
		if strings.HasPrefix(id, w1.prefix+w1.run) {
			run1++
		}
		if strings.HasPrefix(id, "pool-") && lt.State == "Ongoing" {
			t.Errorf("transaction %s still open", id)
		}
	}
	if run1 != len(ids) {
		t.Errorf("the broker knows %d transactional ids of the first run, want the pool's %d", run1, len(ids))
	}
}

// TestSinkDeliveryTimeout: when the brokers are gone, a writer's barrier
// fails within SinkConfig.DeliveryTimeout, saying so, for every delivery
// guarantee, instead of waiting for ever.
func TestSinkDeliveryTimeout(t *testing.T) {
	for _, g := range []DeliveryGuarantee{DeliveryAtLeastOnce, DeliveryExactlyOnce} {
		t.Run(string(g), func(t *testing.T) {
			c, brokers := newCluster(t)
			createTopic(t, brokers, "gone", 2)
			sink := NewSink(SinkConfig{Brokers: brokers, Topic: "gone", DeliveryGuarantee: g, TransactionalIDPrefix: "gone", DeliveryTimeout: time.Second}, StringValues())
			ww, err := sink.Open(context.Background(), spate.SinkInfo{Subtask: 0, Parallelism: 1})
			if err != nil {
				t.Fatal(err)
			}
			w := ww.(spate.TransactionalSinkWriter[string])
			defer w.Close(errors.New("test over"))
			if err := w.Begin(1, nil); err != nil {
				t.Fatal(err)
			}
			if err := w.Write("before"); err != nil {
				t.Fatal(err)
			}
			if _, err := w.PrepareCommit(1); err != nil {
				t.Fatalf("barrier with the brokers up: %v", err)
			}
			c.Close()
			start := time.Now()
			err = w.Write("after")
			if err == nil {
				_, err = w.PrepareCommit(2)
			}
			if err == nil || !strings.Contains(err.Error(), "DeliveryTimeout") {
				t.Fatalf("barrier with the brokers gone: %v, want an error naming DeliveryTimeout", err)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("the barrier failed after %v, want about the 1s delivery timeout", d)
			}
			t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}
}
