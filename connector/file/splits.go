package file

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/spate-dev/spate"
)

// Splits of the file sources (spate.CheckpointedReader): each file is a
// split, named by its path, and a reader's position in it is the byte
// offset where its next line starts and the number of the last line read,
// or that the file is done:
//
//	position = done:u8 offset:uvarint line:uvarint
//
// A restore reads the files of the checkpoint's splits (not the paths
// listed again), each from its offset, so that every line is emitted once
// across a failure. A CSV position is a row boundary (a quoted cell may
// span lines), and its line counts every line before it; a resumed CSV
// file reads its header again from the start of the file.

// filePos is a reader's position in one file.
type filePos struct {
	off, line int64
	done      bool
}

func (p filePos) encode() []byte {
	var done byte
	if p.done {
		done = 1
	}
	b := []byte{done}
	b = binary.AppendUvarint(b, uint64(p.off))
	return binary.AppendUvarint(b, uint64(p.line))
}

func decodePos(b []byte) (filePos, error) {
	if len(b) < 1 || b[0] > 1 {
		return filePos{}, fmt.Errorf("malformed file position %x", b)
	}
	p := filePos{done: b[0] == 1}
	off, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return filePos{}, fmt.Errorf("malformed file position %x", b)
	}
	line, m := binary.Uvarint(b[1+n:])
	if m <= 0 || 1+n+m != len(b) || off > 1<<62 || line > 1<<62 {
		return filePos{}, fmt.Errorf("malformed file position %x", b)
	}
	p.off, p.line = int64(off), int64(line)
	return p, nil
}

// positioner is a decoder that knows where it stands in its file.
type positioner interface {
	position() (off, line int64)
}

// SnapshotSplits implements spate.CheckpointedReader.
func (r *fileReader[T]) SnapshotSplits() ([]spate.SplitState, error) {
	splits := make([]spate.SplitState, len(r.files))
	for j, path := range r.files {
		var p filePos
		if r.at != nil {
			p = r.at[j]
		}
		switch {
		case j < r.i:
			p = filePos{done: true}
		case j == r.i && r.cur != nil:
			pos, ok := r.cur.(positioner)
			if !ok {
				return nil, fmt.Errorf("%s cannot tell its position in %s, so it cannot be checkpointed", r.name, path)
			}
			p.off, p.line = pos.position()
		}
		splits[j] = spate.SplitState{ID: path, Position: p.encode()}
	}
	return splits, nil
}

// restoreFileReader returns a reader of the files of splits, each resumed
// where its position says.
func restoreFileReader[T any](name string, splits []spate.SplitState, resume func(string, io.Reader, filePos) decoder[T]) (*fileReader[T], error) {
	files := make([]string, len(splits))
	at := make([]filePos, len(splits))
	for i, s := range splits {
		p, err := decodePos(s.Position)
		if err != nil {
			return nil, fmt.Errorf("%s: restore split %s: %w", name, s.ID, err)
		}
		files[i], at[i] = s.ID, p
	}
	r := newFileReader(name, files, func(path string, rd io.Reader) decoder[T] { return resume(path, rd, filePos{}) })
	r.at, r.resume = at, resume
	return r, nil
}

// newLineReaderAt returns a line reader of r, which is positioned at p.
func newLineReaderAt(r io.Reader, size int, p filePos) *lineReader {
	l := newLineReader(r, size)
	l.off, l.line = p.off, p.line
	return l
}

// Pending implements spate.PendingReader: the bytes of its files it has
// not read yet (the records are unknown, -1). The files' sizes are read
// once, when first asked, and summed from each file to the last, so that
// the figure costs the same however many files are left; a file that
// cannot be stat'ed, or a decoder that cannot tell its position, makes it
// unknown.
func (r *fileReader[T]) Pending() (records, bytes int64) {
	if r.unread == nil {
		// unread[j] is what files j.. hold beyond their restored offsets.
		r.unread = make([]int64, len(r.files)+1)
		for j := len(r.files) - 1; j >= 0; j-- {
			var size, done int64
			if r.at != nil {
				done = r.at[j].off
			}
			if fi, err := os.Stat(r.files[j]); err != nil || r.unread[j+1] < 0 {
				size = -1
			} else {
				size = fi.Size()
			}
			switch {
			case r.at != nil && r.at[j].done:
				r.unread[j] = r.unread[j+1]
			case size < 0:
				r.unread[j] = -1
			default:
				r.unread[j] = r.unread[j+1] + max(size-done, 0)
			}
		}
	}
	if r.i >= len(r.files) {
		return -1, 0
	}
	if r.cur == nil {
		return -1, r.unread[r.i]
	}
	pos, ok := r.cur.(positioner)
	if !ok || r.unread[r.i] < 0 {
		return -1, -1
	}
	// The current file's unread part is its whole size less where the
	// decoder stands (unread counts it from its restored offset).
	off, _ := pos.position()
	var from int64
	if r.at != nil {
		from = r.at[r.i].off
	}
	return -1, max(r.unread[r.i]-(off-from), r.unread[r.i+1])
}
