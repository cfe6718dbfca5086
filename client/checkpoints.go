package client

import (
	"context"

	v1 "github.com/spate-dev/spate/api/v1"
)

// JobCheckpoints is GET /v1/jobs/{id}/checkpoints: the job's checkpoint
// statistics and its restarts.
func (c *Client) JobCheckpoints(ctx context.Context, id string) (v1.CheckpointingStatistics, error) {
	var o v1.CheckpointingStatistics
	p, err := jobPath(id)
	if err != nil {
		return o, err
	}
	err = c.call(ctx, request{method: "GET", path: p + "/checkpoints"}, &o)
	return o, err
}

// JobCheckpointConfig is GET /v1/jobs/{id}/checkpoints/config: how the job
// takes checkpoints (an error with status 404 when it takes none).
func (c *Client) JobCheckpointConfig(ctx context.Context, id string) (v1.CheckpointConfig, error) {
	var o v1.CheckpointConfig
	p, err := jobPath(id)
	if err != nil {
		return o, err
	}
	err = c.call(ctx, request{method: "GET", path: p + "/checkpoints/config"}, &o)
	return o, err
}
