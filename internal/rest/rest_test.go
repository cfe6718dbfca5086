package rest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rest/resttest"
)

const (
	jobA    = "0123456789abcdef0123456789abcdef" // RUNNING
	jobB    = "fedcba9876543210fedcba9876543210" // FINISHED, with exceptions
	jobNone = "00000000000000000000000000000000" // unknown
	program = "\x7fELF pretend this is a program"
)

var programID = sha256hex(program)

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// fixture returns a Fake with jobs A and B and the artifact program.
func fixture(t testing.TB) *resttest.Fake {
	f := resttest.New()
	f.AddJob(v1.JobDetails{
		JID: jobA, Name: "wordcount", State: v1.JobRunning, StartTime: 1000, EndTime: -1, Duration: 5, Now: 1005,
		Timestamps: map[string]int64{v1.JobCreated: 999, v1.JobRunning: 1000},
		Vertices: []v1.JobVertex{{ID: "v1", Name: "Source: lines", Parallelism: 2, Status: v1.TaskRunning,
			StartTime: 1000, EndTime: -1, Duration: 5, Tasks: v1.TaskCounts{v1.TaskRunning: 2},
			Metrics: v1.VertexMetrics{ReadRecords: 0, WriteRecords: 42, WriteRecordsComplete: true}}},
		StatusCounts: v1.TaskCounts{v1.TaskRunning: 2},
		Plan:         json.RawMessage(`{"nodes":[]}`),
	})
	f.AddJob(v1.JobDetails{JID: jobB, Name: "failing", State: v1.JobFailed, StartTime: 10, EndTime: 20, Duration: 10})
	f.SetExceptions(jobB, v1.JobExceptions{RootException: "boom", Timestamp: 20, History: v1.ExceptionHistory{
		Entries: []v1.ExceptionEntry{{ExceptionName: "panic", Stacktrace: "goroutine 1", Timestamp: 20,
			TaskName: "Map (1/2)", Location: "tm-1"}}}})
	if _, err := f.PutArtifact(context.Background(), strings.NewReader(program)); err != nil {
		t.Fatal(err)
	}
	return f
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type request struct {
	method, path string
	body         string
	ctype        string
	chunked      bool // no Content-Length
}

func do(h http.Handler, rq request) *httptest.ResponseRecorder {
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, rq.path, body)
	if rq.ctype != "" {
		r.Header.Set("Content-Type", rq.ctype)
	}
	if rq.chunked {
		r.ContentLength = -1
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// checkError checks that w is a JSON error answer with one message.
func checkError(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer Content-Type %q, want application/json", ct)
	}
	var e v1.ErrorResponse
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error answer %q is not an ErrorResponse: %v", w.Body, err)
	}
	if len(e.Errors) != 1 || e.Errors[0] == "" {
		t.Fatalf("error answer %q: want one message", w.Body)
	}
	return e.Errors[0]
}

func multipartBody(t testing.TB, field, content string, extra map[string]string) (string, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range extra {
		mw.WriteField(k, v)
	}
	if field != "" {
		fw, err := mw.CreateFormFile(field, "prog")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(fw, content)
	}
	mw.Close()
	return buf.String(), mw.FormDataContentType()
}

func submitBody(artifact string) string {
	return `{"jobGraph":{"nodes":[]},"artifact":"` + artifact + `","programArgs":["-in","x"],"env":{"K":"v"}}`
}

