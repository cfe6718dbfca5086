package rest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rest"
)

const testToken = "0123456789abcdef-the-cluster-token"

// authRoutes are a request to every route of the API (and to none).
var authRoutes = []struct{ method, path string }{
	{"GET", "/v1/overview"}, {"GET", "/v1/config"}, {"GET", "/v1/jobs"}, {"POST", "/v1/jobs"},
	{"GET", "/v1/jobs/overview"}, {"GET", "/v1/jobs/" + jobA}, {"PATCH", "/v1/jobs/" + jobA + "?mode=cancel"},
	{"GET", "/v1/jobs/" + jobA + "/exceptions"}, {"POST", "/v1/jobs/" + jobA + "/collect"},
	{"POST", "/v1/jobs/" + jobA + "/acknowledge-result"}, {"GET", "/v1/taskmanagers"},
	{"GET", "/v1/taskmanagers/tm-1/stdout"}, {"GET", "/v1/application"},
	{"POST", "/v1/artifacts"}, {"GET", "/v1/artifacts/" + programID}, {"HEAD", "/v1/overview"},
	{"GET", "/v1/no-such-route"}, {"DELETE", "/v1/jobs"}, {"OPTIONS", "*"},
}

// TestAuthentication: with a token, every route but the health check
// answers 401 to a request without it, with the same JSON body for a
// missing and a wrong token; with it, the route is served.
func TestAuthentication(t *testing.T) {
	h := rest.NewHandler(fixture(t), rest.Options{Logger: quietLogger(), Token: []byte(testToken)})
	var first string
	for _, rt := range authRoutes {
		for _, auth := range []string{"", "Bearer wrong-token-of-the-same-size!!", "Bearer", "Basic " + testToken, testToken} {
			r := httptest.NewRequest(rt.method, rt.path, strings.NewReader("{}"))
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: %d, want 401", rt.method, rt.path, auth, w.Code)
				continue
			}
			if w.Header().Get("WWW-Authenticate") == "" || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: headers %v", rt.method, rt.path, w.Header())
			}
			if rt.method == "HEAD" {
				continue
			}
			var e v1.ErrorResponse
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || len(e.Errors) != 1 {
				t.Errorf("%s %s: body %q is not a JSON error", rt.method, rt.path, w.Body)
			}
			if first == "" {
				first = w.Body.String()
			} else if w.Body.String() != first {
				t.Errorf("%s %s with Authorization %q: body %q differs from %q: a bad token and none must look alike", rt.method, rt.path, auth, w.Body, first)
			}
		}
		r := httptest.NewRequest(rt.method, rt.path, strings.NewReader("{}"))
		r.Header.Set("Authorization", "bearer "+testToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusUnauthorized {
			t.Errorf("%s %s with the token: 401: %s", rt.method, rt.path, w.Body)
		}
	}
	for _, m := range []string{"GET", "HEAD"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(m, rest.HealthPath, nil))
		if w.Code != 200 || (m == "GET" && !bytes.Contains(w.Body.Bytes(), []byte(`"ok"`))) {
			t.Errorf("%s %s without a token: %d %s, want 200", m, rest.HealthPath, w.Code, w.Body)
		}
	}
	// The dashboard's page and scripts load without it (they hold no
	// data; the page then asks for the token), its list of routes does not.
	for _, rt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 200}, {"HEAD", "/", 200}, {"GET", "/web/app.js", 200}, {"GET", "/web/api.js", 200},
		{"GET", "/web/no-such-file.js", 404}, {"GET", "/web/routes.json", 401}, {"POST", "/", 401},
		{"GET", "/web/../v1/overview", 401}, {"GET", "/index.html", 401},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(rt.method, rt.path, nil))
		if w.Code != rt.want {
			t.Errorf("%s %s without a token: %d %s, want %d", rt.method, rt.path, w.Code, w.Body, rt.want)
		}
	}
	// Without a token configured, everything is served as before.
	open := rest.NewHandler(fixture(t), rest.Options{Logger: quietLogger()})
	w := httptest.NewRecorder()
	open.ServeHTTP(w, httptest.NewRequest("GET", "/v1/overview", nil))
	if w.Code != 200 {
		t.Errorf("no token configured: %d", w.Code)
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	if tok, err := rest.ReadToken(write("ok", " "+testToken+"\n", 0o600)); err != nil || string(tok) != testToken {
		t.Errorf("ReadToken = %q, %v", tok, err)
	}
	if _, err := rest.ReadToken(write("open", testToken, 0o644)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable token file: %v, want a refusal naming chmod 600", err)
	}
	if _, err := rest.ReadToken(write("short", "abc", 0o600)); err == nil {
		t.Error("a 3-character token was accepted")
	}
}

func TestCheckExposure(t *testing.T) {
	for _, c := range []struct {
		name      string
		addr      string
		token     []byte
		mutualTLS bool
		unauth    bool
		wantErr   bool
	}{
		{"ipv4 loopback", "127.0.0.1:8081", nil, false, false, false},
		{"ipv6 loopback", "[::1]:8081", nil, false, false, false},
		{"localhost", "localhost:8081", nil, false, false, false},
		{"any address", "0.0.0.0:8081", nil, false, false, true},
		{"network address", "10.1.2.3:8081", nil, false, false, true},
		{"network address with token", "10.1.2.3:8081", []byte(testToken), false, false, false},
		{"network address with mutual TLS", "10.1.2.3:8081", nil, true, false, false},
		{"network address unauthenticated on purpose", "10.1.2.3:8081", nil, false, true, false},
	} {
		err := rest.CheckExposure(c.addr, c.token, c.mutualTLS, c.unauth)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: CheckExposure(%s, token %v, mutual TLS %v, unauthenticated %v) = %v", c.name, c.addr, c.token != nil, c.mutualTLS, c.unauth, err)
		}
	}
}
