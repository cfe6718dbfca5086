package client

import (
	"context"

	v1 "github.com/spate-dev/spate/api/v1"
)

// CollectResults is POST /v1/jobs/{id}/collect: it acknowledges the
// batches of the job's Collect sinks before req.Offset and returns those
// that follow (see v1.CollectRequest).
func (c *Client) CollectResults(ctx context.Context, id string, req v1.CollectRequest) (v1.CollectResponse, error) {
	var o v1.CollectResponse
	p, err := jobPath(id)
	if err != nil {
		return o, err
	}
	err = c.call(ctx, request{method: "POST", path: p + "/collect", in: req}, &o)
	return o, err
}
