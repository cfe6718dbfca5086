package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spate-dev/spate/internal/checkpoint/storage"
)

// ReadStore is the Store of a restore: it reads state files inline or at
// their URLs in checkpoint storage (file://, or s3:// with Opts, the job's
// s3.* options), checked against their handles, and writes nothing.
type ReadStore struct{ Opts storage.Options }

// Put refuses: a restore only reads state files.
func (ReadStore) Put(context.Context, int64, string, []byte) (Handle, error) {
	return Handle{}, errors.New("snapshot: a restore only reads state files")
}

// Get returns the bytes h locates, checked against its size and SHA-256.
func (s ReadStore) Get(ctx context.Context, h Handle) ([]byte, error) {
	if h.URL == "" {
		return InlineStore{}.Get(ctx, h)
	}
	r, err := storage.OpenObject(ctx, h.URL, s.Opts)
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read state file %s: %w", h.URL, err)
	}
	return data, Check(h, data)
}
