package file

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spate-dev/spate"
)

// JSONLines returns a bounded source that decodes one JSON document per line
// of the files named by paths into a T, with encoding/json. Blank lines are
// skipped. A line that does not decode is returned from Read as a
// *spate.RecordError with the file, the line number and the cause, and
// reading continues with the next line. Paths are as for Lines.
func JSONLines[T any](paths ...string) spate.Source[T] {
	return jsonSource[T]{paths: append([]string(nil), paths...)}
}

type jsonSource[T any] struct{ paths []string }

// Open implements spate.Source.
func (s jsonSource[T]) Open(ctx context.Context, split spate.Split) (spate.SourceReader[T], error) {
	const name = "file.JSONLines"
	files, err := splitFiles(name, s.paths, split)
	if err != nil {
		return nil, err
	}
	return newFileReader(name, files, func(path string, r io.Reader) decoder[T] {
		return newJSONDecoder[T](path, r, readBufferSize)
	}), nil
}

// Restore implements spate.RestorableSource: each file resumes at the
// byte offset and line of the checkpoint.
func (s jsonSource[T]) Restore(_ context.Context, split spate.Split, splits []spate.SplitState) (spate.SourceReader[T], error) {
	const name = "file.JSONLines"
	return restoreFileReader(name, splits, func(path string, r io.Reader, p filePos) decoder[T] {
		return &jsonDecoder[T]{path: path, lr: newLineReaderAt(r, readBufferSize, p), v: new(T)}
	})
}

func (d *jsonDecoder[T]) position() (off, line int64) { return d.lr.off, d.lr.line }

// jsonDecoder yields the documents of one JSON Lines file.
type jsonDecoder[T any] struct {
	path string
	lr   *lineReader
	v    *T // the value lines are decoded into
}

func newJSONDecoder[T any](path string, r io.Reader, bufSize int) *jsonDecoder[T] {
	return &jsonDecoder[T]{path: path, lr: newLineReader(r, bufSize), v: new(T)}
}

var utf8BOM = []byte("\xef\xbb\xbf")

func (d *jsonDecoder[T]) next() (T, error) {
	var zero T
	for {
		b, err := d.lr.readLine()
		if err != nil {
			if err == io.EOF {
				return zero, err
			}
			return zero, fmt.Errorf("file.JSONLines: reading %s: %w", d.path, err)
		}
		if d.lr.line == 1 {
			b = bytes.TrimPrefix(b, utf8BOM)
		}
		doc := bytes.TrimSpace(b)
		if len(doc) == 0 {
			continue
		}
		*d.v = zero
		err = json.Unmarshal(doc, d.v)
		v := *d.v
		*d.v = zero // keep no references
		if err != nil {
			return zero, &spate.RecordError{Source: d.path, Line: d.lr.line, Record: recordText(b), Err: fmt.Errorf("invalid JSON: %w", err)}
		}
		return v, nil
	}
}
