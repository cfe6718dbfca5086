package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// TriggerSavepoint is POST /v1/jobs/{id}/savepoints: it starts a
// savepoint of the job in dir (the job's
// execution.checkpointing.savepoint-dir if empty) and returns its trigger
// id; WaitSavepoint follows it.
func (c *Client) TriggerSavepoint(ctx context.Context, id, dir string) (string, error) {
	p, err := jobPath(id)
	if err != nil {
		return "", err
	}
	var o v1.TriggerResponse
	err = c.call(ctx, request{method: "POST", path: p + "/savepoints", in: v1.SavepointTriggerRequest{TargetDirectory: dir}}, &o)
	return o.RequestID, err
}

// StopWithSavepoint is POST /v1/jobs/{id}/stop: a final savepoint in dir,
// the sinks commit, then the job is FINISHED. It returns the savepoint's
// trigger id.
func (c *Client) StopWithSavepoint(ctx context.Context, id, dir string) (string, error) {
	p, err := jobPath(id)
	if err != nil {
		return "", err
	}
	var o v1.TriggerResponse
	err = c.call(ctx, request{method: "POST", path: p + "/stop", in: v1.StopWithSavepointRequest{TargetDirectory: dir}}, &o)
	return o.RequestID, err
}

// SavepointStatus is GET /v1/jobs/{id}/savepoints/{triggerid}.
func (c *Client) SavepointStatus(ctx context.Context, id, trigger string) (v1.SavepointStatus, error) {
	var o v1.SavepointStatus
	p, err := jobPath(id)
	if err != nil {
		return o, err
	}
	err = c.call(ctx, request{method: "GET", path: p + "/savepoints/" + url.PathEscape(trigger)}, &o)
	return o, err
}

// WaitSavepoint polls a savepoint's status every poll until it completed
// and returns its location, or the cause of its failure as an error.
func (c *Client) WaitSavepoint(ctx context.Context, id, trigger string, poll time.Duration) (string, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		s, err := c.SavepointStatus(ctx, id, trigger)
		if err != nil {
			return "", err
		}
		if s.Status.ID == v1.OperationCompleted {
			if s.Operation == nil {
				return "", errors.New("the savepoint completed without a location")
			}
			if f := s.Operation.FailureCause; f != nil {
				return "", fmt.Errorf("savepoint of job %s failed: %s", id, f.StackTrace)
			}
			return s.Operation.Location, nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return "", fmt.Errorf("savepoint %s of job %s still in progress: %w", trigger, id, ctx.Err())
		}
	}
}
