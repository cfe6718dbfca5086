package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rest/resttest"
)

const (
	jobA    = "0123456789abcdef0123456789abcdef" // RUNNING
	jobB    = "fedcba9876543210fedcba9876543210" // FAILED, with exceptions
	jobNone = "00000000000000000000000000000000"
)

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// serve runs the REST handler over a Fake with jobs A and B and returns a
// client of it.
func serve(t *testing.T, opts rest.Options, copts ...client.Option) (*client.Client, *resttest.Fake, *httptest.Server) {
	t.Helper()
	f := resttest.New()
	f.AddJob(v1.JobDetails{JID: jobA, Name: "wordcount", State: v1.JobRunning, StartTime: 1000,
		Vertices: []v1.JobVertex{{ID: "v1", Name: "Source", Parallelism: 2, Status: v1.TaskRunning,
			Tasks: v1.TaskCounts{v1.TaskRunning: 2}, Metrics: v1.VertexMetrics{WriteRecords: 7}}}})
	f.AddJob(v1.JobDetails{JID: jobB, Name: "failing", State: v1.JobFailed})
	f.SetExceptions(jobB, v1.JobExceptions{RootException: "boom", Timestamp: 20,
		History: v1.ExceptionHistory{Entries: []v1.ExceptionEntry{{ExceptionName: "panic", Timestamp: 20}}}})
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := httptest.NewServer(rest.NewHandler(f, opts))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, copts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, f, srv
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		in, addr, err string
	}{
		{in: "localhost:8081", addr: "localhost:8081"},
		{in: " 127.0.0.1:8081 ", addr: "127.0.0.1:8081"},
		{in: "http://127.0.0.1:8081/", addr: "127.0.0.1:8081"},
		{in: "https://jm.example.com", addr: "jm.example.com"},
		{in: "http://proxy:80/spate/", addr: "proxy:80"},
		{in: "[::1]:8081", addr: "[::1]:8081"},
		{in: "", err: "empty"},
		{in: "localhost", err: `"localhost" has no port: give host:port, e.g. localhost:8081`},
		{in: ":8081", err: "no host"},
		{in: "ftp://host:21", err: `scheme "ftp" is not supported`},
		{in: "http://", err: "no host"},
		{in: "http://host:80?x=1", err: "more than a host"},
		{in: "http://u:p@host:80", err: "more than a host"},
		{in: "host:port", err: "malformed"},
		{in: "host name:80", err: "malformed"},
	} {
		c, err := client.New(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("New(%q) = %v, want an error with %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tt.in, err)
			continue
		}
		if c.Address() != tt.addr {
			t.Errorf("New(%q).Address() = %q, want %q", tt.in, c.Address(), tt.addr)
		}
	}
}

func TestClusterMethods(t *testing.T) {
	c, _, _ := serve(t, rest.Options{})
	ctx := context.Background()

	o, err := c.Overview(ctx)
	if err != nil || o.TaskManagers != 2 || o.SlotsTotal != 4 || o.SlotsAvailable != 3 ||
		o.JobsRunning != 1 || o.JobsFailed != 1 || o.Version != resttest.Version {
		t.Errorf("Overview = %+v, %v", o, err)
	}
	cfg, err := c.Config(ctx)
	if err != nil || cfg.Version != resttest.Version || len(cfg.Entries) != 1 || cfg.Entries[0].Key != "parallelism.default" {
		t.Errorf("Config = %+v, %v", cfg, err)
	}
	tms, err := c.TaskManagers(ctx)
	if err != nil || len(tms.TaskManagers) != 2 || tms.TaskManagers[0].SlotsNumber != 2 || tms.TaskManagers[1].ID != "tm-2" {
		t.Errorf("TaskManagers = %+v, %v", tms, err)
	}
}

func TestJobMethods(t *testing.T) {
	c, _, _ := serve(t, rest.Options{})
	ctx := context.Background()

	jobs, err := c.Jobs(ctx)
	want := []v1.JobIDStatus{{ID: jobA, Status: v1.JobRunning}, {ID: jobB, Status: v1.JobFailed}}
	if err != nil || len(jobs.Jobs) != 2 || jobs.Jobs[0] != want[0] || jobs.Jobs[1] != want[1] {
		t.Errorf("Jobs = %+v, %v", jobs, err)
	}
	ov, err := c.JobsOverview(ctx)
	if err != nil || len(ov.Jobs) != 2 || ov.Jobs[0].Name != "wordcount" || ov.Jobs[0].StartTime != 1000 {
		t.Errorf("JobsOverview = %+v, %v", ov, err)
	}
	j, err := c.Job(ctx, jobA)
	if err != nil || j.JID != jobA || j.State != v1.JobRunning || len(j.Vertices) != 1 || j.Vertices[0].Metrics.WriteRecords != 7 {
		t.Errorf("Job = %+v, %v", j, err)
	}
	exc, err := c.JobExceptions(ctx, jobB)
	if err != nil || exc.RootException != "boom" || len(exc.History.Entries) != 1 {
		t.Errorf("JobExceptions = %+v, %v", exc, err)
	}
	if err := c.CancelJob(ctx, jobA); err != nil {
		t.Errorf("CancelJob: %v", err)
	}
	if j, err := c.Job(ctx, jobA); err != nil || j.State != v1.JobCanceled {
		t.Errorf("after CancelJob, Job = %+v, %v", j, err)
	}
}

