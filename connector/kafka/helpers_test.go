package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spate-dev/spate"
)

// newCluster starts an in-process Kafka cluster of three brokers for the
// test and returns its seed brokers.
func newCluster(t testing.TB) (*cluster, []string) {
	t.Helper()
	c := &cluster{}
	c.mu.conns = map[string][]net.Conn{}
	kc, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.ListenFn(c.listen))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	c.Cluster = kc
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// cluster is a kfake cluster whose brokers can crash and restart.
//
// kfake's RemoveNode alone is no crash: it closes the broker's listener
// but not the connections the broker accepted, and the removed broker
// goes on answering on them, NOT_LEADER_FOR_PARTITION (or
// NOT_COORDINATOR) for everything, naming the new leader. Once AddNode
// brings the node id back on the same port, a client's metadata shows
// the node at the address it already has a connection to, so it keeps
// that connection, and the old broker's answer names node 1 as the
// leader of partitions it does not lead: the client retries on the same
// connection for ever (an unlimited ProduceSync hung 15 minutes so). A
// real broker's death closes its connections; crash does too.
type cluster struct {
	*kfake.Cluster
	mu struct {
		sync.Mutex
		conns map[string][]net.Conn // accepted, by listen address
	}
}

// listen is kfake's ListenFn: a listener that records what it accepts.
func (c *cluster) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return &trackingListener{Listener: ln, c: c}, nil
}

type trackingListener struct {
	net.Listener
	c *cluster
}

func (l *trackingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	addr := l.Addr().String()
	l.c.mu.conns[addr] = append(l.c.mu.conns[addr], conn)
	return conn, nil
}

// crash stops broker node, listening on addr, as its process dying
// would: its partitions' leadership and its coordinators move to the
// others (kfake keeps one copy of the data, as replication factor 3
// would), and its clients' connections break.
func (c *cluster) crash(t testing.TB, node int32, addr string) {
	t.Helper()
	if err := c.RemoveNode(node); err != nil {
		t.Fatalf("stop broker %d: %v", node, err)
	}
	c.mu.Lock()
	conns := c.mu.conns[addr]
	delete(c.mu.conns, addr)
	c.mu.Unlock()
	for _, conn := range conns {
		conn.Close()
	}
}

// restart brings node back on addr's port after a crash; leadership is
// shuffled again over the three.
func (c *cluster) restart(t testing.TB, node int32, addr string) {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("broker address %s: %v", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("broker address %s: %v", addr, err)
	}
	if _, _, err := c.AddNode(node, p); err != nil {
		t.Fatalf("restart broker %d on port %d: %v", node, p, err)
	}
}

// client returns a kgo client of brokers, closed at the test's end.
func client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates topic with partitions partitions.
func createTopic(t testing.TB, brokers []string, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(client(t, brokers))
	resp, err := adm.CreateTopic(context.Background(), partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// produce writes records synchronously, failing the test on error.
func produce(t testing.TB, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// numbered returns n records of topic, values "<prefix><i>", each to
// partition i % partitions, with timestamps base+i ms.
func numbered(topic, prefix string, n, partitions int, base time.Time) []*kgo.Record {
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: topic, Partition: int32(i % partitions), Value: fmt.Appendf(nil, "%s%d", prefix, i), Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
	}
	return rs
}

// manual is a producer client that writes to the partitions records
// name.
func manual(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	return client(t, brokers, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
}

// readUntil reads r until it has want records (or record errors, which
// it collects), failing after a generous deadline.
func readUntil[T any](t testing.TB, r spate.SourceReader[T], want int) ([]T, []spate.SourceEvent, []*spate.RecordError) {
	t.Helper()
	er := r.(spate.EventReader[T])
	buf := make([]T, 64)
	evs := make([]spate.SourceEvent, 64)
	var got []T
	var events []spate.SourceEvent
	var errs []*spate.RecordError
	deadline := time.Now().Add(30 * time.Second)
	for len(got)+len(errs) < want {
		if time.Now().After(deadline) {
			t.Fatalf("read %d records and %d errors in 30s, want %d", len(got), len(errs), want)
		}
		k := min(len(buf), want-len(got)-len(errs))
		n, err := er.ReadEvents(context.Background(), buf[:k], evs[:k])
		got = append(got, buf[:n]...)
		events = append(events, evs[:n]...)
		var re *spate.RecordError
		switch {
		case err == nil:
		case errors.As(err, &re):
			errs = append(errs, re)
		case errors.Is(err, io.EOF):
			t.Fatalf("unexpected EOF")
		default:
			t.Fatalf("read: %v", err)
		}
	}
	return got, events, errs
}

// expectNothing reads r for a while and fails if it yields anything.
func expectNothing[T any](t testing.TB, r spate.SourceReader[T], d time.Duration) {
	t.Helper()
	buf := make([]T, 64)
	for end := time.Now().Add(d); time.Now().Before(end); {
		n, err := r.Read(context.Background(), buf)
		if n > 0 || err != nil {
			t.Fatalf("read %d records (%v) where none were expected: %v", n, err, buf[:n])
		}
	}
}

func sorted(ss []string) []string {
	ss = append([]string(nil), ss...)
	sort.Strings(ss)
	return ss
}

func open[T any](t testing.TB, src *Source[T], subtask, parallelism int) spate.SourceReader[T] {
	t.Helper()
	r, err := src.Open(context.Background(), spate.Split{Subtask: subtask, Parallelism: parallelism})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// consume reads topic from its start until it has at least want records
// and then nothing new came for quiet, or fails after a generous
// deadline; readCommitted chooses the isolation level.
func consume(t testing.TB, brokers []string, topic string, readCommitted bool, want int, quiet time.Duration) []*kgo.Record {
	t.Helper()
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := client(t, brokers, opts...)
	defer cl.Close()
	var got []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	lastNew := time.Now()
	for {
		if len(got) >= want && time.Since(lastNew) >= quiet {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d records of %s in 60s, want %d", len(got), topic, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if rs := fs.Records(); len(rs) > 0 {
			got = append(got, rs...)
			lastNew = time.Now()
		}
	}
}

// waitFor polls cond until it holds, failing after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(timeout); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type kgoRecord = kgo.Record

func pending(rs []*kgo.Record) []*kgo.Record { return rs }

func kadmClient(t testing.TB, brokers []string) *kadm.Client {
	return kadm.NewClient(client(t, brokers))
}
