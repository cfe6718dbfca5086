package rest

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	pathpkg "path"
	"strings"

	"github.com/spate-dev/spate/internal/dashboard"
)

// Authentication. With Options.Token set, every request but GET (and
// HEAD) of /v1/health and of the dashboard's static files (its page at /
// and its scripts under /web/, which hold no data) must carry the header
// "Authorization: Bearer <token>"; any other is answered 401 with a JSON
// error before routing, so that an unauthenticated client learns nothing
// of the routes either. The dashboard's list of routes, /web/routes.json,
// is not exempt: the page asks for the token when it answers 401. A missing
// header and a wrong token get the same answer, and the check takes the
// same time whatever the token sent (both sides are hashed, then compared
// in constant time).

// HealthPath is the route that answers without authentication.
const HealthPath = "/v1/health"

// unauthorizedMessage is the one answer to a request without the token.
const unauthorizedMessage = "authentication required: send the cluster's token in the header Authorization: Bearer <token> (the JobManager's rest.authentication.token-file; the CLI reads it from its configuration or the session's record)"

// authorized tells whether r may be served.
func (h *handler) authorized(r *http.Request) bool {
	if h.tokenSum == nil {
		return true
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && public(r.URL.Path) {
		return true
	}
	got := ""
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		got = strings.TrimSpace(a[7:])
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], h.tokenSum) == 1
}

// public tells whether a GET of path is served without the token: the
// health check and the dashboard's files, so that a browser can load the
// page that then asks for the token.
func public(path string) bool {
	switch {
	case path == HealthPath, path == "/":
		return true
	case path == dashboard.RoutesPath:
		return false
	default:
		// Only a clean path: the mux would redirect "/web/../x" to "/x".
		return strings.HasPrefix(path, "/web/") && pathpkg.Clean(path) == path
	}
}

// unauthorized answers a request without the token.
func (h *handler) unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="spate"`)
	h.writeError(w, r, errorf(http.StatusUnauthorized, unauthorizedMessage))
}

// health answers GET /v1/health: the JobManager serves.
func (h *handler) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
	}{"ok"})
	return nil
}

// ReadToken reads a bearer token from path: its content, trimmed of
// surrounding white space. The file must be private to its owner (mode
// 0600 or stricter) and the token at least 16 characters.
func ReadToken(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("rest.authentication.token-file: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("rest.authentication.token-file %s has mode %04o: a token file must be private to its owner (chmod 600 %s)", path, m, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rest.authentication.token-file: %w", err)
	}
	tok := []byte(strings.TrimSpace(string(b)))
	if len(tok) < 16 {
		return nil, fmt.Errorf("rest.authentication.token-file %s holds %d characters: a token has at least 16 (make one with: head -c 32 /dev/urandom | xxd -p -c 64 > %s)", path, len(tok), path)
	}
	return tok, nil
}

// ErrNoAuthentication is returned by CheckExposure for a REST address
// that is not loopback and has no authentication.
var ErrNoAuthentication = errors.New("the REST API would be open to anyone who reaches it")

// CheckExposure refuses to serve the REST API on a non-loopback address
// without authentication, a token or mutual TLS (a client certificate
// required), unless unauthenticated says it is meant.
func CheckExposure(addr string, token []byte, mutualTLS, unauthenticated bool) error {
	if token != nil || mutualTLS || unauthenticated {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("REST address %s is not loopback and no rest.authentication.token-file is set: %w; set the token file, or security.ssl.rest.enabled and security.ssl.rest.authentication-enabled (client certificates), bind rest.address to 127.0.0.1, or set rest.authentication.enabled: false", addr, ErrNoAuthentication)
}
