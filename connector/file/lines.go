package file

import (
	"context"
	"fmt"
	"io"

	"github.com/spate-dev/spate"
)

// Lines returns a bounded source of the lines of the files named by paths,
// each line without its trailing "\n" or "\r\n". Paths may be files,
// directories or glob patterns (see the package documentation), and the files
// are divided among the parallel subtasks of the source. Lines of any length
// are supported. Open fails with an error naming the path if a path does not
// exist.
func Lines(paths ...string) spate.Source[string] {
	return linesSource{paths: append([]string(nil), paths...)}
}

type linesSource struct{ paths []string }

// Open implements spate.Source.
func (s linesSource) Open(ctx context.Context, split spate.Split) (spate.SourceReader[string], error) {
	const name = "file.Lines"
	files, err := splitFiles(name, s.paths, split)
	if err != nil {
		return nil, err
	}
	return newFileReader(name, files, func(path string, r io.Reader) decoder[string] {
		return &linesDecoder{path: path, lr: newLineReader(r, readBufferSize)}
	}), nil
}

// Restore implements spate.RestorableSource: each file resumes at the
// byte offset and line of the checkpoint.
func (s linesSource) Restore(_ context.Context, split spate.Split, splits []spate.SplitState) (spate.SourceReader[string], error) {
	const name = "file.Lines"
	return restoreFileReader(name, splits, func(path string, r io.Reader, p filePos) decoder[string] {
		return &linesDecoder{path: path, lr: newLineReaderAt(r, readBufferSize, p)}
	})
}

func (d *linesDecoder) position() (off, line int64) { return d.lr.off, d.lr.line }

// linesDecoder yields the lines of one file.
type linesDecoder struct {
	path string
	lr   *lineReader
}

func (d *linesDecoder) next() (string, error) {
	b, err := d.lr.readLine()
	if err != nil {
		if err == io.EOF {
			return "", err
		}
		return "", fmt.Errorf("file.Lines: reading %s: %w", d.path, err)
	}
	return string(b), nil
}
