package spate

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/spate-dev/spate/internal/codec"
	"github.com/spate-dev/spate/internal/role"
	"github.com/spate-dev/spate/internal/worker"
)

// Collect on a cluster works as Flink's executeAndCollect: the Collect
// sink's subtasks, in the job's workers, send their records in batches
// (in the record type's codec) to the JobManager, which buffers a bounded
// amount per job; the client that submitted the job fetches them over
// REST while the job runs (POST /v1/jobs/{id}/collect) and fills the
// Collected, and Execute returns once every Collect subtask's last batch
// is in and the job has ended. A detached submission cannot collect: its
// client does not stay, so submitting one is refused.

// collectBatchBytes is the size at which a Collect subtask on a cluster
// sends its batch; a smaller batch goes when the subtask has nothing else
// to do, so a quiet stream's results are not held back.
const collectBatchBytes = 64 << 10

// collectTarget is a Collect sink as plans and clients see it.
type collectTarget interface {
	// addBatch decodes a batch sent by a subtask on a cluster and adds
	// its records.
	addBatch(records []byte) error
	// check tells whether the records can cross from the cluster.
	check() error
}

// remoteCollectWriter is a Collect subtask on a cluster: it sends its
// records to the JobManager.
type remoteCollectWriter[T any] struct {
	ctx           context.Context
	push          *worker.CollectPusher
	sink, subtask int
	codec         codec.Codec[T]
	buf           []byte // the records of the batch, encoded
	n             int    // and their number
}

func newRemoteCollectWriter[T any](ctx context.Context, c *Collected[T], p *worker.CollectPusher, info SinkInfo) (SinkWriter[T], error) {
	cd, err := codec.For[T]()
	if err != nil {
		return nil, fmt.Errorf("Collect sends its records to the client and needs a codec: %w", err)
	}
	return &remoteCollectWriter[T]{ctx: ctx, push: p, sink: c.sink, subtask: info.Subtask, codec: cd}, nil
}

func (w *remoteCollectWriter[T]) Write(v T) error {
	w.buf = w.codec.Append(w.buf, v)
	w.n++
	if len(w.buf) >= collectBatchBytes {
		return w.send(false)
	}
	return nil
}

// Flush implements operator.Flusher.
func (w *remoteCollectWriter[T]) Flush() error {
	if w.n == 0 {
		return nil
	}
	return w.send(false)
}

func (w *remoteCollectWriter[T]) send(last bool) error {
	batch := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(w.buf)), uint64(w.n))
	batch = append(batch, w.buf...)
	if err := w.push.Push(w.ctx, w.sink, w.subtask, batch, last); err != nil {
		if w.ctx.Err() != nil {
			// The job stops: that, not the interrupted call, is why.
			return context.Cause(w.ctx)
		}
		return err
	}
	w.buf, w.n = w.buf[:0], 0
	return nil
}

// Close implements SinkWriter: on success it sends the rest with the
// subtask's end; a failed job sends nothing more (its client reports the
// failure).
func (w *remoteCollectWriter[T]) Close(err error) error {
	if err != nil {
		return nil
	}
	return w.send(true)
}

// addBatch implements collectTarget.
func (c *Collected[T]) addBatch(records []byte) error {
	cd, err := codec.For[T]()
	if err != nil {
		return err
	}
	n, k := binary.Uvarint(records)
	if k <= 0 || n > uint64(len(records)) {
		return fmt.Errorf("malformed batch of %d bytes", len(records))
	}
	src := records[k:]
	vals := make([]T, 0, n)
	for i := uint64(0); i < n; i++ {
		v, rest, err := cd.Decode(src)
		if err != nil {
			return fmt.Errorf("record %d of %d: %w", i+1, n, err)
		}
		vals = append(vals, v)
		src = rest
	}
	if len(src) != 0 {
		return fmt.Errorf("batch of %d records has %d bytes left over", n, len(src))
	}
	c.mu.Lock()
	c.vals = append(c.vals, vals...)
	c.mu.Unlock()
	return nil
}

// check implements collectTarget.
func (c *Collected[T]) check() error {
	_, err := codec.For[T]()
	return err
}

// collectTargetAdapter gives a Collect sink's target the methods of
// role.CollectTarget.
type collectTargetAdapter struct{ t collectTarget }

func (a collectTargetAdapter) AddBatch(records []byte) error { return a.t.addBatch(records) }
func (a collectTargetAdapter) Check() error                  { return a.t.check() }

// collectSinks returns the plan's Collect sinks by operator id.
func (p *plan) collectSinks() map[int]role.CollectSink {
	var sinks map[int]role.CollectSink
	for _, n := range p.nodes {
		if n.collect == nil {
			continue
		}
		if sinks == nil {
			sinks = map[int]role.CollectSink{}
		}
		sinks[n.id] = role.CollectSink{Name: n.name, Target: collectTargetAdapter{n.collect}, Subtasks: p.par[n.id]}
	}
	return sinks
}
