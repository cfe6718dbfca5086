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
//	barrier n ─► PrepareCommit(n): flush, fsync and close the current file
//	             and rename it (and any completed by rolling since) to its
//	             pre-committed name ".part-<subtask>-<counter>.a<attempt>.pending";
//	             the name pairs (pre-committed, final) are the committable,
//	             which goes into checkpoint n
//	n complete ─► Commit(committable): rename each file to its final name
//	restore    ─► Begin(attempt, the restored checkpoint's committables):
//	             commit them, delete this subtask's in-progress files of
//	             earlier attempts (written after that checkpoint: aborted)
//
// Pre-committed files have a name of their own because a restore at
// another parallelism (a rescale, a savepoint) may hand old subtask j's
// committable to new subtask k: the abort of new subtask j deletes only
// ".inprogress" files, so it cannot delete a file that k is yet to commit.
// A pre-committed file whose checkpoint never completed (the job failed
// between the barrier and the completion and restored an earlier
// checkpoint) stays aside as a hidden ".pending" file: no restore names
// it, nothing renames or deletes it, and it may be deleted once no job
// writes to dir. It is not deleted at the restore because, after a
// rescale, no subtask can tell its own aborted pre-committed files from
// those another subtask's restored committables still name.
//
// Commit is idempotent: a file whose final name exists and whose
// pre-committed name does not was committed before; a committed file is
// never overwritten (a final name that exists while its pre-committed file
// does too is an error). Readers of dir (Lines, CSV, JSONLines) skip
// hidden names, so they only ever see committed files.

// committable is what one PrepareCommit hands to the checkpoint: files to
// rename, in order.
type committable struct {
	Files []committedFile `json:"files"`
}

type committedFile struct {
	// InProgress is the pre-committed file's base name in the sink's
	// directory (".pending"; ".inprogress" in committables of earlier
	// versions, which Commit renames all the same).
	InProgress string `json:"inProgress"`
	Final      string `json:"final"` // base name in the sink's directory
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
// w's: what they hold was written after the restored checkpoint. It never
// deletes a pre-committed (".pending") file, which a restored committable,
// maybe another subtask's after a rescale, may name.
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
		rest, ok = strings.CutSuffix(rest, inProgressSuffix)
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
// by rolling since the last call, renamed to its pre-committed name; the
// files are the committable of the checkpoint.
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
	for i, p := range w.pending {
		pre, ok := strings.CutSuffix(p.path, inProgressSuffix)
		if !ok {
			w.err = fmt.Errorf("%s: checkpoint %d: %s is not an in-progress file", w.name, checkpoint, p.path)
			return nil, w.err
		}
		pre += preCommittedSuffix
		if err := os.Rename(p.path, pre); err != nil {
			w.pending = w.pending[i:]
			w.err = fmt.Errorf("%s: checkpoint %d: pre-committing %s: %w", w.name, checkpoint, p.path, err)
			return nil, w.err
		}
		c.Files = append(c.Files, committedFile{InProgress: filepath.Base(pre), Final: filepath.Base(p.final)})
	}
	w.pending = nil
	syncDir(w.dir)
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
