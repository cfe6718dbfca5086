package jobmanager

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// The collect relay carries the records of a job's Collect sinks to the
// job's client, as Flink's collect sink does for executeAndCollect:
//
//	worker sink subtask ──Push (gRPC)──▶ job's buffer ◀──POST /v1/jobs/{id}/collect── client
//
// A job's buffer holds at most collectBufferBytes of batches the client has
// not acknowledged; a Push waits while it is full, so a client that reads
// slowly backpressures the job instead of growing the JobManager's memory.
// A client acknowledges the batches before the offset it asks for. A
// subtask's last batch is marked: the client knows it has everything once
// every Collect subtask's last batch has arrived. The buffer of a job is
// dropped when its client releases it, or once the job has ended and no
// client has asked for collectIdle.

const (
	// collectBufferBytes bounds the unacknowledged batches of one job.
	collectBufferBytes = 16 << 20
	// collectFetchBytes bounds the batches of one answer.
	collectFetchBytes = 4 << 20
	// collectMaxWait bounds how long a fetch waits for a batch.
	collectMaxWait = 5 * time.Second
	// collectStateCheck is how often a waiting fetch looks whether the job
	// has ended.
	collectStateCheck = 50 * time.Millisecond
	// collectIdle is how long an ended job's buffer is kept without a
	// client asking for it.
	collectIdle = time.Minute
)

var (
	_ rest.CollectBackend      = (*JobManager)(nil)
	_ rpcpb.CollectRelayServer = collectServer{}
)

// collectRelay holds the Collect buffers of the jobs that have one. Its
// zero value uses collectBufferBytes and collectFetchBytes.
type collectRelay struct {
	// bufferBytes and fetchBytes, if set, replace collectBufferBytes and
	// collectFetchBytes (for tests).
	bufferBytes, fetchBytes int
	mu                      struct {
		sync.Mutex
		jobs map[JobID]*collectBuffer
	}
}

// collectBuffer is one job's batches not yet acknowledged by its client.
type collectBuffer struct {
	batches []v1.CollectBatch
	base    int64 // offset of batches[0]
	bytes   int64
	// changed is closed, and replaced, whenever batches are added or
	// acknowledged.
	changed  chan struct{}
	lastSeen time.Time // of the client
}

func (r *collectRelay) bufferLocked(id JobID) *collectBuffer {
	if r.mu.jobs == nil {
		r.mu.jobs = map[JobID]*collectBuffer{}
	}
	b, ok := r.mu.jobs[id]
	if !ok {
		b = &collectBuffer{changed: make(chan struct{}), lastSeen: time.Now()}
		r.mu.jobs[id] = b
	}
	return b
}

func (b *collectBuffer) signalLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// push adds batch to job id's buffer, waiting while the buffer is full
// (a batch larger than the whole buffer passes alone).
func (r *collectRelay) push(ctx context.Context, id JobID, batch v1.CollectBatch) error {
	for {
		r.mu.Lock()
		b := r.bufferLocked(id)
		if len(b.batches) == 0 || b.bytes+int64(len(batch.Records)) <= int64(cmp.Or(r.bufferBytes, collectBufferBytes)) {
			b.batches = append(b.batches, batch)
			b.bytes += int64(len(batch.Records))
			b.signalLocked()
			r.mu.Unlock()
			return nil
		}
		changed := b.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// take acknowledges the batches of job id before offset and returns those
// from offset on, up to collectFetchBytes, with the offset after the last
// buffered one and a channel closed when the buffer changes.
func (r *collectRelay) take(id JobID, offset int64) (batches []v1.CollectBatch, available int64, changed <-chan struct{}, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bufferLocked(id)
	b.lastSeen = time.Now()
	end := b.base + int64(len(b.batches))
	if offset < b.base || offset > end {
		return nil, 0, nil, fmt.Errorf("job %s: collect offset %d is outside the buffered batches %d to %d (was the offset of the last answer kept?): %w", id, offset, b.base, end, rest.ErrInvalid)
	}
	if n := offset - b.base; n > 0 {
		for _, bt := range b.batches[:n] {
			b.bytes -= int64(len(bt.Records))
		}
		clear(b.batches[:n])
		b.batches = b.batches[n:]
		b.base = offset
		b.signalLocked()
	}
	size, limit := 0, cmp.Or(r.fetchBytes, collectFetchBytes)
	for _, bt := range b.batches {
		if len(batches) > 0 && size+len(bt.Records) > limit {
			break
		}
		size += len(bt.Records)
		batches = append(batches, bt)
	}
	return batches, end, b.changed, nil
}

// release drops job id's buffer.
func (r *collectRelay) release(id JobID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b, ok := r.mu.jobs[id]; ok {
		delete(r.mu.jobs, id)
		b.signalLocked() // a waiting Push sees the buffer gone
	}
}

// ids returns the jobs with a buffer.
func (r *collectRelay) ids() []JobID {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]JobID, 0, len(r.mu.jobs))
	for id := range r.mu.jobs {
		ids = append(ids, id)
	}
	return ids
}

