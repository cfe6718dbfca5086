// Package client is the Go client of a Spate JobManager's REST API (see
// api/v1 for the wire types): the CLI and user programs use it to upload a
// program's binary, submit and cancel jobs, follow them, and look at the
// cluster.
//
//	c, err := client.New("localhost:8081")
//	...
//	art, err := c.UploadArtifact(ctx, "./wordcount")
//	id, err := c.SubmitJob(ctx, v1.JobSubmitRequest{JobGraph: graph, Artifact: art.ID})
//	job, err := c.WaitJob(ctx, id, time.Second, func(s string) { fmt.Println(s) })
//
// Every method takes a context and bounds its request by the client's
// timeout (WithTimeout). A non-2xx answer is an *APIError; a JobManager that
// cannot be reached gives an error naming its address.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// DefaultTimeout bounds each request unless WithTimeout says otherwise.
const DefaultTimeout = 30 * time.Second

const (
	// maxAnswer bounds a JSON answer's size.
	maxAnswer = 64 << 20
	// maxErrorAnswer bounds the part of an error answer read.
	maxErrorAnswer = 64 << 10
	userAgent      = "spate-client"
)

// Client speaks to one JobManager. It is safe for concurrent use.
type Client struct {
	base    *url.URL // scheme, host and path prefix
	addr    string   // host:port, as errors show it
	hc      *http.Client
	timeout time.Duration
	token   string // bearer token, if any (auth.go)
	tls     bool   // WithTLS: a bare address is https
}

// Option configures New.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc (for TLS
// settings, proxies or tests). The default is a client of
// http.DefaultTransport.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout bounds each request by d (DefaultTimeout otherwise); 0 means
// no bound but the context's. An upload or a download is bounded by d
// without progress, not as a whole.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d >= 0 {
			c.timeout = d
		}
	}
}

// New returns a client of the JobManager at address: "host:port", or a URL
// "http://host:port" (https too, and a path prefix if a proxy serves the API
// below one). A bare "host:port" is http, or https with WithTLS.
func New(address string, opts ...Option) (*Client, error) {
	base, err := parseAddress(address)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, addr: base.Host, hc: &http.Client{}, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	if c.tls && !strings.Contains(address, "://") {
		c.base.Scheme = "https"
	}
	return c, nil
}

func parseAddress(address string) (*url.URL, error) {
	const example = "give host:port or http://host:port, e.g. localhost:8081"
	a := strings.TrimSpace(address)
	if a == "" {
		return nil, fmt.Errorf("jobmanager address is empty: %s", example)
	}
	bare := !strings.Contains(a, "://")
	if bare {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil {
		return nil, fmt.Errorf("jobmanager address %q is malformed (%v): %s", address, err, example)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("jobmanager address %q: scheme %q is not supported: use http:// or https://", address, u.Scheme)
	case u.Hostname() == "":
		return nil, fmt.Errorf("jobmanager address %q has no host: %s", address, example)
	case bare && u.Port() == "":
		return nil, fmt.Errorf("jobmanager address %q has no port: give host:port, e.g. %s:8081", address, u.Hostname())
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "":
		return nil, fmt.Errorf("jobmanager address %q holds more than a host, port and path: %s", address, example)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Address is the JobManager's host:port.
func (c *Client) Address() string { return c.addr }

// APIError is a non-2xx answer of the JobManager.
type APIError struct {
	// Address is the JobManager's host:port.
	Address string
	// Method and Path are the request's.
	Method, Path string
	// Status is the HTTP status code.
	Status int
	// Errors are the messages of the answer's v1.ErrorResponse (or the
	// start of its text if it was not one).
	Errors []string
}

// Error reads like `jobmanager 127.0.0.1:8081: 404 Not Found: unknown job "..."`.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "jobmanager %s: %d", e.Address, e.Status)
	if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" " + t)
	}
	if len(e.Errors) > 0 {
		b.WriteString(": " + strings.Join(e.Errors, "; "))
	}
	return b.String()
}

// IsStatus reports whether err is (or wraps) an *APIError with status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}

