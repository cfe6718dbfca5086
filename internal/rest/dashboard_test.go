package rest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/rest"
)

// TestDashboardMounted checks that the REST handler serves the web
// dashboard at its root, lists its own routes for it, and that the API's
// error answers are unchanged by the dashboard's routes.
func TestDashboardMounted(t *testing.T) {
	srv := httptest.NewServer(rest.NewHandler(fixture(t), rest.Options{}))
	defer srv.Close()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("GET", "/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `src="/web/app.js"`) {
		t.Fatalf("GET /: %s %q\n%.200s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q", csp)
	}
	resp, body = get("GET", "/web/app.js")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(body, "import") {
		t.Errorf("GET /web/app.js: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	resp, body = get("GET", "/web/routes.json")
	var routes struct {
		Routes []string `json:"routes"`
	}
	if err := json.Unmarshal([]byte(body), &routes); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /web/routes.json: %s %v %q", resp.Status, err, body)
	}
	for _, want := range []string{"GET /v1/overview", "GET /v1/jobs/{id}", "GET /v1/jobs/{id}/exceptions", "GET /v1/taskmanagers"} {
		if !slices.Contains(routes.Routes, want) {
			t.Errorf("routes.json lacks %q: %q", want, routes.Routes)
		}
	}
	// What is not the dashboard's is still answered by the API, in JSON.
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/no-such-route", 404},
		{"GET", "/no-such-page", 404},
		{"POST", "/", 405},
		{"GET", "/v1/jobs/" + jobNone, 404},
	} {
		resp, body := get(tc.method, tc.path)
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(body, `"errors"`) {
			t.Errorf("%s %s: %s %q %q, want %d with a JSON error", tc.method, tc.path, resp.Status, resp.Header.Get("Content-Type"), body, tc.status)
		}
	}
}
