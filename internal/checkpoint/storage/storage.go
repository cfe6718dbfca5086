// Package storage keeps checkpoints: one small interface, Store, addressed
// by URL (state.checkpoints.dir): file:// (or a plain path), and s3://
// for S3-compatible object stores (s3.go); and on top of it the layout
// and the metadata of checkpoints, the same for every Store:
//
//	<dir>/<job-id>/chk-<n>/<state files>     written by the job's subtasks
//	<dir>/<job-id>/chk-<n>/_metadata         written last, atomically, by the JobManager
//
// A checkpoint exists only once its _metadata is published: on a file
// system Publish writes a temporary file, makes it durable and renames it
// into place; on S3 it is one PUT, which replaces an object whole; so a
// reader sees the whole object or none. State files are written the same
// way (on S3 a large one as a multipart upload, invisible until it is
// completed and aborted if any part fails). The metadata records each state
// file's size and SHA-256, and its own checksum. Load refuses a
// checkpoint whose _metadata is truncated or corrupt, or one of whose
// state files is missing or does not match, naming what is wrong, and
// falls back to the previous completed checkpoint.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spate-dev/spate/internal/config"
)

// Store is a checkpoint storage: objects under slash-separated names
// relative to its root.
type Store interface {
	// Create writes object name (replacing it) with the bytes written to
	// the returned writer; they are durable once Close returned nil. A
	// failed or abandoned write leaves no object under name.
	Create(ctx context.Context, name string) (io.WriteCloser, error)
	// Publish writes object name atomically and durably: a reader sees
	// all of data or the object as it was.
	Publish(ctx context.Context, name string, data []byte) error
	// Open reads object name; an absent object is an error satisfying
	// errors.Is(err, os.ErrNotExist).
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the names of the objects under prefix (a "directory"),
	// sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes every object under prefix; nothing there is no error.
	Delete(ctx context.Context, prefix string) error
	// URL is the URL of object name, for state handles and messages.
	URL(name string) string
}

// Open returns the store at dir with the default options: a file://
// URL or a local path, or s3://bucket/prefix (credentials from the
// AWS_* environment variables). See OpenConfig.
func Open(dir string) (Store, error) { return OpenWith(dir, Options{}) }

// OpenConfig returns the store at dir with the storage options of c (its
// s3.* keys).
func OpenConfig(dir string, c config.Config) (Store, error) {
	o, err := OptionsFrom(c)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage %q: %w", dir, err)
	}
	return OpenWith(dir, o)
}

// OpenWith returns the store at dir: a file:// URL or a local path, or
// s3://bucket/prefix in an S3-compatible object store that o.S3
// describes.
func OpenWith(dir string, o Options) (Store, error) {
	if dir == "" {
		return nil, errors.New("checkpoint storage: no directory: set state.checkpoints.dir")
	}
	path := dir
	if strings.Contains(dir, "://") {
		u, err := url.Parse(dir)
		if err != nil {
			return nil, fmt.Errorf("checkpoint storage %q (state.checkpoints.dir): %w", dir, err)
		}
		switch u.Scheme {
		case "s3", "s3a", "s3p":
			// s3a and s3p are the schemes of Flink's Hadoop and Presto
			// plugins; the store is the same.
			return openS3(dir, u, o.S3)
		case "file":
		default:
			return nil, fmt.Errorf("checkpoint storage %q (state.checkpoints.dir): scheme %q is not supported; use file:///path, s3://bucket/prefix or a path", dir, u.Scheme)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("checkpoint storage %q (state.checkpoints.dir): a file URL names no host: file:///path", dir)
		}
		path = u.Path
	}
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("checkpoint storage %q: %w", dir, err)
		}
		path = abs
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint storage %q (state.checkpoints.dir): %w", dir, err)
	}
	return &fileStore{root: filepath.Clean(path)}, nil
}

// OpenObject reads the object at URL u (file:// or s3://), for a reader
// that has a state file's URL rather than the store's root: a worker
// restoring a checkpoint. An absent object is an error satisfying
// errors.Is(err, os.ErrNotExist).
func OpenObject(ctx context.Context, u string, o Options) (io.ReadCloser, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("state file %q: %w", u, err)
	}
	switch pu.Scheme {
	case "file":
		return os.Open(pu.Path)
	case "s3", "s3a", "s3p":
		s, err := openS3(u, &url.URL{Scheme: pu.Scheme, Host: pu.Host}, o.S3)
		if err != nil {
			return nil, err
		}
		return s.Open(ctx, strings.TrimPrefix(pu.Path, "/"))
	}
	return nil, fmt.Errorf("state file %s: scheme %q is not supported (file://, s3://)", u, pu.Scheme)
}

// fileStore is a Store in a local (or mounted) directory.
type fileStore struct{ root string }

var _ Store = (*fileStore)(nil)

func (s *fileStore) path(name string) (string, error) {
	clean := filepath.Clean("/" + name)
	if clean == "/" || strings.Contains(name, "\\") {
		return "", fmt.Errorf("checkpoint storage: bad object name %q", name)
	}
	return filepath.Join(s.root, filepath.FromSlash(clean)), nil
}

func (s *fileStore) URL(name string) string {
	p, err := s.path(name)
	if err != nil {
		p = filepath.Join(s.root, name)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(p)}).String()
}

// fileWriter writes a temporary file renamed into place at Close.
type fileWriter struct {
	f         *os.File
	final     string
	closed    bool
	writeErrs error
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		w.writeErrs = err
	}
	return n, err
}

func (w *fileWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.writeErrs
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.final)
	}
	if err == nil {
		err = syncDir(filepath.Dir(w.final))
	}
	if err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("write %s: %w", w.final, err)
	}
	return nil
}

func (s *fileStore) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", p, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", p, err)
	}
	return &fileWriter{f: f, final: p}, nil
}

func (s *fileStore) Publish(ctx context.Context, name string, data []byte) error {
	w, err := s.Create(ctx, name)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func (s *fileStore) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

func (s *fileStore) List(ctx context.Context, prefix string) ([]string, error) {
	p, err := s.path(prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(s.root, path)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", p, err)
	}
	slices.Sort(out)
	return out, nil
}

func (s *fileStore) Delete(ctx context.Context, prefix string) error {
	p, err := s.path(prefix)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
