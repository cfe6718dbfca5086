package rest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// Backend is what the REST API serves; the JobManager implements it.
type Backend interface {
	Overview(ctx context.Context) (v1.Overview, error)
	Config(ctx context.Context) (v1.Config, error)
	JobsOverview(ctx context.Context) (v1.JobsOverview, error)
	Job(ctx context.Context, id string) (v1.JobDetails, error)
	CancelJob(ctx context.Context, id string) error
	JobExceptions(ctx context.Context, id string) (v1.JobExceptions, error)
	TaskManagers(ctx context.Context) (v1.TaskManagers, error)
	// PutArtifact stores a program binary read from r and returns its SHA-256 id.
	PutArtifact(ctx context.Context, r io.Reader) (v1.ArtifactUploadResponse, error)
	// OpenArtifact opens a stored binary for reading (TaskManagers fetch it).
	OpenArtifact(ctx context.Context, id string) (io.ReadCloser, int64, error)
	SubmitJob(ctx context.Context, req v1.JobSubmitRequest) (v1.JobSubmitResponse, error)
}

// Error classes a Backend wraps its errors with
// (fmt.Errorf("job %s: %w", id, rest.ErrNotFound)); they choose the HTTP
// status of the answer. A Backend error wrapping none of them is a 500.
var (
	ErrNotFound    = errors.New("not found")       // -> 404
	ErrInvalid     = errors.New("invalid request") // -> 400
	ErrConflict    = errors.New("conflict")        // -> 409
	ErrTooLarge    = errors.New("too large")       // -> 413
	ErrUnavailable = errors.New("unavailable")     // -> 503
)

// Default limits of Options.
const (
	DefaultMaxBodyBytes     = 1 << 20   // 1 MiB
	DefaultMaxArtifactBytes = 512 << 20 // 512 MiB
)

// Options configure NewHandler. The zero value is usable.
type Options struct {
	// MaxBodyBytes caps JSON request bodies (POST /v1/jobs); 0 means
	// DefaultMaxBodyBytes. A larger body is answered 413.
	MaxBodyBytes int64
	// MaxArtifactBytes caps an uploaded binary (POST /v1/artifacts); 0 means
	// DefaultMaxArtifactBytes. A larger binary is answered 413.
	MaxArtifactBytes int64
	// Logger receives a line per handler panic and 5xx answer (Error) and
	// per request (Debug); nil means slog.Default().
	Logger *slog.Logger
	// BodyTimeout, UploadWindow, UploadMinBytes, UploadTimeout and
	// WriteTimeout are the request deadlines (see deadline.go); 0 means
	// their Default.
	BodyTimeout    time.Duration
	UploadWindow   time.Duration
	UploadMinBytes int64
	UploadTimeout  time.Duration
	WriteTimeout   time.Duration
	// Token, if set, is the bearer token every request but GET
	// /v1/health must carry (auth.go).
	Token []byte
	// MaxUploadsPerClient bounds the uploads one client address has in
	// flight; 0 means DefaultMaxUploadsPerClient (limits.go).
	MaxUploadsPerClient int
}

const (
	// multipartSlack is what a multipart body may hold beyond the binary:
	// boundaries, part headers, other small fields.
	multipartSlack = 1 << 20
)

// StdoutBackend is a Backend that can also return a TaskManager's recent
// output (its workers' standard output and error), served as
// GET /v1/taskmanagers/{id}/stdout like Flink's.
type StdoutBackend interface {
	TaskManagerStdout(ctx context.Context, id string) (string, error)
}

// ResultBackend is a Backend that can be told a client has the result of
// an ended job (it read the final status or the exceptions); it serves
// POST /v1/jobs/{id}/acknowledge-result. A per-job cluster waits for it
// before it goes. GET requests never have such effects.
type ResultBackend interface {
	AcknowledgeResult(ctx context.Context, id string) error
}

// ApplicationBackend is a Backend of a cluster that runs an application's
// main; it serves GET /v1/application.
type ApplicationBackend interface {
	Application(ctx context.Context) (v1.Application, error)
}

