package file

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Two-phase commit with checkpoints (the writer's side of
// spate.TransactionalSinkWriter). When the job takes checkpoints the
// runtime calls Begin before the first Write; the writer then names its
// in-progress files with its attempt, ".part-<subtask>-<counter>.a<attempt>.inprogress",
// and:
//
//	barrier n ─► PrepareCommit(n): flush, fsync and close the current file;
//	             its name pair (in-progress, final) is the committable,
//	             which goes into checkpoint n
//	n complete ─► Commit(committable): rename each file to its final name
//	restore    ─► Begin(attempt, the restored checkpoint's committables):
//	             commit them, delete this subtask's in-progress files of
//	             earlier attempts (written after that checkpoint: aborted)
//
// Commit is idempotent: a file whose final name exists and whose
// in-progress name does not was committed before; a committed file is
// never overwritten (a final name that exists while its in-progress file
// does too is an error). Readers of dir (Lines, CSV, JSONLines) skip
// hidden names, so they only ever see committed files.

// committable is what one PrepareCommit hands to the checkpoint: files to
// rename, in order.
type committable struct {
	Files []committedFile `json:"files"`
}

type committedFile struct {
	InProgress string `json:"inProgress"` // base names in the sink's directory
	Final      string `json:"final"`
}

// Begin implements spate.TransactionalSinkWriter: from now on files become
// visible only through Commit. restored holds the committables of the
// checkpoint the subtask restores, which Begin commits; this subtask's
// in-progress files of earlier attempts are aborted (deleted).
func (w *sinkWriter[T]) Begin(attempt int64, restored [][]byte) error {
	if w.f != nil || len(w.pending) > 0 {
		return fmt.Errorf("%s: Begin after the first Write", w.name)
	}
	w.txn, w.attempt = true, attempt
	for _, c := range restored {
		if err := w.Commit(c); err != nil {
			return err
		}
	}
	if restored != nil {
		if err := w.abortEarlier(); err != nil {
			return err
		}
	}
	// Counters go on after every final file, so none is ever rewritten.
	next, err := nextPartCounter(w.dir, w.subtask)
	if err != nil {
		return fmt.Errorf("%s: %w", w.name, err)
	}
	w.counter = max(w.counter, next)
	return nil
}

// abortEarlier deletes this subtask's in-progress files of attempts before
// w's: what they hold was written after the restored checkpoint.
func (w *sinkWriter[T]) abortEarlier() error {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("%s: %w", w.name, err)
	}
	prefix := ".part-" + strconv.Itoa(w.subtask) + "-"
	for _, e := range entries {
		n := e.Name()
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		rest, ok = strings.CutSuffix(rest, ".inprogress")
		if !ok {
			continue
		}
		_, a, ok := strings.Cut(rest, ".a")
		if !ok {
			continue
		}
		if at, err := strconv.ParseInt(a, 10, 64); err == nil && at < w.attempt {
			if err := os.Remove(filepath.Join(w.dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: abort %s: %w", w.name, n, err)
			}
		}
	}
	return nil
}

// PrepareCommit implements spate.TransactionalSinkWriter: the file being
// written is completed (flushed, synced, closed) and, with any completed
// by rolling since the last call, is the committable of the checkpoint.
func (w *sinkWriter[T]) PrepareCommit(checkpoint int64) ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.f != nil {
		if err := w.completePart(); err != nil {
			w.err = err
			return nil, err
		}
	}
	if len(w.pending) == 0 {
		return nil, nil
	}
	var c committable
	for _, p := range w.pending {
		c.Files = append(c.Files, committedFile{InProgress: filepath.Base(p.path), Final: filepath.Base(p.final)})
	}
	w.pending = nil
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%s: checkpoint %d: %w", w.name, checkpoint, err)
	}
	return b, nil
}

// Commit implements spate.TransactionalSinkWriter. It may run concurrently
// with Write: it touches only the files the committable names.
func (w *sinkWriter[T]) Commit(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	var c committable
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("%s: malformed committable %q: %w", w.name, b, err)
	}
	for _, f := range c.Files {
		if strings.ContainsAny(f.InProgress+f.Final, `/\`) || !strings.HasPrefix(f.InProgress, ".") || strings.HasPrefix(f.Final, ".") {
			return fmt.Errorf("%s: committable names %q -> %q, not part files of the sink's directory", w.name, f.InProgress, f.Final)
		}
		from, to := filepath.Join(w.dir, f.InProgress), filepath.Join(w.dir, f.Final)
		_, ferr := os.Lstat(from)
		_, terr := os.Lstat(to)
		switch {
		case terr == nil && errors.Is(ferr, fs.ErrNotExist):
			continue // committed before
		case terr == nil:
			return fmt.Errorf("%s: commit %s: %s exists already; a committed file is never overwritten (does another job write to %s?)", w.name, f.InProgress, f.Final, w.dir)
		case ferr != nil:
			return fmt.Errorf("%s: commit %s: the pre-committed file is gone: %w", w.name, f.Final, ferr)
		}
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("%s: commit %s: %w", w.name, f.Final, err)
		}
	}
	syncDir(w.dir)
	return nil
}
