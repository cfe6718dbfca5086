package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/spate-dev/spate"
)

// CSVOption configures a CSV source.
type CSVOption func(*csvConfig)

type csvConfig struct {
	noHeader bool
	comma    rune
}

// NoHeader declares that the files have no header row: the columns of a row
// map to the fields of the struct in order, column i to the i-th field.
// The first row of a file sets its number of columns; extra columns are
// ignored and fields beyond the columns stay zero.
func NoHeader() CSVOption { return func(c *csvConfig) { c.noHeader = true } }

// Comma sets the field delimiter, ',' by default. It must not be '"', '\r',
// '\n' or an invalid rune.
func Comma(r rune) CSVOption { return func(c *csvConfig) { c.comma = r } }

// CSV returns a bounded source that decodes the rows of CSV files (RFC 4180,
// as read by encoding/csv) into values of T, which must be a struct.
//
// By default the first row of each file is a header: a column maps to the
// field whose `csv:"name"` tag, else whose name, equals the column name
// (compared exactly first, then ignoring case). Columns that no field
// matches are ignored, fields that no column matches stay zero, and fields
// tagged `csv:"-"` are skipped. With NoHeader, columns map to fields in
// order. Fields of embedded structs count as fields of T.
//
// Supported field types are string, bool, the int and uint types, float32
// and float64, time.Time (RFC 3339, with or without fractional seconds),
// time.Duration (time.ParseDuration), types whose underlying type is one of
// these kinds, and pointers to any of them, which are left nil for an empty
// cell. Surrounding spaces are ignored for all but strings. Open fails with
// an error naming the type and the field when T is not a struct or has a
// field of another type.
//
// A row with a different number of cells than the header (or, without a
// header, than the first row), a cell that does not parse, or a syntax
// error such as a bare quote is returned from Read as a *spate.RecordError
// with the file, the line on which the row starts (counting the header and
// blank lines from 1) and the raw text of the row; the cause names the
// column, e.g. `column "price": strconv.ParseFloat: parsing "abc": invalid
// syntax`. Reading continues with the following row. A malformed header
// row is reported the same way, and the rest of that file is skipped.
// Paths are as for Lines.
func CSV[T any](paths []string, opts ...CSVOption) spate.Source[T] {
	cfg := csvConfig{comma: ','}
	for _, o := range opts {
		o(&cfg)
	}
	dec, err := newCSVDecoder[T]()
	return csvSource[T]{paths: append([]string(nil), paths...), cfg: cfg, dec: dec, err: err}
}

type csvSource[T any] struct {
	paths []string
	cfg   csvConfig
	dec   *csvDecoder[T]
	err   error // from compiling T
}

// Open implements spate.Source.
func (s csvSource[T]) Open(ctx context.Context, split spate.Split) (spate.SourceReader[T], error) {
	name := fmt.Sprintf("file.CSV[%v]", reflect.TypeFor[T]())
	if s.err != nil {
		return nil, fmt.Errorf("%s: %w", name, s.err)
	}
	if !validComma(s.cfg.comma) {
		return nil, fmt.Errorf("%s: invalid delimiter %q", name, s.cfg.comma)
	}
	files, err := splitFiles(name, s.paths, split)
	if err != nil {
		return nil, err
	}
	return newFileReader(name, files, func(path string, r io.Reader) decoder[T] {
		return newCSVFile(path, r, s.dec, s.cfg)
	}), nil
}

// Restore implements spate.RestorableSource: each file resumes at the row
// boundary, byte offset and line of the checkpoint. The header (or, with
// NoHeader, the first row, which sets the number of columns) is read again
// from the start of the file to map the columns.
func (s csvSource[T]) Restore(_ context.Context, _ spate.Split, splits []spate.SplitState) (spate.SourceReader[T], error) {
	name := fmt.Sprintf("file.CSV[%v]", reflect.TypeFor[T]())
	if s.err != nil {
		return nil, fmt.Errorf("%s: %w", name, s.err)
	}
	if !validComma(s.cfg.comma) {
		return nil, fmt.Errorf("%s: invalid delimiter %q", name, s.cfg.comma)
	}
	return restoreFileReader(name, splits, func(path string, r io.Reader, p filePos) decoder[T] {
		return resumeCSVFile(path, r, s.dec, s.cfg, p)
	})
}

func validComma(r rune) bool {
	return r != 0 && r != '"' && r != '\r' && r != '\n' && utf8.ValidRune(r) && r != utf8.RuneError
}

// csvFile yields the records of one CSV file.
type csvFile[T any] struct {
	path   string
	cfg    csvConfig
	base   *csvDecoder[T] // knows the fields of T
	dec    *csvDecoder[T] // knows the columns of this file; nil before the first row
	raw    *rawRecorder
	cr     *csv.Reader
	offset int64 // input offset of the start of the next row
	done   bool
	err    error         // a failure to read the header of a resumed file again
	v      *T            // the value rows are decoded into
	rv     reflect.Value // *v, settable

	// The CSV reader counts input offsets and lines from where it
	// started: a resumed file starts at byte from, after skipped lines.
	from, skipped int64
	lines         int64 // lines before offset, from the start of the file
}

