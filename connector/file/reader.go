package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/spate-dev/spate"
)

// readBufferSize is the size of the buffered reader of each file.
const readBufferSize = 64 << 10

// maxRecordText is the number of bytes of a malformed record kept in
// spate.RecordError.Record.
const maxRecordText = 200

// decoder yields the records of one file: next returns the next record,
// io.EOF at the end of the file, a *spate.RecordError for a malformed record
// (after which it can be called again) or any other error for a failure to
// read.
type decoder[T any] interface {
	next() (T, error)
}

// fileReader is the spate.SourceReader shared by the sources: it reads the
// files of its split one after the other, each through a decoder made by
// open.
type fileReader[T any] struct {
	name  string // source name for messages, e.g. "file.Lines"
	files []string
	open  func(path string, r io.Reader) decoder[T]

	i      int        // index in files of the next file to open
	f      *os.File   // the open file, nil between files
	cur    decoder[T] // decoder of f
	err    error      // sticky failure
	closed bool

	// at, for a reader restored from a checkpoint, is where to start in
	// each file, and resume opens a decoder there (splits.go).
	at     []filePos
	resume func(path string, r io.Reader, p filePos) decoder[T]

	unread []int64 // Pending's bytes of files j.. and after, read at its first call (-1: unknown)
}

func newFileReader[T any](name string, files []string, open func(string, io.Reader) decoder[T]) *fileReader[T] {
	return &fileReader[T]{name: name, files: files, open: open}
}

// Read implements spate.SourceReader.
func (r *fileReader[T]) Read(ctx context.Context, buf []T) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("%s: read after close", r.name)
	}
	if r.err != nil {
		return 0, r.err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(buf) {
		if r.cur == nil {
			if r.i >= len(r.files) {
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
			path := r.files[r.i]
			var at filePos
			if r.at != nil {
				at = r.at[r.i]
			}
			if at.done {
				r.i++
				continue
			}
			f, err := os.Open(path)
			if err != nil {
				r.err = fmt.Errorf("%s: %w", r.name, err)
				return n, r.err
			}
			if at.off > 0 {
				if _, err := f.Seek(at.off, io.SeekStart); err != nil {
					f.Close()
					r.err = fmt.Errorf("%s: resume %s at byte %d: %w", r.name, path, at.off, err)
					return n, r.err
				}
			}
			if r.resume != nil {
				r.f, r.cur = f, r.resume(path, f, at)
			} else {
				r.f, r.cur = f, r.open(path, f)
			}
		}
		v, err := r.cur.next()
		if err == nil {
			buf[n] = v
			n++
			continue
		}
		if err == io.EOF {
			path := r.files[r.i]
			cerr := r.f.Close()
			r.f, r.cur = nil, nil
			r.i++
			if cerr != nil {
				r.err = fmt.Errorf("%s: closing %s: %w", r.name, path, cerr)
				return n, r.err
			}
			continue
		}
		var re *spate.RecordError
		if errors.As(err, &re) {
			return n, err
		}
		r.err = err
		return n, err
	}
	return n, nil
}

// Close implements spate.SourceReader.
func (r *fileReader[T]) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cur = nil
	if r.f != nil {
		f := r.f
		r.f = nil
		if err := f.Close(); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	return nil
}

// lineReader reads the lines of a file, counting them.
type lineReader struct {
	br   *bufio.Reader
	line int64  // number of the line last returned, 1-based
	off  int64  // bytes of the file consumed: where the next line starts
	acc  []byte // accumulates lines longer than the buffer
}

func newLineReader(r io.Reader, size int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, size)}
}

// readLine returns the next line without its "\n" or "\r\n" terminator, or
// io.EOF after the last line. A last line without terminator is returned
// as is (a lone "\r" at its end is kept); an empty file has no lines. The
// slice is valid until the next call.
func (l *lineReader) readLine() ([]byte, error) {
	if cap(l.acc) > 4*readBufferSize {
		l.acc = nil // do not keep the memory of one huge line
	}
	l.acc = l.acc[:0]
	for {
		chunk, err := l.br.ReadSlice('\n')
		l.off += int64(len(chunk))
		if err == bufio.ErrBufferFull {
			l.acc = append(l.acc, chunk...)
			continue
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		line := chunk
		if len(l.acc) > 0 {
			l.acc = append(l.acc, chunk...)
			line = l.acc
		}
		if err == io.EOF {
			if len(line) == 0 {
				return nil, io.EOF
			}
			l.line++
			return line, nil
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		l.line++
		return line, nil
	}
}

// recordText returns b as the text of a malformed record: truncated to
// about maxRecordText bytes at a rune boundary, with "..." marking a cut.
func recordText(b []byte) string {
	if len(b) <= maxRecordText {
		return string(b)
	}
	cut := maxRecordText
	for cut > maxRecordText-utf8.UTFMax && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + "..."
}
