package role

import (
	"context"
	"fmt"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
)

// Collect on a cluster works as Flink's executeAndCollect: the Collect
// sink's subtasks, in the job's workers, send their records in batches
// (in the record type's codec) to the JobManager, which buffers a bounded
// amount per job; the client that submitted the job fetches them over
// REST while the job runs (POST /v1/jobs/{id}/collect) and fills the
// Collected, and Execute returns once every Collect subtask's last batch
// is in and the job has ended. A detached submission cannot collect: its
// client does not stay, so submitting one is refused.

// collectWait is how long one fetch of Collect results waits at the
// JobManager for a batch.
const collectWait = 2000 // ms

// checkRemoteCollect refuses a submission whose Collect sinks could not
// bring their records back: a detached one, or records without a codec.
func checkRemoteCollect(p *Job, detached bool) error {
	for _, s := range p.Collects {
		if detached {
			return fmt.Errorf("job %q: Collect (operator %q) streams the job's results back to this program, but a detached submission does not wait for them: run it attached (without --detached), or write the results to a sink such as file.Sink", p.Name, s.Name)
		}
		if err := s.Target.Check(); err != nil {
			return fmt.Errorf("job %q: Collect (operator %q) sends its records from the cluster to this program and needs a codec for them (register one with RegisterCodec): %w", p.Name, s.Name, err)
		}
	}
	return nil
}

// Follow is follow for a job that may have Collect sinks: it first
// fetches their results until every Collect subtask has sent its last
// batch or the job has ended, then follows the job to its end. The job's
// final status is asked for only after the results are in, since a
// per-job cluster may end once its client has seen it.
func Follow(ctx context.Context, c *client.Client, id string, p *Job) error {
	sinks := p.Collects
	if len(sinks) == 0 {
		return follow(ctx, c, id, p.Name)
	}
	if err := fetchCollect(ctx, c, id, p.Name, sinks); err != nil {
		return err
	}
	return follow(ctx, c, id, p.Name)
}

// fetchCollect fills the Collect sinks of job id with the records its
// subtasks send, until all of them have sent their last batch, or the job
// has ended without (follow then tells why).
func fetchCollect(ctx context.Context, c *client.Client, id, name string, sinks map[int]CollectSink) error {
	remaining := 0
	for _, s := range sinks {
		remaining += s.Subtasks
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
			if err := s.Target.AddBatch(b.Records); err != nil {
				return fmt.Errorf("job %q (%s): Collect (operator %q) subtask %d: decode results: %w", name, id, s.Name, b.Subtask+1, err)
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
