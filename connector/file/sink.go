package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/spate-dev/spate"
)

// writeBufferSize is the size of the buffered writer of a part file.
const writeBufferSize = 64 << 10

// Suffixes of the hidden part files: being written (or complete and
// waiting for the job's end), and pre-committed to a checkpoint (see
// sink_txn.go).
const (
	inProgressSuffix   = ".inprogress"
	preCommittedSuffix = ".pending"
)

// SinkOption configures a file sink.
type SinkOption func(*sinkConfig)

type sinkConfig struct {
	json     bool
	format   any // func(T) string of the sink's T
	rollSize int64
}

// JSON makes the sink encode each record as one line of JSON
// (encoding/json, without HTML escaping). It replaces an earlier Format.
func JSON() SinkOption {
	return func(c *sinkConfig) { c.json, c.format = true, nil }
}

// Format makes the sink write each record as the line f returns. T must be
// the record type of the sink, or the sink fails to open. It replaces an
// earlier JSON.
func Format[T any](f func(T) string) SinkOption {
	return func(c *sinkConfig) { c.json, c.format = false, f }
}

// RollSize makes each subtask start a new part file once the current one
// has grown beyond size bytes; a part file therefore holds at most size
// bytes plus one record. Zero or a negative size, the default, never rolls:
// each subtask writes a single part file.
func RollSize(size int64) SinkOption {
	return func(c *sinkConfig) { c.rollSize = size }
}

// Sink returns a sink that writes records as lines of text into part files
// in dir, which is created if missing. By default a string record is written
// as it is, a fmt.Stringer by its String method and any other value as by
// fmt.Sprint; JSON and Format choose other encodings. A record whose text
// contains newlines spans several lines.
//
// Each subtask writes ".part-<subtask>-<counter>.inprogress", buffered.
// When the file is complete (it exceeded the RollSize) it is flushed,
// synced and closed, and waits under that name, hidden, for the job's end.
// Only when the job ends successfully (spate.SinkWriter's Close with nil)
// are the subtask's files renamed, in order, to their final names
// "part-<subtask>-<counter>": a reader that takes the part-* files of dir
// as the result never takes a failed or cancelled job's partial output for
// the whole. A failed or cancelled job leaves its files aside, as Flink's
// file sink does: they keep their hidden in-progress names, with what was
// written up to the failure, for inspection; nothing ever renames them, and
// they may be deleted once no job writes to dir. Counters start after the
// highest one already present in dir for the subtask (finished or in
// progress), so existing files are never overwritten. A subtask that
// receives no records writes no file.
//
// The guarantee is the one SinkWriter documents: a job publishes all of
// its part files or none, also when its subtasks run in several workers
// (each waits for the JobManager to see the whole job finish), up to a
// rename that fails midway. An unbounded job never ends successfully, so
// without checkpoints it publishes nothing. With checkpoints
// (execution.checkpointing.interval) the sink commits in two phases
// instead, as Flink's file sink does in streaming mode: each checkpoint's
// barrier completes the current file and the checkpoint's completion
// renames it, exactly once across restarts (see sink_txn.go and
// docs/sinks.md).
func Sink[T any](dir string, opts ...SinkOption) spate.Sink[T] {
	var cfg sinkConfig
	for _, o := range opts {
		o(&cfg)
	}
	return fileSink[T]{dir: dir, cfg: cfg}
}

type fileSink[T any] struct {
	dir string
	cfg sinkConfig
}

// Open implements spate.Sink.
func (s fileSink[T]) Open(ctx context.Context, info spate.SinkInfo) (spate.SinkWriter[T], error) {
	name := fmt.Sprintf("file.Sink[%v]", reflect.TypeFor[T]())
	if s.dir == "" {
		return nil, fmt.Errorf("%s: empty directory name", name)
	}
	if info.Subtask < 0 {
		return nil, fmt.Errorf("%s: invalid subtask %d", name, info.Subtask)
	}
	w := &sinkWriter[T]{name: name, dir: s.dir, subtask: info.Subtask, roll: s.cfg.rollSize}
	switch {
	case s.cfg.format != nil:
		f, ok := s.cfg.format.(func(T) string)
		if !ok {
			return nil, fmt.Errorf("%s: Format function has type %T, want func(%v) string", name, s.cfg.format, reflect.TypeFor[T]())
		}
		w.format = f
	case s.cfg.json:
		w.enc = json.NewEncoder(&w.jbuf)
		w.enc.SetEscapeHTML(false)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	next, err := nextPartCounter(s.dir, info.Subtask)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	w.counter = next
	return w, nil
}

// nextPartCounter returns the counter after the highest of the part files
// (finished, in progress or pre-committed) of subtask in dir.
func nextPartCounter(dir string, subtask int) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	prefix := "part-" + strconv.Itoa(subtask) + "-"
	next := 0
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") {
			n, _ = strings.CutPrefix(n, ".")
			var ok bool
			if n, ok = strings.CutSuffix(n, inProgressSuffix); !ok {
				if n, ok = strings.CutSuffix(n, preCommittedSuffix); !ok {
					continue
				}
			}
			n, _, _ = strings.Cut(n, ".") // a transactional writer's ".a<attempt>"
		}
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		if c, err := strconv.Atoi(rest); err == nil && c >= next {
			next = c + 1
		}
	}
	return next, nil
}

