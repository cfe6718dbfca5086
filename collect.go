package spate

import (
	"context"
	"encoding/binary"
	"fmt"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/codec"
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

// collectWait is how long one fetch of Collect results waits at the
// JobManager for a batch.
const collectWait = 2000 // ms

// collectTarget is a Collect sink as plans and clients see it.
type collectTarget interface {
	// addBatch decodes a batch sent by a subtask on a cluster and adds
	// its records.
	addBatch(records []byte) error
	// check tells whether the records can cross from the cluster.
	check() error
}

type collectPusherKey struct{}

// withCollectPusher makes the Collect sinks of the worker's job, opened
// under the returned context, send their records to the JobManager.
func withCollectPusher(ctx context.Context, dep *worker.Deployment) context.Context {
	return context.WithValue(ctx, collectPusherKey{}, worker.NewCollectPusher(dep))
}

func collectPusherFrom(ctx context.Context) *worker.CollectPusher {
	p, _ := ctx.Value(collectPusherKey{}).(*worker.CollectPusher)
	return p
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

// collectSink is a Collect sink of a plan.
type collectSink struct {
	name     string
	target   collectTarget
	subtasks int
}

// collectSinks returns the plan's Collect sinks by operator id.
func (p *plan) collectSinks() map[int]collectSink {
	var sinks map[int]collectSink
	for _, n := range p.nodes {
		if n.collect == nil {
			continue
		}
		if sinks == nil {
			sinks = map[int]collectSink{}
		}
		sinks[n.id] = collectSink{name: n.name, target: n.collect, subtasks: p.par[n.id]}
	}
	return sinks
}

// checkRemoteCollect refuses a submission whose Collect sinks could not
// bring their records back: a detached one, or records without a codec.
func (p *plan) checkRemoteCollect(detached bool) error {
	for _, s := range p.collectSinks() {
		if detached {
			return fmt.Errorf("job %q: Collect (operator %q) streams the job's results back to this program, but a detached submission does not wait for them: run it attached (without --detached), or write the results to a sink such as file.Sink", p.name, s.name)
		}
		if err := s.target.check(); err != nil {
			return fmt.Errorf("job %q: Collect (operator %q) sends its records from the cluster to this program and needs a codec for them (register one with RegisterCodec): %w", p.name, s.name, err)
		}
	}
	return nil
}

// followCollect is follow for a job that may have Collect sinks: it first
// fetches their results until every Collect subtask has sent its last
// batch or the job has ended, then follows the job to its end. The job's
// final status is asked for only after the results are in, since a
// per-job cluster may end once its client has seen it.
func followCollect(ctx context.Context, c *client.Client, id string, p *plan) error {
	sinks := p.collectSinks()
	if len(sinks) == 0 {
		return follow(ctx, c, id, p.name)
	}
	if err := fetchCollect(ctx, c, id, p.name, sinks); err != nil {
		return err
	}
	return follow(ctx, c, id, p.name)
}

// fetchCollect fills the Collect sinks of job id with the records its
// subtasks send, until all of them have sent their last batch, or the job
// has ended without (follow then tells why).
func fetchCollect(ctx context.Context, c *client.Client, id, name string, sinks map[int]collectSink) error {
	remaining := 0
	for _, s := range sinks {
		remaining += s.subtasks
	}
	done := map[[2]int]bool{}
	var offset int64
	state := ""
	for remaining > 0 {
		resp, err := c.CollectResults(ctx, id, v1.CollectRequest{Offset: offset, WaitMillis: collectWait})
		if err != nil {
			return fmt.Errorf("job %q (%s): fetch the results of Collect: %w", name, id, err)
		}
		for _, b := range resp.Batches {
			s, ok := sinks[b.Sink]
			if !ok {
				return fmt.Errorf("job %q (%s): the cluster sent Collect results for operator %d, which this program's job has no Collect for", name, id, b.Sink)
			}
			if err := s.target.addBatch(b.Records); err != nil {
				return fmt.Errorf("job %q (%s): Collect (operator %q) subtask %d: decode results: %w", name, id, s.name, b.Subtask+1, err)
			}
			if key := [2]int{b.Sink, b.Subtask}; b.Last && !done[key] {
				done[key] = true
				remaining--
			}
		}
		offset = resp.Offset + int64(len(resp.Batches))
		if resp.JobState != state && !v1.TerminalJobStatus(resp.JobState) {
			fmt.Printf("Job %s (%s) is %s\n", id, name, resp.JobState)
		}
		state = resp.JobState
		if remaining > 0 && v1.TerminalJobStatus(state) && offset >= resp.Available {
			if state == v1.JobFinished {
				return fmt.Errorf("job %q (%s) finished, but %d Collect subtasks sent no end of their results: the results are incomplete", name, id, remaining)
			}
			break // failed or cancelled: follow reports it
		}
	}
	// The JobManager drops an ended job's unclaimed buffer by itself; this
	// only frees it sooner.
	if _, err := c.CollectResults(ctx, id, v1.CollectRequest{Offset: offset, Release: true}); err != nil && ctx.Err() != nil {
		return fmt.Errorf("job %q (%s): %w", name, id, ctx.Err())
	}
	return nil
}
