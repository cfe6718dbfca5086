package taskmanager

import "bytes"

// maxLineBytes is the longest piece of a worker's output line the
// TaskManager forwards as one line: a longer line is forwarded as several
// tagged lines of at most this many bytes each, in order, so that no line
// length loses output (as Docker's and the CRI's log formats split long
// lines).
const maxLineBytes = 64 << 10

// lineSplitter is a worker's standard output or error: it cuts what the
// worker writes into lines (of at most maxLineBytes) and hands each to
// emit. It is the io.Writer os/exec copies a pipe into, from one goroutine;
// flush hands on a last line without a newline once the copying is over.
type lineSplitter struct {
	emit    func(line string)
	pending []byte
	// split counts the lines cut because they were too long.
	split int
}

func (s *lineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLineBytes - len(s.pending)
			if len(p) <= room {
				s.pending = append(s.pending, p...)
				return n, nil
			}
			s.pending = append(s.pending, p[:room]...)
			p = p[room:]
			s.split++
			s.flush()
			continue
		}
		if len(s.pending)+i > maxLineBytes {
			room := maxLineBytes - len(s.pending)
			s.pending = append(s.pending, p[:room]...)
			p = p[room:]
			s.split++
			s.flush()
			continue
		}
		s.pending = append(s.pending, p[:i]...)
		p = p[i+1:]
		s.emitPending()
	}
	return n, nil
}

// flush hands on what is pending, if anything.
func (s *lineSplitter) flush() {
	if len(s.pending) > 0 {
		s.emitPending()
	}
}

func (s *lineSplitter) emitPending() {
	line := string(s.pending)
	s.pending = s.pending[:0]
	if cap(s.pending) > 2*maxLineBytes {
		s.pending = nil
	}
	s.emit(line)
}