// handler serves the API; see the package documentation for its routes.
type handler struct {
	b           Backend
	maxBody     int64
	maxArtifact int64
	log         *slog.Logger
	dl          deadlines
	tokenSum    []byte // SHA-256 of Options.Token; nil serves everyone
	uploads     uploadLimiter
	mux         *http.ServeMux
	routes      []string // patterns, for the 404 message
}

// apiFunc serves one route; the error it returns is answered by writeError.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// NewHandler returns the REST API's handler serving b.
func NewHandler(b Backend, opts Options) http.Handler {
	if b == nil {
		panic("rest: NewHandler: nil Backend")
	}
	h := &handler{
		b:           b,
		maxBody:     opts.MaxBodyBytes,
		maxArtifact: opts.MaxArtifactBytes,
		log:         opts.Logger,
		dl:          deadlinesOf(opts),
		mux:         http.NewServeMux(),
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.maxArtifact <= 0 {
		h.maxArtifact = DefaultMaxArtifactBytes
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if opts.Token != nil {
		sum := sha256.Sum256(opts.Token)
		h.tokenSum = sum[:]
	}
	h.uploads.max = opts.MaxUploadsPerClient
	if h.uploads.max <= 0 {
		h.uploads.max = DefaultMaxUploadsPerClient
	}
	h.handle("GET "+HealthPath, h.health)
	h.handle("GET /v1/overview", h.overview)
	h.handle("GET /v1/config", h.config)
	h.handle("GET /v1/jobs", h.jobs)
	h.handle("POST /v1/jobs", h.submitJob)
	h.handle("GET /v1/jobs/overview", h.jobsOverview)
	h.handle("GET /v1/jobs/{id}", h.job)
	h.handle("PATCH /v1/jobs/{id}", h.patchJob)
	h.handle("GET /v1/jobs/{id}/exceptions", h.jobExceptions)
	h.handle("GET /v1/taskmanagers", h.taskManagers)
	if rb, ok := b.(ResultBackend); ok {
		h.handle("POST /v1/jobs/{id}/acknowledge-result", func(w http.ResponseWriter, r *http.Request) error {
			id, err := jobID(r)
			if err != nil {
				return err
			}
			if err := rb.AcknowledgeResult(r.Context(), id); err != nil {
				return jobError(err, id)
			}
			writeJSON(w, http.StatusAccepted, struct{}{})
			return nil
		})
	}
	if ab, ok := b.(ApplicationBackend); ok {
		h.handle("GET /v1/application", func(w http.ResponseWriter, r *http.Request) error {
			a, err := ab.Application(r.Context())
			if err != nil {
				return backendError(err, nil)
			}
			writeJSON(w, http.StatusOK, a)
			return nil
		})
	}
	if lb, ok := b.(StdoutBackend); ok {
		h.handle("GET /v1/taskmanagers/{id}/stdout", func(w http.ResponseWriter, r *http.Request) error {
			text, err := lb.TaskManagerStdout(r.Context(), r.PathValue("id"))
			if err != nil {
				return backendError(err, nil)
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, text)
			return nil
		})
	}
	h.handleCollect(b)
	h.handleCheckpoints(b)
	h.handleSavepoints(b)

	h.handleMetrics(b)
	h.handle("POST /v1/artifacts", h.putArtifact)
	h.handle("GET /v1/artifacts/{id}", h.getArtifact)
	h.handleDashboard()
	return h
}

func (h *handler) handle(pattern string, f apiFunc) {
	h.routes = append(h.routes, pattern)
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			h.writeError(w, r, err)
		}
	})
}

