package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/config"
)

// The S3 tests run the store against a real S3 protocol server started by
// the test: gofakes3 (an in-memory S3 implementation speaking the REST
// protocol: signed requests, multipart uploads, multi-object delete)
// behind net/http/httptest, reached over TCP by minio-go as any store
// would be. A fault handler in front of it counts the requests and can
// fail or stall them from the Nth on.

const testBucket = "checkpoints"

// s3Server is an in-test S3 server and its fault injector.
type s3Server struct {
	backend *s3mem.Backend
	srv     *httptest.Server
	// requests counts every request; failFrom, if not 0, answers the
	// failFrom-th and every later one with 500 InternalError (failOnce
	// only that one); stallAt stalls the stallAt-th until the client
	// gives up.
	requests atomic.Int64
	failFrom atomic.Int64
	failOnce atomic.Bool
	stallAt  atomic.Int64
	release  chan struct{} // ends the stalls
	// log records "METHOD query-kind" of every request, for the
	// multipart checks.
	mu  sync.Mutex
	log []string
}

func newS3Server(t testing.TB) *s3Server {
	t.Helper()
	s := &s3Server{backend: s3mem.New(), release: make(chan struct{})}
	if err := s.backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	faker := gofakes3.New(s.backend, gofakes3.WithIntegrityCheck(true))
	inner := faker.Server()
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.requests.Add(1)
		s.mu.Lock()
		s.log = append(s.log, requestKind(r))
		s.mu.Unlock()
		if at := s.stallAt.Load(); at != 0 && n == at {
			// Read part of the body, then hang: a store that stops
			// mid-upload.
			// (The server notices no client that gives up while it does
			// not read: the test's end releases it.)
			io.CopyN(io.Discard, r.Body, 1024)
			select {
			case <-r.Context().Done():
			case <-s.release:
			}
			return
		}
		if f := s.failFrom.Load(); f != 0 && n >= f && (!s.failOnce.Load() || n == f) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected failure of request %d</Message></Error>`, n)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.release) }) // before Close: cleanups run last first
	return s
}

// requestKind names an S3 request by method and sub-resource.
func requestKind(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case q.Has("uploads"):
		return r.Method + " uploads"
	case q.Has("partNumber"):
		return r.Method + " part"
	case q.Has("uploadId"):
		return r.Method + " uploadId"
	case q.Has("delete"):
		return r.Method + " delete"
	}
	return r.Method
}

func (s *s3Server) kinds() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, k := range s.log {
		m[k]++
	}
	return m
}

// heal ends every injected fault.
func (s *s3Server) heal() {
	s.failFrom.Store(0)
	s.failOnce.Store(false)
	s.stallAt.Store(0)
}

// keys lists the bucket's objects under prefix, as the server has them.
func (s *s3Server) keys(t testing.TB, prefix string) []string {
	t.Helper()
	l, err := s.backend.ListBucket(testBucket, &gofakes3.Prefix{Prefix: prefix, HasPrefix: true}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range l.Contents {
		out = append(out, c.Key)
	}
	return out
}

// options are the store's options for the server: path-style, static
// keys, small parts, no retries unless retries.
func (s *s3Server) options(retries int) S3Options {
	return S3Options{
		Endpoint: s.srv.URL, Region: "us-east-1", AccessKey: "spate", SecretKey: "spate-secret",
		PathStyle: true, PartSize: minPartSize, RequestTimeout: 5 * time.Second, MaxRetries: retries,
	}
}

func (s *s3Server) open(t testing.TB, prefix string, o S3Options) Store {
	t.Helper()
	st, err := OpenWith("s3://"+testBucket+"/"+prefix, Options{S3: o})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestS3RoundTrip(t *testing.T) {
	srv := newS3Server(t)
	s := srv.open(t, "team/a", srv.options(1))
	if u := s.URL("x/y"); u != "s3://checkpoints/team/a/x/y" {
		t.Fatalf("URL = %s", u)
	}
	want := writeCheckpoint(t, s, 3)
	writeCheckpoint(t, s, 4)
	got, err := Load(context.Background(), s, job, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != 3 || len(got.Subtasks) != 3 || got.Size() != want.Size() {
		t.Fatalf("Load = %+v, want %+v", got, want)
	}
	data, err := ReadState(context.Background(), s, got.Subtasks[1].States[0])
	if err != nil || string(data) != "state of subtask 1 at checkpoint 3" {
		t.Fatalf("ReadState = %q, %v", data, err)
	}
	if _, err := s.Open(context.Background(), "no/such/object"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing object = %v, want os.ErrNotExist", err)
	}
	ids, err := Checkpoints(context.Background(), s, job)
	if err != nil || len(ids) != 2 || ids[0] != 3 || ids[1] != 4 {
		t.Fatalf("Checkpoints = %v, %v; want [3 4]", ids, err)
	}
	if err := Discard(context.Background(), s, job, 3); err != nil {
		t.Fatal(err)
	}
	if left := srv.keys(t, "team/a/"+job+"/chk-3/"); len(left) != 0 {
		t.Fatalf("after Discard the server still has %v", left)
	}
	if ids, _ := Checkpoints(context.Background(), s, job); len(ids) != 1 || ids[0] != 4 {
		t.Fatalf("after Discard: %v, want [4]", ids)
	}
	// A prefix that is a prefix of another's name is not that other.
	other := srv.open(t, "team", srv.options(1))
	if names, _ := other.List(context.Background(), "a/"+job+"/chk-4"); len(names) != 3 {
		t.Fatalf("List through the parent prefix = %v, want chk-4's 3 objects", names)
	}
	if err := Discard(context.Background(), s, job, 99); err != nil {
		t.Fatalf("Discard of nothing: %v", err)
	}
}

// TestS3Multipart: an object above the part size goes up as a multipart
// upload of parts of that size, is invisible until Close completes it,
// and reads back whole; a smaller one is one PUT.
func TestS3Multipart(t *testing.T) {
	srv := newS3Server(t)
	s := srv.open(t, "", srv.options(1))
	ctx := context.Background()
	big := make([]byte, 2*minPartSize+12345)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	w, err := s.Create(ctx, "large/state")
	if err != nil {
		t.Fatal(err)
	}
	// Odd-sized writes, across part boundaries.
	for rest := big; len(rest) > 0; {
		n := min(len(rest), 777_777)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if names, _ := s.List(ctx, "large"); len(names) != 0 {
		t.Fatalf("an upload not yet completed is listed: %v", names)
	}
	if _, err := s.Open(ctx, "large/state"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an upload not yet completed can be opened: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	k := srv.kinds()
	if k["POST uploads"] != 1 || k["PUT part"] != 3 || k["POST uploadId"] != 1 {
		t.Fatalf("requests %v: want one multipart upload of 3 parts, completed", k)
	}
	r, err := s.Open(ctx, "large/state")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(big))
	}
	before := srv.kinds()
	if err := s.Publish(ctx, "small", []byte("meta")); err != nil {
		t.Fatal(err)
	}
	if after := srv.kinds(); after["PUT"] != before["PUT"]+1 || after["POST uploads"] != before["POST uploads"] {
		t.Fatalf("a small object: requests %v then %v, want one PUT", before, after)
	}
}

// failCheckpoint runs checkpoint id of a job of one subtask whose state
// (size bytes, spilled to a state file: multipart above the part size)
// is acknowledged inline, through a coordinator and WriteMetadata on s,
// as the JobManager does. It returns whether the checkpoint completed and
// the write's error.
func runCheckpoint(t *testing.T, c *checkpoint.Coordinator, s Store, now time.Time, state []byte) (completed bool, writeErr error) {
	t.Helper()
	ctx := context.Background()
	var id checkpoint.ID
	for _, e := range c.Tick(now) {
		if tr, ok := e.(checkpoint.Trigger); ok {
			id = tr.ID
		}
	}
	if id == 0 {
		t.Fatalf("no trigger at %v", now)
	}
	st := checkpoint.Subtask{Vertex: 0, Index: 0}
	_, eff := c.Acknowledge(now, checkpoint.Ack{Subtask: st, Attempt: 1, ID: id, States: []checkpoint.Handle{{Kind: "subtask", Inline: state, Size: int64(len(state))}}})
	var all []checkpoint.Effect
	for _, e := range eff {
		if wm, ok := e.(checkpoint.WriteMetadata); ok {
			var path string
			path, writeErr = WriteMetadata(ctx, s, job, wm.Meta)
			_, more := c.MetadataWritten(now, wm.Meta.ID, 1, path, writeErr)
			all = append(all, more...)
		}
	}
	for _, e := range all {
		switch e := e.(type) {
		case checkpoint.NotifyComplete:
			completed = completed || e.ID == id
		case checkpoint.Discard:
			Discard(ctx, s, job, e.ID)
		}
	}
	return completed, writeErr
}

func newCoordinator(now time.Time, retained int) *checkpoint.Coordinator {
	c := checkpoint.New(checkpoint.Config{Interval: time.Second, Timeout: time.Minute, TolerableFailures: 100, Retained: retained}, []checkpoint.Vertex{{Parallelism: 1}})
	c.Deployed(now, 1, nil)
	c.TaskState(now, 1, checkpoint.Subtask{Vertex: 0, Index: 0}, "RUNNING")
	return c
}

// bigState is a state that spills to a multipart state file of 3 parts.
func bigState(seed byte) []byte {
	b := make([]byte, 2*minPartSize+4096)
	for i := range b {
		b[i] = byte(i) ^ seed
	}
	return b
}

// TestS3FailedUploadNeverCompletes: checkpoint 1 completes; checkpoint 2,
// whose state goes up as a multipart upload, meets a server that fails
// every request from the Nth on, for every N the write makes. Checkpoint
// 2 fails (no notify-complete); storage yields checkpoint 1 to restore,
// whole; nothing of 2 is left, uploads included; and after the server
// heals, checkpoint 3 completes.
func TestS3FailedUploadNeverCompletes(t *testing.T) {
	// The requests a checkpoint's write makes, counted on a clean run.
	probe := newS3Server(t)
	base := time.UnixMilli(0)
	c := newCoordinator(base, 1)
	if ok, err := runCheckpoint(t, c, probe.open(t, "p", probe.options(1)), base.Add(time.Second), bigState(1)); !ok || err != nil {
		t.Fatalf("a clean checkpoint did not complete: %v", err)
	}
	perCheckpoint := int(probe.requests.Load())
	t.Logf("a checkpoint's write is %d requests: %v", perCheckpoint, probe.kinds())
	for n := 1; n <= perCheckpoint; n++ {
		t.Run(fmt.Sprintf("request %d of %d fails", n, perCheckpoint), func(t *testing.T) {
			srv := newS3Server(t)
			s := srv.open(t, "p", srv.options(1))
			c := newCoordinator(base, 1)
			if ok, err := runCheckpoint(t, c, s, base.Add(time.Second), bigState(1)); !ok {
				t.Fatalf("checkpoint 1 did not complete: %v", err)
			}
			srv.failFrom.Store(srv.requests.Load() + int64(n))
			ok, err := runCheckpoint(t, c, s, base.Add(2*time.Second), bigState(2))
			if ok || err == nil {
				t.Fatalf("checkpoint 2 completed (%v, %v) although request %d failed", ok, err, n)
			}
			if latest, _ := c.Latest(); latest.ID != 1 {
				t.Fatalf("the coordinator's latest checkpoint is %d, want 1", latest.ID)
			}
			srv.heal()
			ids, _ := Checkpoints(context.Background(), s, job)
			m, _, skipped, ok, err := LoadLatest(context.Background(), s, job, append(ids, 2), nil)
			if !ok || err != nil || m.ID != 1 {
				t.Fatalf("LoadLatest = %d, %v, %v (skipped %v), want checkpoint 1", m.ID, ok, err, skipped)
			}
			if data, err := ReadState(context.Background(), s, m.Subtasks[0].States[0]); err != nil || !bytes.Equal(data, bigState(1)) {
				t.Fatalf("checkpoint 1's state: %d bytes, %v", len(data), err)
			}
			// The coordinator discarded 2; what a failed abort left is
			// gone with it.
			if err := Discard(context.Background(), s, job, 2); err != nil {
				t.Fatal(err)
			}
			if left := srv.keys(t, "p/"+job+"/chk-2/"); len(left) != 0 {
				t.Errorf("the failed checkpoint left %v", left)
			}
			assertNoUploads(t, s)
			if ok, err := runCheckpoint(t, c, s, base.Add(3*time.Second), bigState(3)); !ok || err != nil {
				t.Fatalf("checkpoint 3 after the server healed: %v, %v", ok, err)
			}
		})
	}
}

// assertNoUploads fails t if s's bucket holds an incomplete upload.
func assertNoUploads(t *testing.T, s Store) {
	t.Helper()
	st := s.(*s3Store)
	for up := range st.client.ListIncompleteUploads(context.Background(), st.bucket, "", true) {
		if up.Err != nil {
			t.Fatal(up.Err)
		}
		t.Errorf("an incomplete upload is left: %s (%s)", up.Key, up.UploadID)
	}
}

// TestS3TransientFailureRetried: one failed request is retried (minio-go's
// retries, on by default) and the checkpoint completes, whole.
func TestS3TransientFailureRetried(t *testing.T) {
	srv := newS3Server(t)
	s := srv.open(t, "p", srv.options(0))
	base := time.UnixMilli(0)
	c := newCoordinator(base, 1)
	srv.failOnce.Store(true)
	srv.failFrom.Store(3) // the second part
	if ok, err := runCheckpoint(t, c, s, base.Add(time.Second), bigState(1)); !ok || err != nil {
		t.Fatalf("a checkpoint with one failed request did not complete: %v", err)
	}
	m, err := Load(context.Background(), s, job, 1)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := ReadState(context.Background(), s, m.Subtasks[0].States[0]); err != nil || !bytes.Equal(data, bigState(1)) {
		t.Fatalf("state: %d bytes, %v", len(data), err)
	}
}

// TestS3StalledUploadFails: a server that stops answering in the middle
// of a part's upload fails the write within s3.request.timeout: the
// checkpoint fails, and the previous one is restored.
func TestS3StalledUploadFails(t *testing.T) {
	srv := newS3Server(t)
	o := srv.options(1)
	o.RequestTimeout = 500 * time.Millisecond
	s := srv.open(t, "p", o)
	base := time.UnixMilli(0)
	c := newCoordinator(base, 1)
	if ok, err := runCheckpoint(t, c, s, base.Add(time.Second), bigState(1)); !ok {
		t.Fatalf("checkpoint 1: %v", err)
	}
	srv.stallAt.Store(srv.requests.Load() + 3) // the second part
	start := time.Now()
	ok, err := runCheckpoint(t, c, s, base.Add(2*time.Second), bigState(2))
	took := time.Since(start)
	if ok || err == nil {
		t.Fatalf("checkpoint 2 completed (%v, %v) on a stalled server", ok, err)
	}
	t.Logf("the stalled write failed after %v: %v", took.Round(time.Millisecond), err)
	if took > 30*time.Second {
		t.Errorf("the stalled write took %v to fail; the request timeout is %v", took, o.RequestTimeout)
	}
	srv.heal()
	if m, _, _, ok, err := LoadLatest(context.Background(), s, job, []checkpoint.ID{1, 2}, nil); !ok || err != nil || m.ID != 1 {
		t.Fatalf("LoadLatest = %d, %v, %v; want checkpoint 1", m.ID, ok, err)
	}
}

// TestS3Retention: with state.checkpoints.num-retained 2, the coordinator's
// discards delete the subsumed checkpoints from the bucket.
func TestS3Retention(t *testing.T) {
	srv := newS3Server(t)
	s := srv.open(t, "r", srv.options(1))
	base := time.UnixMilli(0)
	c := newCoordinator(base, 2)
	for i := 1; i <= 4; i++ {
		if ok, err := runCheckpoint(t, c, s, base.Add(time.Duration(i)*time.Second), bytes.Repeat([]byte{byte(i)}, InlineLimit+10)); !ok {
			t.Fatalf("checkpoint %d: %v", i, err)
		}
	}
	ids, err := Checkpoints(context.Background(), s, job)
	if err != nil || len(ids) != 2 || ids[0] != 3 || ids[1] != 4 {
		t.Fatalf("checkpoints kept %v (%v), want [3 4]", ids, err)
	}
	for _, k := range srv.keys(t, "r/") {
		if !strings.Contains(k, "/chk-3/") && !strings.Contains(k, "/chk-4/") {
			t.Errorf("a discarded checkpoint's object is left: %s", k)
		}
	}
}

// TestS3DamagedSkipped: objects damaged in the bucket (truncated,
// corrupt, missing) make LoadLatest skip the checkpoint with a message
// naming the object, and use the previous one.
func TestS3DamagedSkipped(t *testing.T) {
	url := "s3://" + testBucket + "/d/" + job + "/chk-2/"
	tests := []struct {
		name     string
		damage   func(t *testing.T, srv *s3Server, key string)
		object   string
		wantSkip []string
	}{
		{name: "truncated metadata", object: MetadataName, damage: truncate, wantSkip: []string{url + "_metadata is truncated or corrupt"}},
		{name: "corrupt metadata", object: MetadataName, damage: flip(`"attempt":1`, `"attempt":7`), wantSkip: []string{url + "_metadata is corrupt: its checksum does not match"}},
		{name: "truncated state file", object: "0-0-1-state", damage: truncate, wantSkip: []string{"subtask 0/0", url + "0-0-1-state has"}},
		{name: "corrupt state file", object: "0-1-1-state", damage: flip("state", "STATE"), wantSkip: []string{"subtask 0/1", url + "0-1-1-state is corrupt: its SHA-256 is"}},
		{name: "missing state file", object: "0-1-1-state", damage: func(t *testing.T, srv *s3Server, key string) {
			srv.backend.DeleteObject(testBucket, key)
		}, wantSkip: []string{url + "0-1-1-state is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newS3Server(t)
			s := srv.open(t, "d", srv.options(1))
			writeCheckpoint(t, s, 1)
			writeCheckpoint(t, s, 2)
			tt.damage(t, srv, "d/"+job+"/chk-2/"+tt.object)
			m, _, skipped, ok, err := LoadLatest(context.Background(), s, job, []checkpoint.ID{1, 2}, nil)
			if err != nil || !ok || m.ID != 1 {
				t.Fatalf("LoadLatest = %d, ok %v, %v; want checkpoint 1", m.ID, ok, err)
			}
			if len(skipped) != 1 || !errors.Is(skipped[0], ErrDamaged) {
				t.Fatalf("skipped = %v, want checkpoint 2 as damaged", skipped)
			}
			for _, w := range tt.wantSkip {
				if !strings.Contains(skipped[0].Error(), w) {
					t.Errorf("skip message %q does not name %q", skipped[0], w)
				}
			}
		})
	}
}

// truncate replaces object key by its first half, behind the store's
// back.
func truncate(t *testing.T, srv *s3Server, key string) {
	b := srv.object(t, key)
	srv.replace(t, key, b[:len(b)/2])
}

// flip replaces old by new in object key.
func flip(old, new string) func(t *testing.T, srv *s3Server, key string) {
	return func(t *testing.T, srv *s3Server, key string) {
		b := srv.object(t, key)
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%s holds no %q", key, old)
		}
		srv.replace(t, key, bytes.Replace(b, []byte(old), []byte(new), 1))
	}
}

func (s *s3Server) object(t *testing.T, key string) []byte {
	t.Helper()
	o, err := s.backend.GetObject(testBucket, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Contents.Close()
	b, err := io.ReadAll(o.Contents)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *s3Server) replace(t *testing.T, key string, b []byte) {
	t.Helper()
	if _, err := s.backend.PutObject(testBucket, key, map[string]string{}, bytes.NewReader(b), int64(len(b)), nil); err != nil {
		t.Fatal(err)
	}
}

func TestS3Options(t *testing.T) {
	for _, tt := range []struct {
		name    string
		entries map[string]string
		want    S3Options
		wantErr string
	}{
		{name: "defaults", want: S3Options{PartSize: defaultPartSize, RequestTimeout: defaultRequestTimeout}},
		{name: "all", entries: map[string]string{
			KeyS3Endpoint: "http://127.0.0.1:9000", KeyS3Region: "eu-west-1", KeyS3AccessKey: "a", KeyS3SecretKey: "s",
			KeyS3PathStyle: "true", KeyS3PartSize: "16m", KeyS3RequestTimeout: "30 s",
		}, want: S3Options{Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", AccessKey: "a", SecretKey: "s", PathStyle: true, PartSize: 16 << 20, RequestTimeout: 30 * time.Second}},
		{name: "part too small", entries: map[string]string{KeyS3PartSize: "1m"}, wantErr: "s3.upload.min.part.size: 1048576 bytes is below"},
		{name: "half credentials", entries: map[string]string{KeyS3AccessKey: "a"}, wantErr: "set both s3.access-key and s3.secret-key"},
		{name: "bad bool", entries: map[string]string{KeyS3PathStyle: "yes please"}, wantErr: KeyS3PathStyle},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c config.Config
			for k, v := range tt.entries {
				c.Set(k, v)
			}
			o, err := OptionsFrom(c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("OptionsFrom = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || o.S3 != tt.want {
				t.Fatalf("OptionsFrom = %+v, %v; want %+v", o.S3, err, tt.want)
			}
		})
	}
	for _, tt := range []struct{ dir, endpoint, wantErr string }{
		{dir: "s3:///prefix", wantErr: "names its bucket"},
		{dir: "s3://b/p", endpoint: "ftp://host", wantErr: "want http(s)://host[:port]"},
		{dir: "s3://b/p", endpoint: "http://host/path", wantErr: "want http(s)://host[:port]"},
	} {
		if _, err := OpenWith(tt.dir, Options{S3: S3Options{Endpoint: tt.endpoint}}); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("OpenWith(%q, endpoint %q) = %v, want an error containing %q", tt.dir, tt.endpoint, err, tt.wantErr)
		}
	}
}

// FuzzOpenURL: any state.checkpoints.dir either fails to open or gives a
// store whose URLs resolve back to their object names.
func FuzzOpenURL(f *testing.F) {
	for _, s := range []string{"s3://b/p", "s3a://bucket/a/b/", "s3://b", "file:///tmp/x", "s3://b/../x", "gs://b", "s3://b/p?x=1#f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dir string) {
		if !strings.HasPrefix(dir, "s3") {
			return // file stores create directories
		}
		s, err := OpenWith(dir, Options{S3: S3Options{Endpoint: "http://127.0.0.1:1", AccessKey: "a", SecretKey: "b"}})
		if err != nil {
			return
		}
		u := s.URL("job/chk-1/_metadata")
		name, err := objectName(s, u)
		if err != nil || name != "job/chk-1/_metadata" {
			t.Fatalf("dir %q: URL %q resolves to %q, %v", dir, u, name, err)
		}
	})
}
