package jobmanager

import (
	"context"
	"errors"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rest"
)

func batchOf(size int, subtask int) v1.CollectBatch {
	return v1.CollectBatch{Sink: 3, Subtask: subtask, Records: make([]byte, size)}
}

// TestCollectRelayBackpressure: a push waits while the job's buffer is
// full and goes through once the client acknowledges batches; a batch
// larger than the whole buffer passes alone.
func TestCollectRelayBackpressure(t *testing.T) {
	r := collectRelay{bufferBytes: 100, fetchBytes: 1000}
	ctx := context.Background()
	const id = JobID("j1")
	half := r.bufferBytes / 2
	for i := range 2 {
		if err := r.push(ctx, id, batchOf(half, i)); err != nil {
			t.Fatal(err)
		}
	}
	pushed := make(chan error, 1)
	go func() { pushed <- r.push(ctx, id, batchOf(half, 2)) }()

	// The buffer is full: the third push waits, also for a fetch that
	// acknowledges nothing.
	batches, available, _, err := r.take(id, 0)
	if err != nil || len(batches) == 0 || available != 2 {
		t.Fatalf("take(0) = %d batches, available %d, %v; want batches of 2 available", len(batches), available, err)
	}
	select {
	case err := <-pushed:
		t.Fatalf("a push into a full buffer returned %v without waiting", err)
	default:
	}
	// Acknowledging one makes room.
	if _, _, _, err := r.take(id, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-pushed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the push did not go through after the client made room")
	}
	batches, available, _, err = r.take(id, 1)
	if err != nil || available != 3 || len(batches) != 2 || batches[0].Subtask != 1 || batches[1].Subtask != 2 {
		t.Fatalf("take(1) = %d batches, available %d, %v; want subtasks 1 and 2, available 3", len(batches), available, err)
	}

	// A waiting push ends with its context.
	cctx, cancel := context.WithCancel(ctx)
	go func() { pushed <- r.push(cctx, id, batchOf(half, 4)) }()
	cancel()
	if err := <-pushed; !errors.Is(err, context.Canceled) {
		t.Errorf("push with a cancelled context = %v, want context.Canceled", err)
	}

	// A batch larger than the buffer passes when the buffer is empty.
	if _, _, _, err := r.take(id, 3); err != nil {
		t.Fatal(err)
	}
	if err := r.push(ctx, id, batchOf(r.bufferBytes+1, 5)); err != nil {
		t.Fatal(err)
	}
}

// TestCollectRelayTake: answers are cut at the fetch size (but hold at
// least one batch), and an offset outside the buffer is refused.
func TestCollectRelayTake(t *testing.T) {
	r := collectRelay{bufferBytes: 1000, fetchBytes: 100}
	ctx := context.Background()
	const id = JobID("j2")
	for i := range 3 {
		if err := r.push(ctx, id, batchOf(r.fetchBytes/2+1, i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		offset      int64
		wantBatches int
		wantErr     bool
	}{
		{offset: 0, wantBatches: 1},
		{offset: 2, wantBatches: 1},
		{offset: 3, wantBatches: 0},
		{offset: 1, wantErr: true}, // acknowledged already
		{offset: 4, wantErr: true}, // beyond the buffer
	} {
		batches, available, _, err := r.take(id, tc.offset)
		if tc.wantErr {
			if !errors.Is(err, rest.ErrInvalid) {
				t.Errorf("take(%d) = %v, want an invalid-request error", tc.offset, err)
			}
			continue
		}
		if err != nil || len(batches) != tc.wantBatches || available != 3 {
			t.Errorf("take(%d) = %d batches, available %d, %v; want %d, 3", tc.offset, len(batches), available, err, tc.wantBatches)
		}
	}
	r.release(id)
	if ids := r.ids(); len(ids) != 0 {
		t.Errorf("buffers after release: %v", ids)
	}
}