func TestRoutes(t *testing.T) {
	mpOK, mpCT := multipartBody(t, "artifact", program, map[string]string{"note": "x"})
	mpNone, mpNoneCT := multipartBody(t, "", "", map[string]string{"note": "x"})
	mpBig, mpBigCT := multipartBody(t, "artifact", strings.Repeat("x", 2000), nil)
	mpEmpty, mpEmptyCT := multipartBody(t, "artifact", "", nil)
	tests := []struct {
		name   string
		req    request
		setup  func(f *resttest.Fake)
		status int
		want   []string // substrings of the raw body
		allow  string
	}{
		// Success shapes.
		{name: "overview", req: request{method: "GET", path: "/v1/overview"}, status: 200,
			want: []string{`"taskmanagers":2`, `"slots-total":4`, `"slots-available":3`, `"jobs-running":1`,
				`"jobs-finished":0`, `"jobs-cancelled":0`, `"jobs-failed":1`, `"spate-version":"` + resttest.Version + `"`}},
		{name: "config", req: request{method: "GET", path: "/v1/config"}, status: 200,
			want: []string{`"spate-version":`, `"timezone-name":"UTC"`, `"config":[{"key":"parallelism.default","value":"2"}]`}},
		{name: "jobs", req: request{method: "GET", path: "/v1/jobs"}, status: 200,
			want: []string{`{"jobs":[{"id":"` + jobA + `","status":"RUNNING"},{"id":"` + jobB + `","status":"FAILED"}]}`}},
		{name: "jobs overview", req: request{method: "GET", path: "/v1/jobs/overview"}, status: 200,
			want: []string{`"jid":"` + jobA + `"`, `"name":"wordcount"`, `"state":"RUNNING"`, `"start-time":1000`,
				`"end-time":-1`, `"duration":5`, `"last-modification":1000`, `"tasks":{"RUNNING":2}`}},
		{name: "job", req: request{method: "GET", path: "/v1/jobs/" + jobA}, status: 200,
			want: []string{`"jid":"` + jobA + `"`, `"isStoppable":false`, `"state":"RUNNING"`, `"start-time":1000`,
				`"now":1005`, `"timestamps":{"CREATED":999,"RUNNING":1000}`, `"vertices":[{"id":"v1","name":"Source: lines","parallelism":2,"status":"RUNNING"`,
				`"metrics":{"read-records":0,"read-records-complete":false,"write-records":42,"write-records-complete":true}`,
				`"status-counts":{"RUNNING":2}`, `"plan":{"nodes":[]}`}},
		{name: "job without vertices", req: request{method: "GET", path: "/v1/jobs/" + jobB}, status: 200,
			want: []string{`"vertices":[]`, `"state":"FAILED"`}},
		{name: "exceptions", req: request{method: "GET", path: "/v1/jobs/" + jobB + "/exceptions"}, status: 200,
			want: []string{`"root-exception":"boom"`, `"timestamp":20`,
				`"exceptionHistory":{"entries":[{"exceptionName":"panic","stacktrace":"goroutine 1","timestamp":20,"taskName":"Map (1/2)","location":"tm-1"}],"truncated":false}`}},
		{name: "no exceptions", req: request{method: "GET", path: "/v1/jobs/" + jobA + "/exceptions"}, status: 200,
			want: []string{`{"exceptionHistory":{"entries":[],"truncated":false}}`}},
		{name: "taskmanagers", req: request{method: "GET", path: "/v1/taskmanagers"}, status: 200,
			want: []string{`"taskmanagers":[{"id":"tm-1","path":"127.0.0.1:6121","dataPort":6121,"timeSinceLastHeartbeat":0,"slotsNumber":2,"freeSlots":1,"hardware":{"cpuCores":2,"physicalMemory":1073741824}}`}},
		{name: "cancel", req: request{method: "PATCH", path: "/v1/jobs/" + jobA + "?mode=cancel"}, status: 202,
			want: []string{`{}`}},
		{name: "submit", req: request{method: "POST", path: "/v1/jobs", body: submitBody(programID), ctype: "application/json"},
			status: 202, want: []string{`"jobid":"`}},
		{name: "upload raw", req: request{method: "POST", path: "/v1/artifacts", body: "abc", ctype: "application/octet-stream"},
			status: 200, want: []string{`"id":"` + sha256hex("abc") + `"`, `"size":3`, `"status":"success"`}},
		{name: "upload raw chunked", req: request{method: "POST", path: "/v1/artifacts", body: "abc", chunked: true},
			status: 200, want: []string{`"id":"` + sha256hex("abc") + `"`}},
		{name: "upload multipart", req: request{method: "POST", path: "/v1/artifacts", body: mpOK, ctype: mpCT},
			status: 200, want: []string{`"id":"` + programID + `"`, fmt.Sprintf(`"size":%d`, len(program))}},
		{name: "upload just under limit", req: request{method: "POST", path: "/v1/artifacts", body: strings.Repeat("y", 1024), chunked: true},
			status: 200, want: []string{`"size":1024`}},
		{name: "head", req: request{method: "HEAD", path: "/v1/overview"}, status: 200},

		// Malformed input.
		{name: "bad json", req: request{method: "POST", path: "/v1/jobs", body: `{"jobGraph":`}, status: 400,
			want: []string{"truncated JSON"}},
		{name: "bad json syntax", req: request{method: "POST", path: "/v1/jobs", body: `{"jobGraph":}`}, status: 400,
			want: []string{"malformed JSON"}},
		{name: "empty body", req: request{method: "POST", path: "/v1/jobs"}, status: 400,
			want: []string{"empty request body", `\"artifact\"`}},
		{name: "unknown field", req: request{method: "POST", path: "/v1/jobs", body: `{"jobgraph":{}}`}, status: 400,
			want: []string{`unknown field \"jobgraph\"`, `\"jobGraph\", \"artifact\", \"programArgs\", \"env\"`}},
		{name: "unknown field foo", req: request{method: "POST", path: "/v1/jobs", body: `{"jobGraph":{},"foo":1}`}, status: 400,
			want: []string{`unknown field \"foo\" in JobSubmitRequest`}},
		{name: "wrong type", req: request{method: "POST", path: "/v1/jobs", body: `{"programArgs":"x"}`}, status: 400,
			want: []string{`field \"programArgs\"`, "an array"}},
		{name: "not an object", req: request{method: "POST", path: "/v1/jobs", body: `[1]`}, status: 400,
			want: []string{"JSON array"}},
		{name: "two values", req: request{method: "POST", path: "/v1/jobs", body: submitBody(programID) + "{}"}, status: 400,
			want: []string{"goes on after the JSON value"}},
		{name: "trailing garbage", req: request{method: "POST", path: "/v1/jobs", body: submitBody(programID) + "]"}, status: 400},
		{name: "oversize body", req: request{method: "POST", path: "/v1/jobs", body: `{"programArgs":["` + strings.Repeat("a", 600) + `"]}`},
			status: 413, want: []string{"larger than the limit of 512 bytes"}},
		{name: "oversize body chunked", req: request{method: "POST", path: "/v1/jobs", chunked: true,
			body: `{"programArgs":["` + strings.Repeat("a", 600) + `"]}`}, status: 413},
		{name: "missing jobGraph", req: request{method: "POST", path: "/v1/jobs", body: `{"artifact":"` + programID + `"}`},
			status: 400, want: []string{`missing \"jobGraph\"`}},
		{name: "jobGraph not object", req: request{method: "POST", path: "/v1/jobs", body: `{"jobGraph":"x","artifact":"` + programID + `"}`},
			status: 400, want: []string{"not a JSON object"}},
		{name: "missing artifact", req: request{method: "POST", path: "/v1/jobs", body: `{"jobGraph":{}}`},
			status: 400, want: []string{`missing \"artifact\"`, "POST /v1/artifacts"}},
		{name: "bad artifact", req: request{method: "POST", path: "/v1/jobs", body: submitBody(strings.ToUpper(programID))},
			status: 400, want: []string{`invalid \"artifact\"`}},
		{name: "bad env", req: request{method: "POST", path: "/v1/jobs", body: `{"jobGraph":{},"artifact":"` + programID + `","env":{"A=B":"c"}}`},
			status: 400, want: []string{`\"env\"`}},
		{name: "unknown artifact", req: request{method: "POST", path: "/v1/jobs", body: submitBody(sha256hex("other"))},
			status: 404, want: []string{"upload the program binary with POST /v1/artifacts"}},
		{name: "bad job id", req: request{method: "GET", path: "/v1/jobs/abc"}, status: 400,
			want: []string{`invalid job id \"abc\"`, "GET /v1/jobs"}},
		{name: "upper-case job id", req: request{method: "GET", path: "/v1/jobs/" + strings.ToUpper(jobA)}, status: 400},
		{name: "escaped job id", req: request{method: "GET", path: "/v1/jobs/%2e%2e"}, status: 400},
		{name: "unknown job", req: request{method: "GET", path: "/v1/jobs/" + jobNone}, status: 404,
			want: []string{`unknown job \"` + jobNone + `\": list jobs with GET /v1/jobs`}},
		{name: "exceptions of unknown job", req: request{method: "GET", path: "/v1/jobs/" + jobNone + "/exceptions"}, status: 404,
			want: []string{`unknown job`}},
		{name: "exceptions bad id", req: request{method: "GET", path: "/v1/jobs/xyz/exceptions"}, status: 400},
		{name: "cancel without mode", req: request{method: "PATCH", path: "/v1/jobs/" + jobA}, status: 400,
			want: []string{"missing query parameter mode", "?mode=cancel"}},
		{name: "cancel stop", req: request{method: "PATCH", path: "/v1/jobs/" + jobA + "?mode=stop"}, status: 400,
			want: []string{"POST /v1/jobs/" + jobA + "/stop"}},
		{name: "cancel bad mode", req: request{method: "PATCH", path: "/v1/jobs/" + jobA + "?mode=kill"}, status: 400,
			want: []string{`unknown mode \"kill\"`, "cancel"}},
		{name: "cancel bad id", req: request{method: "PATCH", path: "/v1/jobs/nope?mode=cancel"}, status: 400},
		{name: "acknowledge result", req: request{method: "POST", path: "/v1/jobs/" + jobB + "/acknowledge-result"}, status: 202,
			want: []string{`{}`}},
		{name: "acknowledge result of a running job", req: request{method: "POST", path: "/v1/jobs/" + jobA + "/acknowledge-result"}, status: 409,
			want: []string{"RUNNING"}},
		{name: "acknowledge result of an unknown job", req: request{method: "POST", path: "/v1/jobs/" + jobNone + "/acknowledge-result"}, status: 404},
		{name: "acknowledge result bad id", req: request{method: "POST", path: "/v1/jobs/nope/acknowledge-result"}, status: 400},
		{name: "acknowledge result with GET", req: request{method: "GET", path: "/v1/jobs/" + jobB + "/acknowledge-result"}, status: 405, allow: "POST"},
		{name: "cancel unknown job", req: request{method: "PATCH", path: "/v1/jobs/" + jobNone + "?mode=cancel"}, status: 404},
		{name: "cancel finished job", req: request{method: "PATCH", path: "/v1/jobs/" + jobB + "?mode=cancel"}, status: 409,
			want: []string{"FAILED already"}},
		{name: "upload over limit", req: request{method: "POST", path: "/v1/artifacts", body: strings.Repeat("x", 1025)},
			status: 413, want: []string{"larger than the limit of 1024 bytes"}},
		{name: "upload over limit chunked", req: request{method: "POST", path: "/v1/artifacts", body: strings.Repeat("x", 1025), chunked: true},
			status: 413},
		{name: "upload multipart over limit", req: request{method: "POST", path: "/v1/artifacts", body: mpBig, ctype: mpBigCT, chunked: true},
			status: 413},
		{name: "upload multipart without field", req: request{method: "POST", path: "/v1/artifacts", body: mpNone, ctype: mpNoneCT},
			status: 400, want: []string{`no file field \"artifact\"`}},
		{name: "upload multipart empty", req: request{method: "POST", path: "/v1/artifacts", body: mpEmpty, ctype: mpEmptyCT},
			status: 400, want: []string{"empty artifact"}},
		{name: "upload multipart no boundary", req: request{method: "POST", path: "/v1/artifacts", body: mpOK, ctype: "multipart/form-data"},
			status: 400, want: []string{"boundary"}},
		{name: "upload multipart malformed", req: request{method: "POST", path: "/v1/artifacts", body: "garbage", ctype: mpCT},
			status: 400},
		{name: "upload empty", req: request{method: "POST", path: "/v1/artifacts"}, status: 400,
			want: []string{"empty artifact"}},
		{name: "upload json", req: request{method: "POST", path: "/v1/artifacts", body: "{}", ctype: "application/json"},
			status: 415, want: []string{"application/octet-stream"}},
		{name: "download bad id", req: request{method: "GET", path: "/v1/artifacts/abc"}, status: 400,
			want: []string{`invalid artifact id \"abc\"`}},
		{name: "download unknown", req: request{method: "GET", path: "/v1/artifacts/" + sha256hex("nope")}, status: 404,
			want: []string{"unknown artifact", "POST /v1/artifacts"}},
		{name: "wrong method", req: request{method: "PUT", path: "/v1/overview"}, status: 405, allow: "GET, HEAD",
			want: []string{"method PUT is not allowed on /v1/overview: use GET or HEAD"}},
		{name: "wrong method jobs", req: request{method: "DELETE", path: "/v1/jobs"}, status: 405, allow: "GET, HEAD, POST"},
		{name: "wrong method job", req: request{method: "POST", path: "/v1/jobs/" + jobA}, status: 405, allow: "GET, HEAD, PATCH"},
		{name: "wrong method artifacts", req: request{method: "GET", path: "/v1/artifacts"}, status: 405, allow: "POST"},
		{name: "unknown path", req: request{method: "GET", path: "/v1/nope"}, status: 404,
			want: []string{"no route for GET /v1/nope", "GET /v1/overview"}},
		{name: "trailing slash", req: request{method: "GET", path: "/v1/jobs/"}, status: 404},
		{name: "deeper path", req: request{method: "GET", path: "/v1/jobs/" + jobA + "/vertices"}, status: 404},

		// Backend errors.
		{name: "unclassified error", setup: func(f *resttest.Fake) { f.SetError("Overview", errors.New("disk on fire")) },
			req: request{method: "GET", path: "/v1/overview"}, status: 500, want: []string{"disk on fire"}},
		{name: "unavailable", setup: func(f *resttest.Fake) {
			f.SetError("TaskManagers", fmt.Errorf("leader unknown: %w", rest.ErrUnavailable))
		}, req: request{method: "GET", path: "/v1/taskmanagers"}, status: 503, want: []string{"leader unknown"}},
		{name: "invalid", setup: func(f *resttest.Fake) {
			f.SetError("SubmitJob", fmt.Errorf("graph fingerprint mismatch: %w", rest.ErrInvalid))
		}, req: request{method: "POST", path: "/v1/jobs", body: submitBody(programID)}, status: 400, want: []string{"fingerprint"}},
		{name: "too large", setup: func(f *resttest.Fake) {
			f.SetError("PutArtifact", fmt.Errorf("artifact store full: %w", rest.ErrTooLarge))
		}, req: request{method: "POST", path: "/v1/artifacts", body: "abc"}, status: 413, want: []string{"store full"}},
		{name: "conflict", setup: func(f *resttest.Fake) {
			f.SetError("JobsOverview", fmt.Errorf("busy: %w", rest.ErrConflict))
		}, req: request{method: "GET", path: "/v1/jobs"}, status: 409},
		{name: "config error", setup: func(f *resttest.Fake) { f.SetError("Config", errors.New("x")) },
			req: request{method: "GET", path: "/v1/config"}, status: 500},
		{name: "jobs overview error", setup: func(f *resttest.Fake) { f.SetError("JobsOverview", errors.New("x")) },
			req: request{method: "GET", path: "/v1/jobs/overview"}, status: 500},
		{name: "open artifact error", setup: func(f *resttest.Fake) { f.SetError("OpenArtifact", errors.New("io error")) },
			req: request{method: "GET", path: "/v1/artifacts/" + programID}, status: 500, want: []string{"io error"}},
		{name: "panic", setup: func(f *resttest.Fake) { f.SetPanic("Job") },
			req: request{method: "GET", path: "/v1/jobs/" + jobA}, status: 500, want: []string{"internal error", "panics as told"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			h := rest.NewHandler(f, rest.Options{MaxBodyBytes: 512, MaxArtifactBytes: 1024, Logger: quietLogger()})
			w := do(h, tt.req)
			if w.Code != tt.status {
				t.Fatalf("%s %s: status %d, want %d; body %s", tt.req.method, tt.req.path, w.Code, tt.status, w.Body)
			}
			raw := w.Body.String()
			if w.Code >= 400 {
				checkError(t, w)
			} else if tt.req.method != "HEAD" {
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
				if !json.Valid(w.Body.Bytes()) {
					t.Errorf("answer is not JSON: %s", raw)
				}
			} else if raw != "" {
				t.Errorf("HEAD answer has a body: %s", raw)
			}
			for _, s := range tt.want {
				if !strings.Contains(raw, s) {
					t.Errorf("answer %s\nlacks %s", raw, s)
				}
			}
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestSubmitReachesBackend(t *testing.T) {
	f := fixture(t)
	h := rest.NewHandler(f, rest.Options{Logger: quietLogger()})
	w := do(h, request{method: "POST", path: "/v1/jobs", body: submitBody(programID)})
	if w.Code != 202 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var resp v1.JobSubmitResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || !rest.ValidJobID(resp.JobID) {
		t.Fatalf("answer %s: %v", w.Body, err)
	}
	sub := f.Submitted()
	if len(sub) != 1 || sub[0].Artifact != programID || strings.Join(sub[0].Args, " ") != "-in x" ||
		sub[0].Env["K"] != "v" || string(sub[0].JobGraph) != `{"nodes":[]}` {
		t.Fatalf("backend got %+v", sub)
	}
	// The job is listed.
	w = do(h, request{method: "GET", path: "/v1/jobs"})
	if !strings.Contains(w.Body.String(), resp.JobID) {
		t.Fatalf("GET /v1/jobs %s lacks %s", w.Body, resp.JobID)
	}
}

func TestUploadThenDownload(t *testing.T) {
	f := resttest.New()
	h := rest.NewHandler(f, rest.Options{Logger: quietLogger()})
	data := strings.Repeat("0123456789", 100_000)
	w := do(h, request{method: "POST", path: "/v1/artifacts", body: data, ctype: "application/octet-stream"})
	if w.Code != 200 {
		t.Fatalf("upload: %d %s", w.Code, w.Body)
	}
	var up v1.ArtifactUploadResponse
	if err := json.Unmarshal(w.Body.Bytes(), &up); err != nil {
		t.Fatal(err)
	}
	if up.ID != sha256hex(data) || up.Size != int64(len(data)) {
		t.Fatalf("upload answer %+v", up)
	}
	w = do(h, request{method: "GET", path: "/v1/artifacts/" + up.ID})
	if w.Code != 200 || w.Body.String() != data {
		t.Fatalf("download: %d, %d bytes", w.Code, w.Body.Len())
	}
	if got := w.Header().Get("Content-Length"); got != fmt.Sprint(len(data)) {
		t.Errorf("Content-Length %q", got)
	}
	if got := w.Header().Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type %q", got)
	}
	w = do(h, request{method: "HEAD", path: "/v1/artifacts/" + up.ID})
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != fmt.Sprint(len(data)) {
		t.Fatalf("HEAD: %d, %d bytes, %v", w.Code, w.Body.Len(), w.Header())
	}
}

// syncBuffer is a bytes.Buffer for a logger written by the server's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPanicIsLogged(t *testing.T) {
	f := fixture(t)
	f.SetPanic("TaskManagers")
	var log syncBuffer
	h := rest.NewHandler(f, rest.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	w := do(h, request{method: "GET", path: "/v1/taskmanagers"})
	if w.Code != 500 {
		t.Fatalf("status %d", w.Code)
	}
	checkError(t, w)
	if s := log.String(); !strings.Contains(s, "panic") || !strings.Contains(s, "stack=") {
		t.Fatalf("log lacks the panic and its stack: %s", s)
	}
}

func TestValidIDs(t *testing.T) {
	for _, c := range []struct {
		s         string
		job, arti bool
	}{
		{jobA, true, false}, {programID, false, true}, {"", false, false},
		{strings.ToUpper(jobA), false, false}, {jobA[:31] + "g", false, false},
	} {
		if got := rest.ValidJobID(c.s); got != c.job {
			t.Errorf("ValidJobID(%q) = %v", c.s, got)
		}
		if got := rest.ValidArtifactID(c.s); got != c.arti {
			t.Errorf("ValidArtifactID(%q) = %v", c.s, got)
		}
	}
}

// TestServe runs the handler on a real server: answers, an upload over the
// limit that does not hang, and a graceful shutdown finishing a request in
// flight.
func TestServe(t *testing.T) {
	f := fixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	held := &heldConfig{Fake: f, entered: make(chan struct{}), release: make(chan struct{})}
	h := rest.NewHandler(held, rest.Options{MaxArtifactBytes: 1 << 20, Logger: quietLogger()})
	go func() { done <- rest.Serve(ctx, ln, h) }()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/v1/overview")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"taskmanagers":2`) {
		t.Fatalf("overview: %d %s", resp.StatusCode, body)
	}

	// An upload far over the limit, without Content-Length: 413, quickly.
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("z"), 64<<10)
		for i := 0; i < 64; i++ { // 4 MiB
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", base+"/v1/artifacts", pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err == nil {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("upload over limit: %d %s", resp.StatusCode, body)
		}
	} // else the server closed the connection before the client saw the answer: no hang either.
	pr.Close()

	// Shutdown lets a request in flight finish: the request waits in the
	// Backend until the server has stopped listening.
	held.hold.Store(true)
	got := make(chan error, 1)
	go func() {
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := hc.Get(base + "/v1/config")
		if err != nil {
			got <- err
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		got <- err
	}()
	// Cancel once the request is in the Backend, and let it finish once
	// the shutdown has closed the listener.
	select {
	case <-held.entered:
	case err := <-got:
		t.Fatalf("the request did not reach the Backend: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the Backend")
	}
	cancel()
	pollUntil(t, 10*time.Second, "the shutdown to close the listener", func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(held.release)
	if err := <-got; err != nil {
		t.Fatalf("request in flight during shutdown: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get(base + "/v1/overview"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

// heldConfig is a Backend whose Config, once hold is set, signals entered
// and waits for release: a request that stays in flight as long as the
// test needs.
type heldConfig struct {
	*resttest.Fake
	hold    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (h *heldConfig) Config(ctx context.Context) (v1.Config, error) {
	if h.hold.Load() {
		h.entered <- struct{}{}
		select {
		case <-h.release:
		case <-ctx.Done():
			return v1.Config{}, ctx.Err()
		}
	}
	return h.Fake.Config(ctx)
}

// pollUntil polls cond until it holds or d passes.
func pollUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
