package rest

import (
	"context"
	"net/http"

	v1 "github.com/spate-dev/spate/api/v1"
)

// CheckpointBackend is a Backend that serves jobs' checkpoint statistics
// (GET /v1/jobs/{id}/checkpoints) and configuration
// (GET /v1/jobs/{id}/checkpoints/config; ErrNotFound when the job takes no
// checkpoints, as Flink answers).
type CheckpointBackend interface {
	JobCheckpoints(ctx context.Context, id string) (v1.CheckpointingStatistics, error)
	JobCheckpointConfig(ctx context.Context, id string) (v1.CheckpointConfig, error)
}

// handleCheckpoints adds the checkpoint routes if b serves them.
func (h *handler) handleCheckpoints(b Backend) {
	cb, ok := b.(CheckpointBackend)
	if !ok {
		return
	}
	h.handle("GET /v1/jobs/{id}/checkpoints", func(w http.ResponseWriter, r *http.Request) error {
		id, err := jobID(r)
		if err != nil {
			return err
		}
		s, err := cb.JobCheckpoints(r.Context(), id)
		if err != nil {
			return jobError(err, id)
		}
		writeJSON(w, http.StatusOK, s)
		return nil
	})
	h.handle("GET /v1/jobs/{id}/checkpoints/config", func(w http.ResponseWriter, r *http.Request) error {
		id, err := jobID(r)
		if err != nil {
			return err
		}
		c, err := cb.JobCheckpointConfig(r.Context(), id)
		if err != nil {
			// The backend's message tells an unknown job from one that
			// takes no checkpoints (both 404).
			return backendError(err, nil)
		}
		writeJSON(w, http.StatusOK, c)
		return nil
	})
}