func TestAPIErrors(t *testing.T) {
	c, f, _ := serve(t, rest.Options{})
	ctx := context.Background()
	addr := c.Address()

	_, err := c.Job(ctx, jobNone)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Method != "GET" || ae.Path != "/v1/jobs/"+jobNone {
		t.Fatalf("Job(unknown) = %#v", err)
	}
	wantMsg := `jobmanager ` + addr + `: 404 Not Found: unknown job "` + jobNone + `": list jobs with GET /v1/jobs`
	if err.Error() != wantMsg {
		t.Errorf("error %q\nwant  %q", err, wantMsg)
	}
	if !client.IsStatus(err, 404) || client.IsStatus(err, 400) || client.IsStatus(errors.New("x"), 404) {
		t.Error("IsStatus is wrong")
	}

	for _, tt := range []struct {
		name   string
		call   func() error
		status int
		msg    string
	}{
		{"bad job id", func() error { _, err := c.Job(ctx, "nope"); return err }, 400, "invalid job id"},
		{"job id with slash", func() error { _, err := c.Job(ctx, "../overview"); return err }, 400, "invalid job id"},
		{"exceptions of unknown job", func() error { _, err := c.JobExceptions(ctx, jobNone); return err }, 404, "unknown job"},
		{"cancel finished job", func() error { return c.CancelJob(ctx, jobB) }, 409, "already"},
		{"cancel unknown job", func() error { return c.CancelJob(ctx, jobNone) }, 404, "unknown job"},
		{"submit without artifact", func() error {
			_, err := c.SubmitJob(ctx, v1.JobSubmitRequest{JobGraph: json.RawMessage(`{}`)})
			return err
		}, 400, `missing "artifact"`},
		{"submit unknown artifact", func() error {
			_, err := c.SubmitJob(ctx, v1.JobSubmitRequest{JobGraph: json.RawMessage(`{}`), Artifact: sha256hex(nil)})
			return err
		}, 404, "POST /v1/artifacts"},
		{"backend error", func() error {
			f.SetError("Overview", errors.New("disk on fire"))
			defer f.SetError("Overview", nil)
			_, err := c.Overview(ctx)
			return err
		}, 500, "disk on fire"},
		{"unavailable", func() error {
			f.SetError("TaskManagers", rest.ErrUnavailable)
			defer f.SetError("TaskManagers", nil)
			_, err := c.TaskManagers(ctx)
			return err
		}, 503, "unavailable"},
		{"download unknown", func() error { _, _, err := c.OpenArtifact(ctx, sha256hex(nil)); return err }, 404, "unknown artifact"},
		{"empty upload", func() error { _, err := c.UploadArtifactReader(ctx, strings.NewReader(""), 0); return err }, 400, "empty artifact"},
	} {
		err := tt.call()
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != tt.status || len(ae.Errors) != 1 || !strings.Contains(ae.Errors[0], tt.msg) {
			t.Errorf("%s: %v, want status %d with %q", tt.name, err, tt.status, tt.msg)
		}
	}
	if _, err := c.Job(ctx, ""); err == nil || !strings.Contains(err.Error(), "empty job id") {
		t.Errorf("Job(\"\") = %v", err)
	}
}

