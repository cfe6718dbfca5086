package worker

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// CollectPusher sends the batches of a worker's Collect sink subtasks to
// the JobManager's collect relay, from which the job's client fetches
// them. It connects on first use; it is safe for concurrent use.
type CollectPusher struct {
	d    *Deployment
	once sync.Once
	conn *grpc.ClientConn
	rpc  rpcpb.CollectRelayClient
	err  error
}

// NewCollectPusher returns a pusher for d's job.
func NewCollectPusher(d *Deployment) *CollectPusher { return &CollectPusher{d: d} }

// Push sends one batch of subtask of the Collect sink with operator id
// sink; last marks the subtask's final batch. It blocks while the
// JobManager's buffer for the job is full, until ctx ends.
func (p *CollectPusher) Push(ctx context.Context, sink, subtask int, records []byte, last bool) error {
	p.once.Do(func() {
		p.conn, p.err = dialJobManager(p.d)
		if p.err == nil {
			p.rpc = rpcpb.NewCollectRelayClient(p.conn)
		}
	})
	if p.err != nil {
		return fmt.Errorf("collect: connect to JobManager %s: %w", p.d.JobManager, p.err)
	}
	_, err := p.rpc.Push(ctx, &rpcpb.CollectPushRequest{
		JobId: p.d.JobID, WorkerId: p.d.WorkerID, Sink: int32(sink), Subtask: int32(subtask), Records: records, Last: last,
	})
	if err != nil {
		return fmt.Errorf("collect: send %d bytes of results of subtask %d to JobManager %s: %w", len(records), subtask+1, p.d.JobManager, err)
	}
	return nil
}

// Close closes the connection, if one was made.
func (p *CollectPusher) Close() error {
	if p.conn != nil {
		return p.conn.Close()
	}
	return nil
}
