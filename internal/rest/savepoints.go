package rest

import (
	"context"
	"net/http"
	"strings"

	v1 "github.com/spate-dev/spate/api/v1"
)

// SavepointBackend is a Backend that takes savepoints, served as Flink's:
// POST /v1/jobs/{id}/savepoints and POST /v1/jobs/{id}/stop return a
// trigger id (202 v1.TriggerResponse); GET
// /v1/jobs/{id}/savepoints/{triggerid} its status (v1.SavepointStatus).
// TriggerSavepoint takes dir "" for the job's
// execution.checkpointing.savepoint-dir; stop makes the savepoint the
// final one of a stop-with-savepoint.
type SavepointBackend interface {
	TriggerSavepoint(ctx context.Context, id, dir string, stop bool) (string, error)
	SavepointStatus(ctx context.Context, id, trigger string) (v1.SavepointStatus, error)
}

// handleSavepoints adds the savepoint routes if b serves them.
func (h *handler) handleSavepoints(b Backend) {
	sb, ok := b.(SavepointBackend)
	if !ok {
		return
	}
	h.handle("POST /v1/jobs/{id}/savepoints", func(w http.ResponseWriter, r *http.Request) error {
		id, err := jobID(r)
		if err != nil {
			return err
		}
		var req v1.SavepointTriggerRequest
		if r.ContentLength != 0 {
			if err := h.decodeJSON(w, r, &req); err != nil {
				return err
			}
		}
		if req.CancelJob {
			return errorf(http.StatusBadRequest, "cancel-job is not supported: stop the job with a savepoint through POST /v1/jobs/%s/stop", id)
		}
		if f := strings.ToUpper(req.FormatType); f != "" && f != "CANONICAL" {
			return errorf(http.StatusBadRequest, "formatType %q: the only savepoint format is CANONICAL", req.FormatType)
		}
		return h.trigger(w, r, sb, id, req.TargetDirectory, false)
	})
	h.handle("POST /v1/jobs/{id}/stop", func(w http.ResponseWriter, r *http.Request) error {
		id, err := jobID(r)
		if err != nil {
			return err
		}
		var req v1.StopWithSavepointRequest
		if r.ContentLength != 0 {
			if err := h.decodeJSON(w, r, &req); err != nil {
				return err
			}
		}
		if req.Drain {
			return errorf(http.StatusBadRequest, "drain is not supported: stop without it (the job's windows and timers are in the savepoint)")
		}
		return h.trigger(w, r, sb, id, req.TargetDirectory, true)
	})
	h.handle("GET /v1/jobs/{id}/savepoints/{triggerid}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := jobID(r)
		if err != nil {
			return err
		}
		s, err := sb.SavepointStatus(r.Context(), id, r.PathValue("triggerid"))
		if err != nil {
			return backendError(err, nil)
		}
		writeJSON(w, http.StatusOK, s)
		return nil
	})
}

func (h *handler) trigger(w http.ResponseWriter, r *http.Request, sb SavepointBackend, id, dir string, stop bool) error {
	trigger, err := sb.TriggerSavepoint(r.Context(), id, dir, stop)
	if err != nil {
		return backendError(err, nil)
	}
	writeJSON(w, http.StatusAccepted, v1.TriggerResponse{RequestID: trigger})
	return nil
}
