package spate

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/snapshot"
)

// TestRestoreObjectsFromS3: a local run restoring a savepoint in an
// object store (spate run --target local -s s3://…) reads its state
// files at their s3:// URLs with the job's s3.* options, checked against
// their handles; inline state needs no store.
func TestRestoreObjectsFromS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("spate-sp"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithIntegrityCheck(true)).Server())
	defer srv.Close()
	opts := storage.Options{S3: storage.S3Options{Endpoint: srv.URL, Region: "us-east-1", AccessKey: "a", SecretKey: "b", PathStyle: true, RequestTimeout: 5 * time.Second, MaxRetries: 1}}
	st, err := storage.OpenWith("s3://spate-sp/savepoints", opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := []byte("the state of one operator of one subtask")
	if err := st.Publish(ctx, "savepoint-x/op-0-0", data); err != nil {
		t.Fatal(err)
	}
	h := snapshot.Handle{URL: st.URL("savepoint-x/op-0-0"), Size: int64(len(data)), SHA256: snapshot.Sum(data)}
	if !strings.HasPrefix(h.URL, "s3://spate-sp/savepoints/") {
		t.Fatalf("state file URL %s", h.URL)
	}
	tests := []struct {
		name    string
		h       snapshot.Handle
		want    string
		wantErr string
	}{
		{name: "s3 file", h: h, want: string(data)},
		{name: "inline", h: snapshot.Handle{Inline: []byte("inline"), Size: 6, SHA256: snapshot.Sum([]byte("inline"))}, want: "inline"},
		{name: "damaged", h: snapshot.Handle{URL: h.URL, Size: h.Size, SHA256: snapshot.Sum([]byte("other"))}, wantErr: "SHA-256"},
		{name: "missing", h: snapshot.Handle{URL: st.URL("savepoint-x/op-9-9"), Size: 1}, wantErr: "op-9-9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := snapshot.ReadStore{Opts: opts}.Get(ctx, tc.h)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Get: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("Get = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