// sinkWriter writes the part files of one subtask.
type sinkWriter[T any] struct {
	name    string
	dir     string
	subtask int
	roll    int64
	format  func(T) string
	enc     *json.Encoder // encodes into jbuf when writing JSON
	jbuf    bytes.Buffer

	counter int    // counter of the next part file
	path    string // the in-progress file, "" if none is open
	f       *os.File
	bw      *bufio.Writer
	size    int64 // bytes written to the current part file
	// pending holds the complete part files (synced and closed, still
	// under their in-progress names) that the job's success publishes.
	pending []pendingPart
	line    []byte
	err     error // sticky failure
	closed  bool
	// txn is set by Begin: files become visible through Commit, and the
	// in-progress names carry the attempt (see sink_txn.go).
	txn     bool
	attempt int64
}

// pendingPart is a complete part file waiting for the job's end.
type pendingPart struct{ path, final string }

// Write implements spate.SinkWriter.
func (w *sinkWriter[T]) Write(v T) error {
	if w.closed {
		return fmt.Errorf("%s: write after close", w.name)
	}
	if w.err != nil {
		return w.err
	}
	line, err := w.encode(v)
	if err != nil {
		return fmt.Errorf("%s: %w", w.name, err) // the record is skipped; the writer stays usable
	}
	if w.f == nil {
		if err := w.openPart(); err != nil {
			w.err = err
			return err
		}
	}
	n, err := w.bw.Write(line)
	w.size += int64(n)
	if err != nil {
		w.err = fmt.Errorf("%s: writing %s: %w", w.name, w.path, err)
		return w.err
	}
	if w.roll > 0 && w.size > w.roll {
		if err := w.completePart(); err != nil {
			w.err = err
			return err
		}
	}
	return nil
}

// encode returns the line of v, with its "\n".
func (w *sinkWriter[T]) encode(v T) ([]byte, error) {
	switch {
	case w.format != nil:
		w.line = append(append(w.line[:0], w.format(v)...), '\n')
	case w.enc != nil:
		w.jbuf.Reset()
		if err := w.enc.Encode(v); err != nil { // appends "\n"
			return nil, fmt.Errorf("encoding record as JSON: %w", err)
		}
		return w.jbuf.Bytes(), nil
	default:
		w.line = append(append(w.line[:0], formatRecord(v)...), '\n')
	}
	return w.line, nil
}

// formatRecord returns the default text of a record.
func formatRecord(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case fmt.Stringer:
		if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return "<nil>"
		}
		return x.String()
	default:
		return fmt.Sprint(v)
	}
}

func (w *sinkWriter[T]) partName(inProgress bool) string {
	n := "part-" + strconv.Itoa(w.subtask) + "-" + strconv.Itoa(w.counter)
	if inProgress {
		if w.txn {
			n += ".a" + strconv.FormatInt(w.attempt, 10)
		}
		n = "." + n + inProgressSuffix
	}
	return filepath.Join(w.dir, n)
}

// openPart creates the next in-progress part file.
func (w *sinkWriter[T]) openPart() error {
	path := w.partName(true)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("%s: creating part file: %w", w.name, err)
	}
	w.f, w.path, w.size = f, path, 0
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, writeBufferSize)
	} else {
		w.bw.Reset(f)
	}
	return nil
}

// completePart flushes, syncs and closes the current part file, which
// becomes pending: it keeps its in-progress name until the job's success.
func (w *sinkWriter[T]) completePart() error {
	f, path := w.f, w.path
	w.f, w.path = nil, ""
	final := w.partName(false)
	w.counter++
	if err := w.bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("%s: writing %s: %w", w.name, path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", w.name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", w.name, err)
	}
	w.pending = append(w.pending, pendingPart{path: path, final: final})
	return nil
}

// publish renames the pending part files to their final names, in order.
func (w *sinkWriter[T]) publish() error {
	if len(w.pending) == 0 {
		return nil
	}
	for i, p := range w.pending {
		if err := os.Rename(p.path, p.final); err != nil {
			w.pending = w.pending[i:]
			return fmt.Errorf("%s: publishing part file %s: %w", w.name, p.final, err)
		}
	}
	w.pending = nil
	syncDir(w.dir)
	return nil
}

// syncDir makes a rename in dir durable, as far as the platform allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every file system supports it
		d.Close()
	}
}

// Close implements spate.SinkWriter. On the job's success (err nil) it
// completes the current part file and publishes every pending one under
// its final name. Otherwise it flushes and closes the current file and
// leaves all of them under their in-progress names: a failed or cancelled
// job publishes nothing.
func (w *sinkWriter[T]) Close(err error) error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err != nil || w.err != nil {
		// Leave the files aside, with what was written, for inspection.
		var ferr error
		if f := w.f; f != nil {
			w.f = nil
			if w.err == nil { // after a failed write the buffer is unusable
				ferr = w.bw.Flush()
			}
			ferr = errors.Join(ferr, f.Close())
			if ferr != nil {
				ferr = fmt.Errorf("%s: closing %s: %w", w.name, w.path, ferr)
			}
		}
		if err == nil {
			return errors.Join(w.err, ferr) // in a job, a failed Write fails it first
		}
		return ferr
	}
	if w.f != nil {
		if err := w.completePart(); err != nil {
			return err
		}
	}
	return w.publish()
}
