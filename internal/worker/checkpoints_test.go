package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
	"github.com/spate-dev/spate/internal/snapshot"
)

// committer records the checkpoints it commits.
type committer struct{ commits, aborts []int64 }

func (c *committer) SnapshotState(int64) (func() ([]snapshot.Entry, error), error) {
	return func() ([]snapshot.Entry, error) { return nil, nil }, nil
}
func (c *committer) RestoreState([]snapshot.Entry) error { return nil }
func (c *committer) CommitCheckpoint(id int64) error     { c.commits = append(c.commits, id); return nil }
func (c *committer) AbortCheckpoint(id int64)            { c.aborts = append(c.aborts, id) }

// TestOrdersOfAnotherAttemptIgnored: a worker commits and aborts only on
// the orders of its own attempt, so that a completion meant for another
// attempt never commits its sinks.
func TestOrdersOfAnotherAttemptIgnored(t *testing.T) {
	r := snapshot.NewRunner(context.Background(), snapshot.InlineStore{}, nil, nil)
	sink := &committer{}
	r.Task(0, 0, 0, 1).Add(1, sink)
	c := &checkpointing{d: &Deployment{JobID: "j", WorkerID: "w", Attempt: 3}, ck: &Checkpoints{Runner: r}, log: slog.Default(), fail: func(error) {}}
	complete := func(attempt, id int64) *rpcpb.CheckpointOrder {
		return &rpcpb.CheckpointOrder{Kind: &rpcpb.CheckpointOrder_Complete{Complete: &rpcpb.NotifyCheckpointComplete{Attempt: attempt, CheckpointId: id}}}
	}
	abort := func(attempt, id int64) *rpcpb.CheckpointOrder {
		return &rpcpb.CheckpointOrder{Kind: &rpcpb.CheckpointOrder_Aborted{Aborted: &rpcpb.NotifyCheckpointAborted{Attempt: attempt, CheckpointId: id}}}
	}
	for _, o := range []*rpcpb.CheckpointOrder{complete(2, 5), complete(3, 6), complete(4, 7), abort(2, 8), abort(3, 9)} {
		c.order(o)
	}
	if len(sink.commits) != 1 || sink.commits[0] != 6 || len(sink.aborts) != 1 || sink.aborts[0] != 9 {
		t.Fatalf("commits %v, aborts %v; want only attempt 3's: [6], [9]", sink.commits, sink.aborts)
	}
}

func TestDeclineReason(t *testing.T) {
	if got := declineReason(fmt.Errorf("subtask 1: %w", snapshot.ErrSubsumed)); got != rpcpb.DeclineReason_DECLINE_SUBSUMED {
		t.Errorf("an overtaken checkpoint declines as %v, want DECLINE_SUBSUMED (not a failure)", got)
	}
	if got := declineReason(errors.New("no codec")); got != rpcpb.DeclineReason_DECLINE_SNAPSHOT_FAILED {
		t.Errorf("a failed snapshot declines as %v", got)
	}
}