// dropIdle drops the buffers of ended jobs that no client asked for
// within collectIdle.
func (r *collectRelay) dropIdle(ended []JobID, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ended {
		if b, ok := r.mu.jobs[id]; ok && now.Sub(b.lastSeen) > collectIdle {
			delete(r.mu.jobs, id)
			b.signalLocked()
		}
	}
}

// sweepCollect drops idle buffers of ended or forgotten jobs. Its cost is
// the number of buffers, not of jobs ever run.
func (jm *JobManager) sweepCollect() {
	ids := jm.collect.ids()
	if len(ids) == 0 {
		return
	}
	var ended []JobID
	jm.mu.Lock()
	for _, id := range ids {
		if j, ok := jm.mu.jobs[id]; !ok || v1.TerminalJobStatus(j.status) {
			ended = append(ended, id)
		}
	}
	jm.mu.Unlock()
	jm.collect.dropIdle(ended, time.Now())
}

// jobState returns the status of job id.
func (jm *JobManager) jobState(id JobID) (string, error) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, err := jm.jobLocked(string(id))
	if err != nil {
		return "", err
	}
	return j.status, nil
}

// CollectResults serves POST /v1/jobs/{id}/collect: it acknowledges the
// batches before req.Offset and returns those that follow, waiting up to
// req.WaitMillis for one if there is none and the job runs.
func (jm *JobManager) CollectResults(ctx context.Context, id string, req v1.CollectRequest) (v1.CollectResponse, error) {
	jm.sweepCollect()
	jid := JobID(id)
	state, err := jm.jobState(jid)
	if err != nil {
		return v1.CollectResponse{}, err
	}
	if req.Release {
		jm.collect.release(jid)
		return v1.CollectResponse{Offset: req.Offset, Batches: []v1.CollectBatch{}, Available: req.Offset, JobState: state}, nil
	}
	wait := min(time.Duration(req.WaitMillis)*time.Millisecond, collectMaxWait)
	deadline := time.Now().Add(wait)
	for {
		// The state is read before the batches: a job's sinks push all
		// their batches before their subtasks finish, so the batches of a
		// job seen ended are all there.
		batches, available, changed, err := jm.collect.take(jid, req.Offset)
		if err != nil {
			return v1.CollectResponse{}, err
		}
		left := time.Until(deadline)
		if len(batches) > 0 || v1.TerminalJobStatus(state) || left <= 0 {
			if batches == nil {
				batches = []v1.CollectBatch{}
			}
			return v1.CollectResponse{Offset: req.Offset, Batches: batches, Available: available, JobState: state}, nil
		}
		t := time.NewTimer(min(left, collectStateCheck))
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return v1.CollectResponse{}, ctx.Err()
		}
		t.Stop()
		if state, err = jm.jobState(jid); err != nil {
			return v1.CollectResponse{}, err
		}
	}
}

// collectServer serves the CollectRelay RPCs of jm's workers.
type collectServer struct {
	jm *JobManager
	rpcpb.UnimplementedCollectRelayServer
}

// Push buffers a batch of a Collect sink subtask of a running job.
func (s collectServer) Push(ctx context.Context, req *rpcpb.CollectPushRequest) (*rpcpb.CollectPushResponse, error) {
	jm := s.jm
	jm.mu.Lock()
	j, _, err := jm.workerLocked(req.JobId, req.WorkerId)
	if err == nil && v1.TerminalJobStatus(j.status) {
		err = status.Errorf(codes.FailedPrecondition, "job %s is %s: it takes no more Collect results", j.id, j.status)
	}
	jm.mu.Unlock()
	if err != nil {
		return nil, err
	}
	jm.sweepCollect()
	batch := v1.CollectBatch{Sink: int(req.Sink), Subtask: int(req.Subtask), Records: req.Records, Last: req.Last}
	if err := jm.collect.push(ctx, JobID(req.JobId), batch); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	return &rpcpb.CollectPushResponse{}, nil
}
