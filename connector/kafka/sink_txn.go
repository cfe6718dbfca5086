package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spate-dev/spate"
)

// txnWriter is the writer of DeliveryExactlyOnce; the package
// documentation explains its design.
type txnWriter[T any] struct {
	ctx  context.Context
	sink *Sink[T]
	info spate.SinkInfo
	// prefix starts the transactional ids of this subtask,
	// "<sink.transactional-id-prefix>-<subtask>-"; run follows it,
	// "<attempt>-<nonce>-", then the transaction's slot in the run's
	// pool of ids.
	prefix, run string
	timeout     time.Duration
	// admin sends EndTxn, InitProducerID and ListTransactions; it is
	// safe for concurrent use, as Commit needs.
	admin *kgo.Client
	began bool
	cur   *txn // the open transaction, nil before the next Write
	mu    struct {
		sync.Mutex
		prepared map[string]*txn // pre-committed, waiting for Commit
		// busy holds the slots of the open and the pre-committed
		// transactions: a slot's id is reused once its transaction is
		// committed.
		busy   map[int]bool
		closed bool
	}
}

// txn is one transaction, with the client that has its transactional id.
type txn struct {
	id   string
	slot int
	p    *producer
}

var _ spate.TransactionalSinkWriter[int] = (*txnWriter[int])(nil)

func newTxnWriter[T any](ctx context.Context, s *Sink[T], info spate.SinkInfo) *txnWriter[T] {
	w := &txnWriter[T]{
		ctx: ctx, sink: s, info: info,
		prefix:  s.cfg.TransactionalIDPrefix + "-" + strconv.Itoa(info.Subtask) + "-",
		timeout: s.cfg.TransactionTimeout,
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTransactionTimeout
	}
	w.run = "0-" + nonce() + "-"
	w.mu.prepared = map[string]*txn{}
	w.mu.busy = map[int]bool{}
	return w
}

func nonce() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// adminClient returns the writer's client for transaction control,
// creating it (no connection until used).
func (w *txnWriter[T]) adminClient() (*kgo.Client, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.closed {
		return nil, errors.New("kafka sink: writer closed")
	}
	if w.admin == nil {
		opts := append([]kgo.Opt{kgo.SeedBrokers(w.sink.cfg.Brokers...)}, w.sink.cfg.ClientOptions...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("kafka sink: client: %w", err)
		}
		w.admin = cl
	}
	return w.admin, nil
}

// Begin implements spate.TransactionalSinkWriter: it commits the
// restored checkpoint's transactions of the old subtasks this writer
// takes over (its own, and at another parallelism those whose index is
// its own modulo the parallelism: the sink is a spate.UnionCommittables,
// so every writer sees every committable), then aborts every open
// transaction of those subtasks' ids (those of earlier attempts, written
// after that checkpoint).
func (w *txnWriter[T]) Begin(attempt int64, restored [][]byte) error {
	w.began = true
	w.run = strconv.FormatInt(attempt, 10) + "-" + nonce() + "-"
	committed := 0
	for _, b := range restored {
		c, err := decodeCommittable(b)
		if err != nil {
			return fmt.Errorf("kafka sink: restore: %w", err)
		}
		if !w.owns(c.id) {
			continue // another writer's to commit
		}
		if err := w.recommit(c); err != nil {
			return fmt.Errorf("kafka sink: commit transaction %s of the restored checkpoint: %w", c.id, err)
		}
		committed++
	}
	if committed > 0 {
		slog.Info("kafka sink: committed the restored checkpoint's transactions", "subtask", w.info.Subtask, "transactions", committed)
	}
	return w.abortLingering()
}

// owns reports whether id is a transactional id of an old subtask this
// writer takes over at a restore: "<prefix>-<j>-…" with j its subtask
// modulo the parallelism.
func (w *txnWriter[T]) owns(id string) bool {
	j, ok := idSubtask(w.sink.cfg.TransactionalIDPrefix, id)
	return ok && j%max(w.info.Parallelism, 1) == w.info.Subtask
}

// idSubtask returns the subtask of transactional id "<prefix>-<j>-…".
func idSubtask(prefix, id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, prefix+"-")
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	j, err := strconv.Atoi(digits)
	if err != nil || j < 0 || strconv.Itoa(j) != digits {
		return 0, false
	}
	return j, true
}

