// Package blob is the JobManager's artifact store: program binaries kept in
// a directory under the SHA-256 of their content, which is their id. An
// upload is written to a temporary file, hashed as it streams, limited in
// size, and renamed into place only when complete, so a reader never sees a
// partial artifact and a second upload of the same binary costs nothing.
//
// An artifact's modification time is its last use: an upload, or a read
// through Open or Has, sets it. Sweep removes the artifacts unused for a
// grace period that its caller does not keep (those no job references), so
// that a long-lived cluster holds only the programs it runs.
package blob

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/spate-dev/spate/internal/config"
)

// KeyCleanupInterval is Flink's blob.service.cleanup.interval: how long an
// artifact no job references is kept, in the JobManager's blob store and
// in the TaskManagers' caches, before it is deleted. A bare number is
// seconds (Flink's form); a unit may be given ("500 ms", "10 min").
const KeyCleanupInterval = "blob.service.cleanup.interval"

// DefaultCleanupInterval is KeyCleanupInterval's default, Flink's hour.
const DefaultCleanupInterval = time.Hour

// CleanupInterval reads KeyCleanupInterval from c (registered in
// internal/config as a duration above zero whose bare number is seconds).
func CleanupInterval(c config.Config) (time.Duration, error) {
	return c.Duration(KeyCleanupInterval, DefaultCleanupInterval)
}

// ErrTooLarge is returned when an upload exceeds the store's limit.
var ErrTooLarge = errors.New("artifact too large")

// ErrNotFound is returned for an id the store does not hold.
var ErrNotFound = errors.New("no such artifact")

// ErrInvalidID is returned for an id that is not a SHA-256 in hex.
var ErrInvalidID = errors.New("invalid artifact id")

var idPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Store keeps artifacts in a directory.
type Store struct {
	dir   string
	limit int64
	// mu orders renames into place, uses and Sweep's removals, so that
	// an artifact just used is never removed.
	mu sync.Mutex
}

// Open returns a store in dir, creating it; uploads larger than limit bytes
// are refused. Partial uploads a previous owner left are removed.
func Open(dir string, limit int64) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	if partial, err := filepath.Glob(filepath.Join(dir, ".upload-*")); err == nil {
		for _, p := range partial {
			os.Remove(p)
		}
	}
	return &Store{dir: dir, limit: limit}, nil
}

// Put stores what r yields and returns its id and size. If want is not
// empty, the content must hash to it.
func (s *Store) Put(r io.Reader, want string) (id string, size int64, err error) {
	tmp, err := os.CreateTemp(s.dir, ".upload-*")
	if err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	defer func() {
		tmp.Close()
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, s.limit+1))
	if err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	if n > s.limit {
		return "", 0, fmt.Errorf("%w: more than %d bytes (raise blob.max-size)", ErrTooLarge, s.limit)
	}
	if n == 0 {
		return "", 0, errors.New("store artifact: empty upload: send the program binary as the request body")
	}
	id = hex.EncodeToString(h.Sum(nil))
	if want != "" && want != id {
		return "", 0, fmt.Errorf("store artifact: content hashes to %s, not the announced %s: the upload was corrupted", id, want)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(tmp.Name(), s.path(id)); err != nil {
		return "", 0, fmt.Errorf("store artifact: %w", err)
	}
	return id, n, nil
}

// Open opens the artifact id and returns its size; it counts as a use.
func (s *Store) Open(id string) (io.ReadCloser, int64, error) {
	if !idPattern.MatchString(id) {
		return nil, 0, fmt.Errorf("%w %q: want 64 lowercase hex digits (a SHA-256)", ErrInvalidID, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touchLocked(id)
	f, err := os.Open(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w %s: upload it first (POST /v1/artifacts)", ErrNotFound, id)
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// Has reports whether the store holds id; it counts as a use.
func (s *Store) Has(id string) bool {
	if !idPattern.MatchString(id) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.touchLocked(id)
}

func (s *Store) touchLocked(id string) bool {
	now := time.Now()
	return os.Chtimes(s.path(id), now, now) == nil
}

// Sweep removes the artifacts last used before cutoff for which keep
// returns false, and returns their ids. keep is called with the store's
// lock held: it must not call the store.
func (s *Store) Sweep(cutoff time.Time, keep func(id string) bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("sweep blob store %s: %w", s.dir, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		id := e.Name()
		if !idPattern.MatchString(id) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) || keep(id) {
			continue
		}
		if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, id)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("sweep blob store %s: %w", s.dir, errors.Join(errs...))
	}
	return removed, nil
}

func (s *Store) path(id string) string { return filepath.Join(s.dir, id) }