func TestSubmitAndWait(t *testing.T) {
	c, f, _ := serve(t, rest.Options{})
	ctx := context.Background()
	data := []byte("\x7fELF a program")
	up, err := c.UploadArtifactReader(ctx, bytes.NewReader(data), int64(len(data)))
	if err != nil || up.ID != sha256hex(data) || up.Size != int64(len(data)) || up.Status != "success" {
		t.Fatalf("UploadArtifactReader = %+v, %v", up, err)
	}
	f.SetSubmitStates(v1.JobCreated, v1.JobRunning, v1.JobRunning, v1.JobRunning, v1.JobFinished)
	req := v1.JobSubmitRequest{JobGraph: json.RawMessage(`{"vertices":[]}`), Artifact: up.ID,
		Args: []string{"-n", "3"}, Env: map[string]string{"TOKEN": "s3cret"}}
	id, err := c.SubmitJob(ctx, req)
	if err != nil || !rest.ValidJobID(id) {
		t.Fatalf("SubmitJob = %q, %v", id, err)
	}
	sub := f.Submitted()
	if len(sub) != 1 || sub[0].Artifact != up.ID || sub[0].Env["TOKEN"] != "s3cret" || len(sub[0].Args) != 2 {
		t.Fatalf("backend got %+v", sub)
	}
	var seen []string
	j, err := c.WaitJob(ctx, id, time.Millisecond, func(s string) { seen = append(seen, s) })
	if err != nil || j.JID != id || j.State != v1.JobFinished {
		t.Fatalf("WaitJob = %+v, %v", j, err)
	}
	if got := strings.Join(seen, " "); got != "CREATED RUNNING FINISHED" {
		t.Errorf("onChange saw %q", got)
	}
	// A job terminal already: one poll, no callback needed.
	j, err = c.WaitJob(ctx, jobB, 0, nil)
	if err != nil || j.State != v1.JobFailed {
		t.Errorf("WaitJob(failed job) = %+v, %v", j, err)
	}
}

func TestWaitJobHonoursContext(t *testing.T) {
	c, _, _ := serve(t, rest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var changes int
	start := time.Now()
	j, err := c.WaitJob(ctx, jobA, 10*time.Millisecond, func(string) { changes++ })
	if !errors.Is(err, context.DeadlineExceeded) || j.State != v1.JobRunning || changes != 1 {
		t.Fatalf("WaitJob = %+v, %v (%d changes)", j, err, changes)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("WaitJob returned after %v", d)
	}
	if _, err := c.WaitJob(context.Background(), jobNone, time.Millisecond, nil); !client.IsStatus(err, 404) {
		t.Fatalf("WaitJob(unknown job) = %v", err)
	}
}

func TestUploadFileAndDownload(t *testing.T) {
	c, f, _ := serve(t, rest.Options{})
	ctx := context.Background()
	data := bytes.Repeat([]byte("spate binary "), 300_000) // ~4 MB
	path := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	up, err := c.UploadArtifact(ctx, path)
	if err != nil || up.ID != sha256hex(data) || up.Size != int64(len(data)) {
		t.Fatalf("UploadArtifact = %+v, %v", up, err)
	}
	if got, ok := f.Artifact(up.ID); !ok || !bytes.Equal(got, data) {
		t.Fatal("the backend did not store the binary")
	}
	rc, size, err := c.OpenArtifact(ctx, up.ID)
	if err != nil || size != int64(len(data)) {
		t.Fatalf("OpenArtifact: %d, %v", size, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes, %v", len(got), err)
	}

	if _, err := c.UploadArtifact(ctx, filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("UploadArtifact(missing) = %v", err)
	}
	if _, err := c.UploadArtifact(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("UploadArtifact(dir) = %v", err)
	}
}

// genReader yields n bytes without holding them.
type genReader struct{ n, off int64 }

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n-g.off {
		p = p[:g.n-g.off]
	}
	for i := range p {
		p[i] = byte((g.off + int64(i)) % 251)
	}
	g.off += int64(len(p))
	return len(p), nil
}

func TestUploadStreamsUnknownSize(t *testing.T) {
	c, f, _ := serve(t, rest.Options{})
	const n = 3 << 20
	up, err := c.UploadArtifactReader(context.Background(), &genReader{n: n}, -1)
	if err != nil || up.Size != n {
		t.Fatalf("UploadArtifactReader = %+v, %v", up, err)
	}
	want, _ := io.ReadAll(&genReader{n: n})
	if got, _ := f.Artifact(up.ID); !bytes.Equal(got, want) || up.ID != sha256hex(want) {
		t.Fatal("the backend stored other bytes")
	}
}

func TestUploadOverLimit(t *testing.T) {
	c, _, _ := serve(t, rest.Options{MaxArtifactBytes: 1 << 20})
	for _, size := range []int64{4 << 20, -1} {
		_, err := c.UploadArtifactReader(context.Background(), &genReader{n: 4 << 20}, size)
		if !client.IsStatus(err, http.StatusRequestEntityTooLarge) || !strings.Contains(err.Error(), "larger than the limit") {
			t.Errorf("size %d: upload over the limit: %v", size, err)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Overview(context.Background())
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) ||
		!strings.Contains(err.Error(), "jobmanager "+addr+" is not reachable") || !strings.Contains(err.Error(), "spate jobmanager") {
		t.Fatalf("Overview against nothing: %v", err)
	}
	var ae *client.APIError
	if errors.As(err, &ae) {
		t.Fatal("a refused connection is not an APIError")
	}
}

func TestTimeout(t *testing.T) {
	c, f, _ := serve(t, rest.Options{}, client.WithTimeout(100*time.Millisecond))
	f.SetDelay(10 * time.Second)
	start := time.Now()
	_, err := c.Overview(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Fatalf("Overview of a slow JobManager: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timed out after %v", d)
	}
	// The caller's context wins, and is named.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	c2, _ := client.New(c.Address(), client.WithTimeout(0))
	if _, err := c2.Config(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Config with a canceled context: %v", err)
	}
}

func TestUploadStallTimeout(t *testing.T) {
	c, _, _ := serve(t, rest.Options{}, client.WithTimeout(200*time.Millisecond))
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		pw.Write([]byte("some bytes, then nothing"))
	}()
	start := time.Now()
	_, err := c.UploadArtifactReader(context.Background(), pr, -1)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no progress for 200ms") {
		t.Fatalf("stalled upload: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stalled upload returned after %v", d)
	}
}

