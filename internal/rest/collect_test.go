package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rest/resttest"
)

// collectFake is a Backend that serves collect requests from batches.
type collectFake struct {
	*resttest.Fake
	got []v1.CollectRequest
}

func (c *collectFake) CollectResults(_ context.Context, id string, req v1.CollectRequest) (v1.CollectResponse, error) {
	if id != jobA {
		return v1.CollectResponse{}, fmt.Errorf("no job %s: %w", id, rest.ErrNotFound)
	}
	c.got = append(c.got, req)
	return v1.CollectResponse{Offset: req.Offset, Batches: []v1.CollectBatch{{Sink: 4, Subtask: 1, Records: []byte{1, 42}, Last: true}},
		Available: req.Offset + 1, JobState: v1.JobRunning}, nil
}

// TestCollectRoute: POST /v1/jobs/{id}/collect reaches a CollectBackend
// with the request, answers its batches (records in base64), and refuses
// malformed requests; GET is not a route (a fetch acknowledges).
func TestCollectRoute(t *testing.T) {
	b := &collectFake{Fake: fixture(t)}
	srv := httptest.NewServer(rest.NewHandler(b, rest.Options{}))
	defer srv.Close()
	for _, tc := range []struct {
		name, method, id, body string
		wantStatus             int
		wantBody               string
	}{
		{"fetch", "POST", jobA, `{"offset":3,"waitMillis":10}`, http.StatusOK, `"records":"ASo="`},
		{"unknown job", "POST", jobNone, `{"offset":0}`, http.StatusNotFound, "unknown job"},
		{"negative offset", "POST", jobA, `{"offset":-1}`, http.StatusBadRequest, "must not be negative"},
		{"bad id", "POST", "xyz", `{}`, http.StatusBadRequest, "invalid job id"},
		{"GET", "GET", jobA, "", http.StatusMethodNotAllowed, "use POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+"/v1/jobs/"+tc.id+"/collect", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var raw json.RawMessage
			if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(raw), tc.wantBody) {
				t.Errorf("%s = %d %s, want %d with %q", tc.method, resp.StatusCode, raw, tc.wantStatus, tc.wantBody)
			}
		})
	}
	if len(b.got) != 1 || b.got[0] != (v1.CollectRequest{Offset: 3, WaitMillis: 10}) {
		t.Errorf("the backend got %+v, want the one valid request", b.got)
	}
}
