package savepoint

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/snapshot"
)

// The S3 savepoint tests write and load savepoints in a real S3 protocol
// server started by the test: gofakes3 (in memory) behind
// net/http/httptest, reached over TCP by the store's minio-go client. A
// fault handler in front of it fails every request from the Nth on.

const s3Bucket = "savepoints"

type s3Server struct {
	backend  *s3mem.Backend
	srv      *httptest.Server
	requests atomic.Int64
	failFrom atomic.Int64
}

func newS3Server(t testing.TB) *s3Server {
	t.Helper()
	s := &s3Server{backend: s3mem.New()}
	if err := s.backend.CreateBucket(s3Bucket); err != nil {
		t.Fatal(err)
	}
	inner := gofakes3.New(s.backend, gofakes3.WithIntegrityCheck(true)).Server()
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.requests.Add(1)
		if f := s.failFrom.Load(); f != 0 && n >= f {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected failure of request %d</Message></Error>`, n)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// options are the store's options for the server: path-style, static keys.
func (s *s3Server) options() storage.Options {
	return storage.Options{S3: storage.S3Options{
		Endpoint: s.srv.URL, Region: "us-east-1", AccessKey: "spate", SecretKey: "spate-secret",
		PathStyle: true, PartSize: 5 << 20, RequestTimeout: 5 * time.Second, MaxRetries: 1,
	}}
}

// keys lists the bucket's objects under prefix, as the server has them.
func (s *s3Server) keys(t testing.TB, prefix string) []string {
	t.Helper()
	l, err := s.backend.ListBucket(s3Bucket, &gofakes3.Prefix{Prefix: prefix, HasPrefix: true}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range l.Contents {
		out = append(out, c.Key)
	}
	return out
}

// readStore reads restored state files inline or at their URLs,
// file:// or s3://, as a worker does.
type readStore struct{ opts storage.Options }

func (readStore) Put(context.Context, int64, string, []byte) (snapshot.Handle, error) {
	return snapshot.Handle{}, fmt.Errorf("readStore only reads")
}

func (s readStore) Get(ctx context.Context, h snapshot.Handle) ([]byte, error) {
	if h.URL == "" {
		return snapshot.InlineStore{}.Get(ctx, h)
	}
	r, err := storage.OpenObject(ctx, h.URL, s.opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return data, snapshot.Check(h, data)
}

// restoredFrom returns what each operator (by node) of g restores from
// m, by subtask, its files read from wherever they are (file:// or
// s3://), as restored does.
func restoredFrom(t *testing.T, g *jobgraph.JobGraph, m checkpoint.Metadata, opts storage.Options) map[[2]int][]string {
	t.Helper()
	ctx := context.Background()
	store := readStore{opts}
	out := map[[2]int][]string{}
	r := snapshot.NewRunner(ctx, store, nil, nil)
	for _, st := range m.Subtasks {
		v := g.Vertices[st.Vertex]
		ts := r.KeyedTask(st.Vertex, st.Subtask, v.Parallelism, v.MaxParallelism)
		ops := map[int]*recorder{}
		for _, op := range v.Operators {
			ops[op.ID] = &recorder{}
			ts.Add(int32(op.ID), ops[op.ID])
		}
		var shared []snapshot.Handle
		for _, h := range st.States {
			k, err := snapshot.ParseKind(h.Kind)
			if err != nil || !k.Remap {
				t.Fatalf("handle kind %q: %+v %v, want an operator's state", h.Kind, k, err)
			}
			sh := k.Apply(snapshot.Handle{URL: h.URL, Inline: h.Inline, Size: h.Size, SHA256: h.SHA256,
				KeyGroups: [2]int32{int32(h.KeyGroupStart), int32(h.KeyGroupEnd)}}, int32(h.Operator), h.OperatorUID)
			if k.Shared {
				shared = append(shared, sh)
			} else if err := ts.Restore(ctx, store, sh); err != nil {
				t.Fatal(err)
			}
		}
		if len(shared) > 0 {
			if err := ts.RestoreShared(ctx, store, shared); err != nil {
				t.Fatal(err)
			}
		}
		for id, rec := range ops {
			for _, e := range rec.got {
				name := e.Name
				if len(e.Data) > 0 {
					name += string(rune('0' + e.Data[0]))
				}
				out[[2]int{id, st.Subtask}] = append(out[[2]int{id, st.Subtask}], name)
			}
		}
	}
	return out
}

// copyObjects moves every object under prefix from to prefix to, through
// the S3 protocol, as a user moving a savepoint with an S3 tool would.
func copyObjects(t *testing.T, s *s3Server, from, to string) {
	t.Helper()
	ctx := context.Background()
	st, err := storage.OpenWith("s3://"+s3Bucket, s.options())
	if err != nil {
		t.Fatal(err)
	}
	names, err := st.List(ctx, from)
	if err != nil || len(names) == 0 {
		t.Fatalf("list %s: %v %v", from, names, err)
	}
	for _, k := range names {
		data, err := readObject(ctx, st, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Publish(ctx, to+strings.TrimPrefix(k, from), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Delete(ctx, from); err != nil {
		t.Fatal(err)
	}
}

// TestSavepointInS3: a savepoint written to s3://bucket/prefix (the
// savepoint-dir of a job whose s3.* options name the server), moved to
// another prefix, loads and restores the same state as one on a file
// system, also by a changed job.
func TestSavepointInS3(t *testing.T) {
	ctx := context.Background()
	srv := newS3Server(t)
	opts := srv.options()
	g := graph(t, 2)
	m := checkpointOf(g)
	path, err := Write(ctx, "s3://"+s3Bucket+"/team/savepoints", opts, Job{ID: "0123456789abcdef", Name: "job", Parallelism: []int{2, 2}}, m, readInline)
	if err != nil {
		t.Fatal(err)
	}
	prefix, ok := strings.CutPrefix(path, "s3://"+s3Bucket+"/")
	if !ok || !strings.HasPrefix(prefix, "team/savepoints/savepoint-012345-") {
		t.Fatalf("savepoint at %s: want s3://%s/team/savepoints/savepoint-<job prefix>-<random>", path, s3Bucket)
	}
	keys := srv.keys(t, prefix+"/")
	if len(keys) != 7 || keys[len(keys)-1] != prefix+"/"+storage.MetadataName && !slices.Contains(keys, prefix+"/"+storage.MetadataName) {
		t.Fatalf("savepoint objects %v: want 6 state files and %s", keys, storage.MetadataName)
	}
	local, err := Write(ctx, t.TempDir(), storage.Options{}, Job{ID: "0123456789abcdef", Name: "job", Parallelism: []int{2, 2}}, m, readInline)
	if err != nil {
		t.Fatal(err)
	}
	// Moved (its paths are relative), by its directory or its _metadata.
	copyObjects(t, srv, prefix, "elsewhere/sp")
	if _, err := Load(ctx, path, opts); err == nil {
		t.Fatalf("Load of %s after the move succeeded", path)
	}
	for _, moved := range []string{"s3://" + s3Bucket + "/elsewhere/sp", "s3://" + s3Bucket + "/elsewhere/sp/" + storage.MetadataName} {
		snap, err := Load(ctx, moved, opts)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Checkpoint != 7 || len(snap.Operators) != 3 {
			t.Fatalf("%s: checkpoint %d with %d operators, want 7 with 3", moved, snap.Checkpoint, len(snap.Operators))
		}
		for _, g := range []*jobgraph.JobGraph{g, graph(t, 2, jobgraph.StreamNode{ID: 2, Kind: "map", Name: "Double"})} {
			got, err := Assign(g, snap, false)
			if err != nil {
				t.Fatal(err)
			}
			lsnap, err := Load(ctx, local, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := Assign(g, lsnap, false)
			if err != nil {
				t.Fatal(err)
			}
			gs, ws := restoredFrom(t, g, got, opts), restoredFrom(t, g, want, storage.Options{})
			if fmt.Sprint(gs) != fmt.Sprint(ws) || len(gs) != 6 {
				t.Fatalf("restored from S3 %v, from a file system %v", gs, ws)
			}
		}
	}
	// A missing state file is named.
	if _, err := srv.backend.DeleteObject(s3Bucket, "elsewhere/sp/op-0-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, "s3://"+s3Bucket+"/elsewhere/sp", opts); err == nil || !strings.Contains(err.Error(), "op-0-1") {
		t.Fatalf("Load with a state file missing: %v, want an error naming op-0-1", err)
	}
}

// TestSavepointS3UploadFailure: the object store fails part way through
// a savepoint's upload (from each request on in turn): the write fails,
// and nothing under the savepoint directory looks like a complete
// savepoint (_metadata is written last), so no Load succeeds.
func TestSavepointS3UploadFailure(t *testing.T) {
	ctx := context.Background()
	srv := newS3Server(t)
	opts := srv.options()
	m := checkpointOf(graph(t, 2))
	job := Job{ID: "0123456789abcdef", Parallelism: []int{2, 2}}
	// A full write's requests: how many there are to fail in turn.
	before := srv.requests.Load()
	if _, err := Write(ctx, "s3://"+s3Bucket+"/count", opts, job, m, readInline); err != nil {
		t.Fatal(err)
	}
	total := srv.requests.Load() - before
	for n := int64(1); n <= total; n++ {
		dir := fmt.Sprintf("failed-%d", n)
		srv.failFrom.Store(srv.requests.Load() + n)
		_, err := Write(ctx, "s3://"+s3Bucket+"/"+dir, opts, job, m, readInline)
		srv.failFrom.Store(0)
		if err == nil {
			t.Fatalf("request %d of %d failed, yet the savepoint was written", n, total)
		}
		for _, k := range srv.keys(t, dir+"/") {
			if strings.HasSuffix(k, "/"+storage.MetadataName) {
				t.Fatalf("request %d of %d failed (%v), yet %s exists: a savepoint that looks complete", n, total, err, k)
			}
		}
		for _, k := range srv.keys(t, dir+"/") {
			sp, _ := splitURL(k)
			if _, lerr := Load(ctx, "s3://"+s3Bucket+"/"+sp, opts); lerr == nil {
				t.Fatalf("request %d failed, yet %s loads", n, sp)
			}
		}
	}
	t.Logf("each of a savepoint's %d requests failed in turn: no complete savepoint", total)
}