func TestSlowUploadWithProgress(t *testing.T) {
	// The timeout bounds stalls, not the upload: 10 pieces 100ms apart take
	// longer than the 500ms timeout.
	c, _, _ := serve(t, rest.Options{}, client.WithTimeout(500*time.Millisecond))
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 10; i++ {
			time.Sleep(100 * time.Millisecond)
			pw.Write([]byte("piece "))
		}
		pw.Close()
	}()
	up, err := c.UploadArtifactReader(context.Background(), pr, -1)
	if err != nil || up.Size != 60 {
		t.Fatalf("slow upload: %+v, %v", up, err)
	}
}

func TestForeignAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/overview":
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		case "/v1/config":
			io.WriteString(w, "not json")
		case "/v1/jobs":
			if r.Method == "POST" {
				w.Write([]byte(`{}`))
				return
			}
			w.WriteHeader(599)
		default:
			w.Write([]byte(`{}`))
		}
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL)
	ctx := context.Background()
	_, err := c.Overview(ctx)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 502 || len(ae.Errors) != 1 || ae.Errors[0] != "<html>bad gateway</html>" {
		t.Errorf("502 with text: %#v", err)
	}
	if _, err := c.Config(ctx); err == nil || !strings.Contains(err.Error(), "malformed answer") {
		t.Errorf("200 with text: %v", err)
	}
	if _, err := c.Jobs(ctx); err == nil || err.Error() != "jobmanager "+c.Address()+": 599" {
		t.Errorf("599 without body: %v", err)
	}
	if _, err := c.SubmitJob(ctx, v1.JobSubmitRequest{}); err == nil || !strings.Contains(err.Error(), "no job id") {
		t.Errorf("submit answered {}: %v", err)
	}
}

type countingTransport struct{ n atomic.Int32 }

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ct.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestWithHTTPClientAndPrefix(t *testing.T) {
	f := resttest.New()
	mux := http.NewServeMux()
	mux.Handle("/spate/", http.StripPrefix("/spate", rest.NewHandler(f, rest.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ct := &countingTransport{}
	c, err := client.New(srv.URL+"/spate/", client.WithHTTPClient(&http.Client{Transport: ct}))
	if err != nil {
		t.Fatal(err)
	}
	if o, err := c.Overview(context.Background()); err != nil || o.TaskManagers != 2 {
		t.Fatalf("Overview behind a prefix: %+v, %v", o, err)
	}
	if ct.n.Load() != 1 {
		t.Fatalf("the given HTTP client sent %d requests", ct.n.Load())
	}
}

// TestEnsureArtifact: a binary the JobManager holds already is not sent
// again; a new one is uploaded once.
func TestEnsureArtifact(t *testing.T) {
	f := resttest.New()
	var posts atomic.Int32
	h := rest.NewHandler(f, rest.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/artifacts" {
			posts.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := bytes.Repeat([]byte("another binary "), 100_000)
	path := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, wantStatus := range []string{"success", "exists", "exists"} {
		up, err := c.EnsureArtifact(ctx, path)
		if err != nil || up.ID != sha256hex(data) || up.Size != int64(len(data)) || up.Status != wantStatus {
			t.Fatalf("EnsureArtifact #%d = %+v, %v; want status %s", i+1, up, err, wantStatus)
		}
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("%d uploads for three EnsureArtifact calls of one binary, want 1", n)
	}
	if got, ok := f.Artifact(sha256hex(data)); !ok || !bytes.Equal(got, data) {
		t.Error("the backend does not hold the binary")
	}
	if _, err := c.EnsureArtifact(ctx, filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("EnsureArtifact(missing) = %v", err)
	}
}