// request is one call: its body, if any, is JSON in, or raw.
type request struct {
	method, path string
	query        url.Values
	in           any       // JSON body
	raw          io.Reader // raw body, if in is nil
	rawSize      int64     // -1: unknown
	stall        bool      // the timeout bounds stalls, not the whole call
}

// send sends rq and returns the answer if it is a 2xx; its body must be
// closed, which ends the request's context (done).
func (c *Client) send(ctx context.Context, rq request) (resp *http.Response, done func(), err error) {
	u := *c.base
	u.Path += rq.path
	u.RawQuery = rq.query.Encode()
	rctx, cancel := context.WithCancel(ctx)
	var stall *stallTimer
	switch {
	case c.timeout <= 0:
	case rq.stall:
		stall = newStallTimer(c.timeout, cancel)
	default:
		rctx, cancel = context.WithTimeout(rctx, c.timeout)
	}
	timedOut := func() bool {
		if stall != nil {
			return stall.fired()
		}
		return c.timeout > 0 && ctx.Err() == nil && errors.Is(rctx.Err(), context.DeadlineExceeded)
	}
	done = func() {
		cancel()
		if stall != nil {
			stall.stop()
		}
	}
	var body io.Reader
	size := int64(0)
	ctype := ""
	if rq.in != nil {
		data, err := json.Marshal(rq.in)
		if err != nil {
			done()
			return nil, nil, fmt.Errorf("jobmanager %s: %s %s: encode request: %w", c.addr, rq.method, rq.path, err)
		}
		body, size, ctype = bytes.NewReader(data), int64(len(data)), "application/json"
	} else if rq.raw != nil {
		body, size, ctype = newPump(rq.raw, rctx, stall), rq.rawSize, "application/octet-stream"
	}
	req, err := http.NewRequestWithContext(rctx, rq.method, u.String(), body)
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("jobmanager %s: %s %s: %w", c.addr, rq.method, rq.path, err)
	}
	if body != nil {
		req.ContentLength = size
		if size < 0 {
			req.ContentLength = 0 // with a body: unknown, sent chunked
		}
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err = c.hc.Do(req)
	if err != nil {
		done()
		return nil, nil, c.transportError(ctx, rq, err, timedOut())
	}
	if resp.StatusCode/100 != 2 {
		defer done()
		defer resp.Body.Close()
		return nil, nil, c.apiError(rq, resp)
	}
	if stall != nil {
		resp.Body = &stallBody{ReadCloser: resp.Body, t: stall}
	}
	return resp, done, nil
}

// call makes a JSON call, decoding a 2xx answer into out if not nil.
func (c *Client) call(ctx context.Context, rq request, out any) error {
	resp, done, err := c.send(ctx, rq)
	if err != nil {
		return err
	}
	defer done()
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("jobmanager %s: %s %s: %w", c.addr, rq.method, rq.path, ctx.Err())
			}
			return fmt.Errorf("jobmanager %s: %s %s: malformed answer (is %s a Spate JobManager?): %w",
				c.addr, rq.method, rq.path, c.addr, err)
		}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
	return nil
}

func (c *Client) apiError(rq request, resp *http.Response) error {
	e := &APIError{Address: c.addr, Method: rq.method, Path: rq.path, Status: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorAnswer))
	var er v1.ErrorResponse
	if json.Unmarshal(data, &er) == nil && len(er.Errors) > 0 {
		e.Errors = er.Errors
	} else if s := strings.TrimSpace(string(data)); s != "" {
		if len(s) > 512 {
			s = s[:512] + "..."
		}
		e.Errors = []string{s}
	}
	return e
}