// recommit commits a restored transaction. Its id's epoch may have moved
// on: after the checkpoint completed, the earlier run committed it and
// reused the id for a later transaction (a new client, a new epoch), and
// the coordinator then refuses an EndTxn with the old epoch as fenced.
// That transaction ended committed (an id is reused only after its commit),
// unless the broker aborted it at its timeout, which the package doc
// rules out. Flink's committer reads a fenced recommit the same way.
func (w *txnWriter[T]) recommit(c committable) error {
	err := w.endTxn(c, true)
	var ke *kerr.Error
	if errors.As(err, &ke) && (ke == kerr.ProducerFenced || ke == kerr.InvalidProducerEpoch) {
		slog.Info("kafka sink: a restored transaction's id has a later epoch: it was committed, and the id reused", "transaction", c.id, "answer", ke.Message)
		return nil
	}
	return err
}

// abortLingering aborts the open transactions of the ids of the old
// subtasks this writer takes over: an InitProducerID for a transactional
// id aborts its open transaction and fences the producer that had it.
// The restored transactions are committed by then, so none is open: an
// open transaction is one an earlier attempt began after the checkpoint.
func (w *txnWriter[T]) abortLingering() error {
	admin, err := w.adminClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(w.ctx, listTimeout)
	defer cancel()
	lts, err := kadm.NewClient(admin).ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		return fmt.Errorf("kafka sink: list open transactions to abort those of earlier attempts (the brokers must allow ListTransactions, Kafka 3.0 or later): %w", err)
	}
	aborted := 0
	for _, lt := range lts.Sorted() {
		if !w.owns(lt.TxnID) {
			continue
		}
		if err := w.fence(lt.TxnID); err != nil {
			return fmt.Errorf("kafka sink: abort lingering transaction %s: %w", lt.TxnID, err)
		}
		aborted++
	}
	if aborted > 0 {
		slog.Info("kafka sink: aborted the open transactions of earlier attempts", "subtask", w.info.Subtask, "transactions", aborted)
	}
	return nil
}

// fence aborts id's open transaction by initialising a producer for it.
func (w *txnWriter[T]) fence(id string) error {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = int32(w.timeout.Milliseconds())
	req.ProducerID, req.ProducerEpoch = -1, -1
	return w.retry(func(ctx context.Context, admin *kgo.Client) (int16, error) {
		resp, err := admin.Request(ctx, req)
		if err != nil {
			return 0, err
		}
		return resp.(*kmsg.InitProducerIDResponse).ErrorCode, nil
	})
}

// endTxn commits (or aborts) c's transaction with its producer id and
// epoch, from any client: the transaction's own producer may be gone.
// Repeating a commit that succeeded succeeds: the coordinator takes it
// for a retry (same epoch, or the one a KIP-890 commit bumped it to).
func (w *txnWriter[T]) endTxn(c committable, commit bool) error {
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = c.id, c.pid, c.epoch, commit
	err := w.retry(func(ctx context.Context, admin *kgo.Client) (int16, error) {
		resp, err := admin.Request(ctx, req)
		if err != nil {
			return 0, err
		}
		return resp.(*kmsg.EndTxnResponse).ErrorCode, nil
	})
	if err != nil && commit {
		return fmt.Errorf("%w (if the broker aborted it because transaction.timeout.ms passed before the job recovered, its records are lost: raise SinkConfig.TransactionTimeout above the time recoveries take)", err)
	}
	return err
}