func newCSVFile[T any](path string, r io.Reader, base *csvDecoder[T], cfg csvConfig) *csvFile[T] {
	raw := &rawRecorder{r: bufio.NewReaderSize(r, readBufferSize)}
	cr := csv.NewReader(raw)
	cr.Comma = cfg.comma
	cr.FieldsPerRecord = -1 // the decoder checks the number of cells
	cr.ReuseRecord = true
	v := new(T)
	return &csvFile[T]{path: path, cfg: cfg, base: base, raw: raw, cr: cr, v: v, rv: reflect.ValueOf(v).Elem()}
}

// resumeCSVFile returns the decoder of the rows of a file from position p
// on, r being positioned there. The header row, or with NoHeader the first
// row that parses, is read again from the start of the file through r's
// io.ReaderAt.
func resumeCSVFile[T any](path string, r io.Reader, base *csvDecoder[T], cfg csvConfig, p filePos) *csvFile[T] {
	c := newCSVFile(path, r, base, cfg)
	c.from, c.skipped, c.lines = p.off, p.line, p.line
	if p.off == 0 {
		return c
	}
	ra, ok := r.(io.ReaderAt)
	if !ok {
		c.err = fmt.Errorf("file.CSV: resume %s at byte %d: cannot read its header again", path, p.off)
		return c
	}
	// The bytes before p.off are whole rows, so the prefix parses as it
	// did before the checkpoint.
	head := newCSVFile(path, io.NewSectionReader(ra, 0, p.off), base, cfg)
	for head.dec == nil {
		if _, err := head.next(); err == io.EOF || head.done {
			break
		} else if err != nil && !errors.As(err, new(*spate.RecordError)) {
			c.err = fmt.Errorf("file.CSV: resume %s at byte %d: %w", path, p.off, err)
			return c
		}
	}
	// A malformed header was reported before the checkpoint, and the rest
	// of the file is skipped again.
	c.dec, c.done = head.dec, head.dec == nil && !cfg.noHeader
	return c
}

// position implements positioner: where the next row starts, and the
// lines before it.
func (c *csvFile[T]) position() (off, line int64) { return c.from + c.offset, c.lines }

func (c *csvFile[T]) next() (T, error) {
	var zero T
	if c.err != nil {
		return zero, c.err
	}
	for !c.done {
		cells, err := c.cr.Read()
		start, end := c.offset, c.cr.InputOffset()
		c.offset = end
		c.lines += int64(bytes.Count(c.raw.bytes(start, end), []byte{'\n'}))
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return zero, fmt.Errorf("file.CSV: reading %s: %w", c.path, err)
			}
			pe.StartLine += int(c.skipped)
			pe.Line += int(c.skipped)
			re := c.recordError(int64(pe.StartLine), start, end, pe)
			if c.dec == nil && !c.cfg.noHeader {
				re.Err = fmt.Errorf("malformed header: %w", pe)
				c.done = true
			}
			return zero, re
		}
		if c.dec == nil {
			if len(cells) > 0 {
				cells[0] = strings.TrimPrefix(cells[0], "\ufeff")
			}
			if !c.cfg.noHeader {
				c.dec = c.base.bindHeader(cells)
				c.raw.discard(end)
				continue
			}
			c.dec = c.base.bindOrder(len(cells))
		}
		*c.v = zero
		if err := c.dec.decodeInto(c.rv, cells); err != nil {
			*c.v = zero
			line, _ := c.cr.FieldPos(0)
			return zero, c.recordError(c.skipped+int64(line), start, end, err)
		}
		c.raw.discard(end)
		return *c.v, nil
	}
	c.done = true
	return zero, io.EOF
}

// recordError returns the error of the row read from input offsets start to
// end, and forgets the input up to end.
func (c *csvFile[T]) recordError(line, start, end int64, err error) *spate.RecordError {
	text := c.raw.bytes(start, end)
	text = trimNewlines(text)
	c.raw.discard(end)
	return &spate.RecordError{Source: c.path, Line: line, Record: recordText(text), Err: err}
}

// trimNewlines removes the blank lines the CSV reader skipped before a row
// and the line terminator after it.
func trimNewlines(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// rawRecorder passes reads through, keeping the bytes read so that the raw
// text of a row can be recovered from its input offsets. It keeps the bytes
// from the start of the current row to the end of what the CSV reader has
// read ahead.
type rawRecorder struct {
	r    io.Reader
	buf  []byte // buf[drop:] holds the input from offset base+drop on
	drop int
	base int64
}

func (t *rawRecorder) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if t.drop > 0 && t.drop >= len(t.buf)/2 {
		// Compact; amortized, each byte is moved at most about once.
		k := copy(t.buf, t.buf[t.drop:])
		t.buf = t.buf[:k]
		t.base += int64(t.drop)
		t.drop = 0
		if cap(t.buf) > 4*readBufferSize && k+n < readBufferSize {
			t.buf = append(make([]byte, 0, readBufferSize), t.buf...) // release a huge row's memory
		}
	}
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

// bytes returns the input between offsets start and end, as far as it is
// still kept.
func (t *rawRecorder) bytes(start, end int64) []byte {
	lo := max(int64(t.drop), min(start-t.base, int64(len(t.buf))))
	hi := max(lo, min(end-t.base, int64(len(t.buf))))
	return t.buf[lo:hi]
}

// discard forgets the input before offset off.
func (t *rawRecorder) discard(off int64) {
	k := int(min(max(off-t.base, 0), int64(len(t.buf))))
	t.drop = max(t.drop, k)
}