// transportError explains a request that got no answer.
func (c *Client) transportError(ctx context.Context, rq request, err error, timedOut bool) error {
	var dnsErr *net.DNSError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("jobmanager %s: %s %s: %w", c.addr, rq.method, rq.path, ctx.Err())
	case timedOut && rq.stall:
		return fmt.Errorf("jobmanager %s: %s %s: no progress for %v: check the network and the JobManager, or give a longer timeout: %w",
			c.addr, rq.method, rq.path, c.timeout, context.DeadlineExceeded)
	case timedOut:
		return fmt.Errorf("jobmanager %s: %s %s: no answer within %v: check that the JobManager is healthy, or give a longer timeout: %w",
			c.addr, rq.method, rq.path, c.timeout, context.DeadlineExceeded)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("jobmanager %s is not reachable (connection refused): check that the JobManager runs (spate jobmanager) and listens on %s: %w",
			c.addr, c.addr, err)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("jobmanager %s: host %q is unknown: check the address: %w", c.addr, c.base.Hostname(), err)
	case strings.Contains(err.Error(), "tls: "), strings.Contains(err.Error(), "x509: "):
		return fmt.Errorf("jobmanager %s: %s %s: TLS failed: check security.ssl.rest.keystore (the client's certificate, if the JobManager requires one) and security.ssl.rest.truststore (the CA of the JobManager's certificate): %w",
			c.addr, rq.method, rq.path, err)
	}
	return fmt.Errorf("jobmanager %s: %s %s: %w (check that the JobManager runs: spate jobmanager)", c.addr, rq.method, rq.path, err)
}

// stallTimer calls its function when not touched for its duration.
type stallTimer struct {
	d     time.Duration
	mu    sync.Mutex
	t     *time.Timer
	fire  bool
	onEnd func()
}

func newStallTimer(d time.Duration, f func()) *stallTimer {
	s := &stallTimer{d: d, onEnd: f}
	s.t = time.AfterFunc(d, func() {
		s.mu.Lock()
		s.fire = true
		s.mu.Unlock()
		f()
	})
	return s
}

func (s *stallTimer) touch() { s.t.Reset(s.d) }
func (s *stallTimer) stop()  { s.t.Stop() }

func (s *stallTimer) fired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fire
}

// pump reads an upload's body in a goroutine, so that the request can end
// (its context ends, or the upload stalls) even while a Read of the body
// blocks; the transport waits for the body's Read to return. It touches its
// stall timer, if any, at each chunk. It hides the body's Close, if any:
// the caller closes its reader.
type pump struct {
	ctx   context.Context
	ch    chan chunk
	t     *stallTimer
	cur   []byte
	err   error
	start sync.Once
	r     io.Reader
}

type chunk struct {
	b   []byte
	err error
}

func newPump(r io.Reader, ctx context.Context, t *stallTimer) *pump {
	return &pump{ctx: ctx, ch: make(chan chunk), t: t, r: r}
}

