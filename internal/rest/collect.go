package rest

import (
	"context"
	"net/http"

	v1 "github.com/spate-dev/spate/api/v1"
)

// CollectBackend is a Backend that relays the records of jobs' Collect
// sinks to their clients; it serves POST /v1/jobs/{id}/collect (see
// v1.CollectRequest). CollectResults acknowledges the batches before
// req.Offset and returns those after it, waiting up to req.WaitMillis for
// one while the job runs.
type CollectBackend interface {
	CollectResults(ctx context.Context, id string, req v1.CollectRequest) (v1.CollectResponse, error)
}

// handleCollect adds the collect route if b serves it.
func (h *handler) handleCollect(b Backend) {
	cb, ok := b.(CollectBackend)
	if !ok {
		return
	}
	h.handle("POST /v1/jobs/{id}/collect", func(w http.ResponseWriter, r *http.Request) error {
		id, err := jobID(r)
		if err != nil {
			return err
		}
		var req v1.CollectRequest
		if err := h.decodeJSON(w, r, &req); err != nil {
			return err
		}
		if req.Offset < 0 || req.WaitMillis < 0 {
			return errorf(http.StatusBadRequest, "collect request %+v: offset and waitMillis must not be negative", req)
		}
		resp, err := cb.CollectResults(r.Context(), id, req)
		if err != nil {
			return jobError(err, id)
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	})
}