// ServeHTTP routes r, answering unknown paths and wrong methods with JSON
// errors and recovering a handler's panic into a 500.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, head: r.Method == http.MethodHead, writeTimeout: h.dl.write}
	start := time.Now()
	// A body has a deadline from the start (an upload's then moves with
	// its progress). After an answer to a body the handler left unread
	// (a refused upload) the connection closes, but not at once: the
	// server reads at most 256 KiB more, for at most unreadLinger, so
	// that it closes with the client's bytes read and shuts its side
	// first. Closing on unread bytes sends a reset, and the client's
	// kernel then drops the answer it had not read yet: the client saw
	// "connection reset by peer" instead of the 413 that says why.
	// The request is copied, not changed: the server looks at its own
	// body to choose that careful close.
	if r.ContentLength != 0 {
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(start.Add(h.dl.body))
		body := &eofBody{ReadCloser: r.Body}
		rr := *r
		rr.Body, sw.body = body, body
		r = &rr
		defer func() {
			if !body.eof {
				rc.SetReadDeadline(time.Now().Add(unreadLinger))
			}
		}()
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("rest: panic serving request", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw.status != 0 {
				// Part of the answer is out: break the connection so the
				// client does not take a truncated answer for a whole one.
				panic(http.ErrAbortHandler)
			}
			h.writeError(sw, r, errorf(http.StatusInternalServerError,
				"internal error serving %s %s: %v (the JobManager's log has the stack trace)",
				r.Method, r.URL.Path, p))
		}
		h.log.Debug("rest: request", "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "duration", time.Since(start))
	}()
	if !h.authorized(r) {
		h.unauthorized(sw, r)
		return
	}
	if r.RequestURI == "*" {
		h.writeError(sw, r, errorf(http.StatusBadRequest,
			"request target * is not supported: the API's routes are under %s/", v1.Version))
		return
	}
	if _, pattern := h.mux.Handler(r); pattern == "" {
		h.noRoute(sw, r)
		return
	}
	h.mux.ServeHTTP(sw, r)
}

// noRoute answers a request that no route matches: 405 if the path is
// served for other methods, else 404.
func (h *handler) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete} {
		probe := r.WithContext(r.Context())
		probe.Method = m
		if _, pattern := h.mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		h.writeError(w, r, errorf(http.StatusMethodNotAllowed,
			"method %s is not allowed on %s: use %s", r.Method, r.URL.Path, orList(allow)))
		return
	}
	h.writeError(w, r, errorf(http.StatusNotFound,
		"no route for %s %s: the API serves %s", r.Method, r.URL.Path, strings.Join(h.routes, ", ")))
}

// orList reads "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// httpError is an error with the status and message of its answer.
type httpError struct {
	status int
	msg    string
	cause  error
}

func (e *httpError) Error() string { return e.msg }
func (e *httpError) Unwrap() error { return e.cause }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// classStatus is the status of a Backend error's class.
func classStatus(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// backendError turns a Backend error into an answer: its class chooses the
// status, hints (by status) may add the fix to its message.
func backendError(err error, hints map[int]string) error {
	status := classStatus(err)
	msg := err.Error()
	if hint := hints[status]; hint != "" {
		msg += ": " + hint
	}
	return &httpError{status: status, msg: msg, cause: err}
}

// writeError is the one place errors are answered: a JSON v1.ErrorResponse
// with the error's status.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, err.Error()
	var he *httpError
	if errors.As(err, &he) {
		status, msg = he.status, he.msg
	}
	if sw, ok := w.(*statusWriter); ok && sw.status != 0 {
		// The answer has begun (a download failing midway): the status can
		// no longer change, break the connection.
		h.log.Warn("rest: request failed after the answer began", "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "error", msg)
		panic(http.ErrAbortHandler)
	}
	if status >= 500 {
		h.log.Error("rest: request failed", "method", r.Method, "path", r.URL.Path,
			"status", status, "error", msg)
	}
	writeJSON(w, status, v1.ErrorResponse{Errors: []string{msg}})
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		json.NewEncoder(&buf).Encode(v1.ErrorResponse{Errors: []string{"encode answer: " + err.Error()}})
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// statusWriter remembers whether and with which status the answer began.
// Answers to HEAD have no body, even through an httptest.ResponseRecorder.
type statusWriter struct {
	http.ResponseWriter
	status int
	head   bool
	// writeTimeout bounds the answer from its start: a client that does
	// not read it is cut off.
	writeTimeout time.Duration
	// body is the request's body, if it has one.
	body *eofBody
}

// eofBody tells whether a request body was read to its end.
type eofBody struct {
	io.ReadCloser
	eof bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
		if w.body != nil && !w.body.eof {
			w.Header().Set("Connection", "close")
		}
		if w.writeTimeout > 0 {
			http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.writeTimeout))
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.head {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom lets a download use the connection's ReadFrom (sendfile).
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.head {
		return io.Copy(io.Discard, r)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes through to the connection.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}