// run reads into two buffers in turn: the reader copies out of one while
// run fills the other, and ch being unbuffered, run fills a buffer again
// only once the reader took the next one.
func (p *pump) run() {
	bufs := [2][]byte{make([]byte, 32<<10), make([]byte, 32<<10)}
	for i := 0; ; i++ {
		buf := bufs[i%2]
		n, err := p.r.Read(buf)
		select {
		case p.ch <- chunk{buf[:n], err}:
		case <-p.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func (p *pump) Read(b []byte) (int, error) {
	p.start.Do(func() { go p.run() })
	for len(p.cur) == 0 && p.err == nil {
		select {
		case c := <-p.ch:
			p.cur, p.err = c.b, c.err
			if p.t != nil {
				p.t.touch() // also after the last read: the answer has the timeout to come
			}
		case <-p.ctx.Done():
			return 0, p.ctx.Err()
		}
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	if len(p.cur) == 0 && p.err != nil {
		return n, p.err
	}
	return n, nil
}

// stallBody touches its timer at each read of a download.
type stallBody struct {
	io.ReadCloser
	t *stallTimer
}

func (s *stallBody) Read(p []byte) (int, error) {
	s.t.touch()
	return s.ReadCloser.Read(p)
}

func jobPath(id string) (string, error) {
	if id == "" {
		return "", errors.New("empty job id: list jobs with spate list")
	}
	return "/v1/jobs/" + url.PathEscape(id), nil
}

// Overview is GET /v1/overview: the cluster at a glance.
func (c *Client) Overview(ctx context.Context) (v1.Overview, error) {
	var o v1.Overview
	err := c.call(ctx, request{method: "GET", path: "/v1/overview"}, &o)
	return o, err
}

// Config is GET /v1/config: the JobManager's version and configuration.
func (c *Client) Config(ctx context.Context) (v1.Config, error) {
	var o v1.Config
	err := c.call(ctx, request{method: "GET", path: "/v1/config"}, &o)
	return o, err
}

// Jobs is GET /v1/jobs: the jobs' ids and states.
func (c *Client) Jobs(ctx context.Context) (v1.JobIDsWithStatus, error) {
	var o v1.JobIDsWithStatus
	err := c.call(ctx, request{method: "GET", path: "/v1/jobs"}, &o)
	return o, err
}

// JobsOverview is GET /v1/jobs/overview: the jobs with their times and task
// counts.
func (c *Client) JobsOverview(ctx context.Context) (v1.JobsOverview, error) {
	var o v1.JobsOverview
	err := c.call(ctx, request{method: "GET", path: "/v1/jobs/overview"}, &o)
	return o, err
}

// Job is GET /v1/jobs/{id}: a job with its vertices.
func (c *Client) Job(ctx context.Context, id string) (v1.JobDetails, error) {
	var o v1.JobDetails
	p, err := jobPath(id)
	if err != nil {
		return o, err
	}
	err = c.call(ctx, request{method: "GET", path: p}, &o)
	return o, err
}

// CancelJob is PATCH /v1/jobs/{id}?mode=cancel: it asks the JobManager to
// cancel the job and returns; WaitJob follows the cancellation.
func (c *Client) CancelJob(ctx context.Context, id string) error {
	p, err := jobPath(id)
	if err != nil {
		return err
	}
	return c.call(ctx, request{method: "PATCH", path: p, query: url.Values{"mode": {"cancel"}}}, nil)
}

// AcknowledgeResult is POST /v1/jobs/{id}/acknowledge-result: it tells
// the cluster that this client has the ended job's result, so that a
// per-job cluster waiting for it may go.
func (c *Client) AcknowledgeResult(ctx context.Context, id string) error {
	p, err := jobPath(id)
	if err != nil {
		return err
	}
	return c.call(ctx, request{method: "POST", path: p + "/acknowledge-result"}, nil)
}

// JobExceptions is GET /v1/jobs/{id}/exceptions: a job's failures.
func (c *Client) JobExceptions(ctx context.Context, id string) (v1.JobExceptions, error) {
	var o v1.JobExceptions
	p, err := jobPath(id)
	if err != nil {
		return o, err
	}
	err = c.call(ctx, request{method: "GET", path: p + "/exceptions"}, &o)
	return o, err
}

// TaskManagers is GET /v1/taskmanagers: the registered TaskManagers.
func (c *Client) TaskManagers(ctx context.Context) (v1.TaskManagers, error) {
	var o v1.TaskManagers
	err := c.call(ctx, request{method: "GET", path: "/v1/taskmanagers"}, &o)
	return o, err
}

// UploadArtifact uploads the program binary at path (POST /v1/artifacts),
// streaming it from the file. The answer's ID names it in SubmitJob.
func (c *Client) UploadArtifact(ctx context.Context, path string) (v1.ArtifactUploadResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return v1.ArtifactUploadResponse{}, fmt.Errorf("upload artifact: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return v1.ArtifactUploadResponse{}, fmt.Errorf("upload artifact: %w", err)
	}
	if !st.Mode().IsRegular() {
		return v1.ArtifactUploadResponse{}, fmt.Errorf("upload artifact: %s is not a regular file: give the program's binary (go build -o PROGRAM)", path)
	}
	return c.UploadArtifactReader(ctx, f, st.Size())
}

// EnsureArtifact makes the program binary at path available to the
// JobManager and returns its id, as UploadArtifact, but sends it only if
// the JobManager does not hold it yet: artifacts are content-addressed, so
// a program submitted again, or with several jobs, is uploaded once.
func (c *Client) EnsureArtifact(ctx context.Context, path string) (v1.ArtifactUploadResponse, error) {
	f, err := os.Open(path)
	if err != nil {
		return v1.ArtifactUploadResponse{}, fmt.Errorf("upload artifact: %w", err)
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return v1.ArtifactUploadResponse{}, fmt.Errorf("upload artifact: read %s: %w", path, err)
	}
	id := hex.EncodeToString(h.Sum(nil))
	resp, done, err := c.send(ctx, request{method: "HEAD", path: "/v1/artifacts/" + id})
	if err == nil {
		resp.Body.Close()
		done()
		return v1.ArtifactUploadResponse{ID: id, Size: size, Status: "exists"}, nil
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		return v1.ArtifactUploadResponse{}, err
	}
	up, err := c.UploadArtifact(ctx, path)
	if err == nil && up.ID != id {
		err = fmt.Errorf("upload artifact: %s changed while it was sent (sha256 %s, then %s)", path, id, up.ID)
	}
	return up, err
}

// UploadArtifactReader uploads a program binary read from r (POST
// /v1/artifacts), streaming it. size is its length in bytes, or -1 if
// unknown. r is not closed.
func (c *Client) UploadArtifactReader(ctx context.Context, r io.Reader, size int64) (v1.ArtifactUploadResponse, error) {
	var o v1.ArtifactUploadResponse
	if size < 0 {
		size = -1
	}
	err := c.call(ctx, request{method: "POST", path: "/v1/artifacts", raw: r, rawSize: size, stall: true}, &o)
	return o, err
}

// OpenArtifact downloads the program binary id (GET /v1/artifacts/{id}),
// returning its body to read and close, and its size (-1 if unknown).
func (c *Client) OpenArtifact(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	if id == "" {
		return nil, 0, errors.New("empty artifact id: give the id POST /v1/artifacts returned")
	}
	resp, done, err := c.send(ctx, request{method: "GET", path: "/v1/artifacts/" + url.PathEscape(id), stall: true})
	if err != nil {
		return nil, 0, err
	}
	return &doneBody{ReadCloser: resp.Body, done: done}, resp.ContentLength, nil
}

// doneBody ends its request when closed.
type doneBody struct {
	io.ReadCloser
	done func()
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

// SubmitJob is POST /v1/jobs: it submits a job and returns its id.
func (c *Client) SubmitJob(ctx context.Context, req v1.JobSubmitRequest) (string, error) {
	var o v1.JobSubmitResponse
	if err := c.call(ctx, request{method: "POST", path: "/v1/jobs", in: req}, &o); err != nil {
		return "", err
	}
	if o.JobID == "" {
		return "", fmt.Errorf("jobmanager %s: POST /v1/jobs: the answer has no job id", c.addr)
	}
	return o.JobID, nil
}

// WaitJob polls GET /v1/jobs/{id} until the job's state is terminal
// (v1.TerminalJobStatus) and returns its last details. It polls often at
// first (every tenth of the time waited so far, at least 5 ms), so that a
// job's start and a short job's end are seen within a few milliseconds,
// then every poll (1s if not positive). It calls onChange, if not nil, with every new state, the first
// included. It returns early with the error of a failed poll, or when ctx
// ends with an error wrapping ctx.Err() and the last details seen.
func (c *Client) WaitJob(ctx context.Context, id string, poll time.Duration, onChange func(status string)) (v1.JobDetails, error) {
	if poll <= 0 {
		poll = time.Second
	}
	var last v1.JobDetails
	start := time.Now()
	for {
		d, err := c.Job(ctx, id)
		if err != nil {
			return last, err
		}
		if d.State != last.State && onChange != nil {
			onChange(d.State)
		}
		last = d
		if v1.TerminalJobStatus(d.State) {
			return d, nil
		}
		t := time.NewTimer(min(max(time.Since(start)/10, 5*time.Millisecond), poll))
		select {
		case <-ctx.Done():
			t.Stop()
			return last, fmt.Errorf("wait for job %s (last %s): %w", id, last.State, ctx.Err())
		case <-t.C:
		}
	}
}