// retry runs call until it succeeds, fails with an error Kafka does not
// call retriable, or a minute passes.
func (w *txnWriter[T]) retry(call func(ctx context.Context, admin *kgo.Client) (int16, error)) error {
	admin, err := w.adminClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	backoff := 10 * time.Millisecond
	for {
		code, err := call(ctx, admin)
		if err == nil {
			err = kerr.ErrorForCode(code)
		}
		if err == nil {
			return nil
		}
		if !kerr.IsRetriable(err) && !errors.Is(err, kerr.ConcurrentTransactions) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// startTxn opens the next transaction, on the lowest free slot of the
// run's pool of ids, with a client of its own: the client's
// InitProducerID gives the id a new epoch, so that an EndTxn with the
// epoch of the id's earlier transaction can never commit this one.
func (w *txnWriter[T]) startTxn() error {
	slot := w.takeSlot()
	id := w.prefix + w.run + strconv.Itoa(slot)
	cl, err := kgo.NewClient(w.sink.clientOptions(w.info.Subtask, kgo.TransactionalID(id), kgo.TransactionTimeout(w.timeout))...)
	if err != nil {
		w.freeSlot(slot)
		return fmt.Errorf("kafka sink: transactional client %s: %w", id, err)
	}
	if err := cl.BeginTransaction(); err != nil {
		cl.Close()
		w.freeSlot(slot)
		return fmt.Errorf("kafka sink: begin transaction %s: %w", id, err)
	}
	w.cur = &txn{id: id, slot: slot, p: newProducer(cl, w.sink.deliveryTimeout())}
	return nil
}

// takeSlot marks the lowest free slot busy and returns it.
func (w *txnWriter[T]) takeSlot() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	slot := 0
	for w.mu.busy[slot] {
		slot++
	}
	w.mu.busy[slot] = true
	return slot
}

func (w *txnWriter[T]) freeSlot(slot int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.mu.busy, slot)
}

// Write implements spate.SinkWriter.
func (w *txnWriter[T]) Write(v T) error {
	kr, err := w.sink.toKgo(v)
	if err != nil {
		return err
	}
	if w.cur == nil {
		if err := w.startTxn(); err != nil {
			return err
		}
	}
	return w.cur.p.produce(w.ctx, kr)
}

// PrepareCommit implements spate.TransactionalSinkWriter: it waits until
// every record of the open transaction is written, and returns the
// transaction's id, producer id and epoch; the next Write opens another.
func (w *txnWriter[T]) PrepareCommit(int64) ([]byte, error) {
	t := w.cur
	if t == nil || t.p.sent == 0 {
		return nil, nil
	}
	if err := t.p.flush(w.ctx); err != nil {
		return nil, fmt.Errorf("transaction %s: %w", t.id, err)
	}
	pid, epoch, err := t.p.cl.ProducerID(w.ctx)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: producer id of transaction %s: %w", t.id, err)
	}
	w.cur = nil
	w.mu.Lock()
	w.mu.prepared[t.id] = t
	w.mu.Unlock()
	return committable{id: t.id, pid: pid, epoch: epoch}.encode(), nil
}

// Commit implements spate.TransactionalSinkWriter: EndTxn with the
// committable's producer id and epoch, the same call whether the
// transaction is this writer's or a restored one; then the
// transaction's client is closed.
func (w *txnWriter[T]) Commit(b []byte) error {
	c, err := decodeCommittable(b)
	if err != nil {
		return err
	}
	if err := w.endTxn(c, true); err != nil {
		return fmt.Errorf("kafka sink: commit transaction %s: %w", c.id, err)
	}
	w.mu.Lock()
	t := w.mu.prepared[c.id]
	delete(w.mu.prepared, c.id)
	if t != nil {
		delete(w.mu.busy, t.slot) // committed: its id may serve again
	}
	w.mu.Unlock()
	if t != nil {
		t.p.cl.Close()
	}
	return nil
}

// Close implements spate.SinkWriter. Without checkpoints (no Begin) the
// whole output is one transaction, committed here after a success. After
// a failure the open transaction is aborted; pre-committed ones are left
// to the restore that commits or aborts them.
func (w *txnWriter[T]) Close(err error) error {
	var cerr error
	if t := w.cur; t != nil {
		w.cur = nil
		if err == nil {
			if cerr = t.p.flush(w.ctx); cerr == nil {
				cerr = t.p.cl.EndTransaction(w.ctx, kgo.TryCommit)
			}
			if cerr != nil {
				cerr = fmt.Errorf("kafka sink: commit transaction %s: %w", t.id, cerr)
			}
		} else {
			ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
			if aerr := t.p.cl.AbortBufferedRecords(ctx); aerr == nil {
				_ = t.p.cl.EndTransaction(ctx, kgo.TryAbort) // best effort: the next Begin aborts it otherwise
			}
			cancel()
		}
		t.p.cl.Close()
	}
	w.mu.Lock()
	for id, t := range w.mu.prepared {
		t.p.cl.Close()
		delete(w.mu.prepared, id)
	}
	admin := w.admin
	w.admin, w.mu.closed = nil, true
	w.mu.Unlock()
	if admin != nil {
		admin.Close()
	}
	return cerr
}
