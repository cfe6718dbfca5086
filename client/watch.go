package client

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// WatchJob polls GET /v1/jobs/{id} as WaitJob does, until the job's state
// is terminal, and calls onChange (if not nil) with the previous and the
// new details whenever the state or the number of restarts changed (the
// first call has a zero prev). Restarts are seen even when a RESTARTING
// state passed between two polls.
func (c *Client) WatchJob(ctx context.Context, id string, poll time.Duration, onChange func(prev, cur v1.JobDetails)) (v1.JobDetails, error) {
	if poll <= 0 {
		poll = time.Second
	}
	var last v1.JobDetails
	start := time.Now()
	for {
		d, err := c.Job(ctx, id)
		if err != nil {
			return last, err
		}
		if (d.State != last.State || d.NumRestarts != last.NumRestarts) && onChange != nil {
			onChange(last, d)
		}
		last = d
		if v1.TerminalJobStatus(d.State) {
			return d, nil
		}
		t := time.NewTimer(min(max(time.Since(start)/10, 5*time.Millisecond), poll))
		select {
		case <-ctx.Done():
			t.Stop()
			return last, fmt.Errorf("wait for job %s (last %s): %w", id, last.State, ctx.Err())
		case <-t.C:
		}
	}
}
