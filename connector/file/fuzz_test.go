package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spate-dev/spate"
)

// typedHeader is the header of the typed struct's columns.
var typedHeader = strings.Split("name,i,i8,i16,i32,i64,u,u8,u16,u32,u64,f32,f64,b,at,wait,opt_int,opt_str,opt_time", ",")

func FuzzCSVRow(f *testing.F) {
	f.Add("full,-1,-8,-16,-32,-64,1,8,16,32,64,1.5,2.25,true,2024-03-01T12:00:00Z,1m30s,7,x,2024-03-01T12:00:00.5+02:00")
	f.Add("x,1,128,,,,-1,,,,,NaN,1e400,yes,2024-13-01T00:00:00Z,5,,,")
	f.Add("a,b")
	f.Add("")
	f.Add(", 42 ,0x10,1_000,+7,-0,18446744073709551616,255,65536,, ,-inf,0x1p-2,T,2024-03-01T12:00:00+25:00,-1.5h,x,,")
	base, err := newCSVDecoder[typed]()
	if err != nil {
		f.Fatal(err)
	}
	byHeader := base.bindHeader(typedHeader)
	f.Fuzz(func(t *testing.T, row string) {
		cells := strings.Split(row, ",")
		// Any number of cells: an error unless it is the header's.
		if _, err := byHeader.decodeRow(cells); len(cells) != len(typedHeader) && err == nil {
			t.Fatalf("%d cells decoded under a header of %d", len(cells), len(typedHeader))
		}
		// The header's number of cells reaches the setters.
		full := make([]string, len(typedHeader))
		copy(full, cells)
		v, err := byHeader.decodeRow(full)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "column \"") {
				t.Fatalf("error %q does not name the column", err)
			}
		} else if string(v.Name) != full[0] {
			t.Fatalf("Name = %q, want %q", v.Name, full[0])
		} else if (v.OptInt == nil) != (strings.TrimSpace(full[16]) == "") {
			t.Fatalf("OptInt = %v for cell %q", v.OptInt, full[16])
		}
		// Without a header, any number of columns binds by order.
		v2, err := base.bindOrder(len(cells)).decodeRow(cells)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "column ") {
				t.Fatalf("error %q does not name the column", err)
			}
		} else if string(v2.Name) != cells[0] {
			t.Fatalf("Name = %q, want %q", v2.Name, cells[0])
		}
	})
}

func FuzzCSVFile(f *testing.F) {
	f.Add([]byte("symbol,price,qty\nAAPL,1.5,2\n"), false, int32(','))
	f.Add([]byte("symbol,price,qty\nAAPL,abc,2\n\nB,1\n\"x\ny\",1,2\n\"bad\"q,1,2\nC,1,1"), false, int32(','))
	f.Add([]byte("\ufeffa;1;2\r\nb;x;3\r\n"), true, int32(';'))
	f.Add([]byte("\"unterminated\n,1,2\n"), false, int32(','))
	f.Add([]byte(""), true, int32('\t'))
	base, err := newCSVDecoder[trade]()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, noHeader bool, comma int32) {
		if !validComma(rune(comma)) {
			return
		}
		const path = "fuzz.csv"
		c := newCSVFile(path, bytes.NewReader(data), base, csvConfig{noHeader: noHeader, comma: rune(comma)})
		physLines := int64(bytes.Count(data, []byte("\n")) + 1)
		results := 0
		for {
			_, err := c.next()
			if err == io.EOF {
				break
			}
			results++
			if results > len(data)+1 {
				t.Fatalf("more results (%d) than bytes (%d)", results, len(data))
			}
			if err == nil {
				continue
			}
			var re *spate.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a *spate.RecordError", err, err)
			}
			if re.Source != path || re.Line < 1 || re.Line > physLines || re.Err == nil {
				t.Fatalf("bad record error %+v (file has %d lines)", re, physLines)
			}
			if len(re.Record) > maxRecordText+len("...") || (utf8.Valid(data) && !utf8.ValidString(re.Record)) {
				t.Fatalf("record text %q", re.Record)
			}
			if !strings.Contains(string(data), strings.TrimSuffix(re.Record, "...")) {
				t.Fatalf("record text %q is not part of the input", re.Record)
			}
		}
		if _, err := c.next(); err != io.EOF {
			t.Fatalf("next after EOF = %v", err)
		}
	})
}

// FuzzCSVResume: a CSV file decoder stopped after any number of results
// and resumed from its position (a fresh decoder of the same bytes from
// that offset, reading the header again) yields what the uninterrupted
// decoder yields after that point: records, record texts and line numbers.
func FuzzCSVResume(f *testing.F) {
	f.Add([]byte("symbol,price,qty\nAAPL,1.5,2\n\"M\nS\",2,3\n"), false, int32(','), uint16(1))
	f.Add([]byte("symbol,price,qty\r\nAAPL,abc,2\r\n\r\nB,1\n\"x\ny\",1,2\n\"bad\"q,1,2\nC,1,1"), false, int32(','), uint16(3))
	f.Add([]byte("\ufeff\"a\nb\";1;2\r\nb;x;3\r\n"), true, int32(';'), uint16(1))
	f.Add([]byte("\"unterminated\n,1,2\n"), false, int32(','), uint16(0))
	f.Add([]byte("a,\"b\"c\nx,1,2\n"), true, int32(','), uint16(1))
	base, err := newCSVDecoder[trade]()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, noHeader bool, comma int32, cut uint16) {
		if !validComma(rune(comma)) {
			return
		}
		const path = "fuzz.csv"
		cfg := csvConfig{noHeader: noHeader, comma: rune(comma)}
		step := func(c *csvFile[trade]) (string, bool) {
			v, err := c.next()
			var re *spate.RecordError
			switch {
			case err == io.EOF:
				return "", false
			case errors.As(err, &re):
				return fmt.Sprintf("error line %d %q: %v", re.Line, re.Record, re.Err), true
			case err != nil:
				t.Fatalf("next: %v", err)
			}
			return fmt.Sprintf("record %+v", v), true
		}
		var want []string
		whole := newCSVFile(path, bytes.NewReader(data), base, cfg)
		for s, ok := step(whole); ok; s, ok = step(whole) {
			want = append(want, s)
		}
		k := int(cut) % (len(want) + 1)
		c := newCSVFile(path, bytes.NewReader(data), base, cfg)
		var got []string
		for range k {
			s, _ := step(c)
			got = append(got, s)
		}
		off, line := c.position()
		if off < 0 || off > int64(len(data)) || line != int64(bytes.Count(data[:off], []byte("\n"))) {
			t.Fatalf("after %d results: position (%d, line %d) in %d bytes", k, off, line, len(data))
		}
		r := bytes.NewReader(data)
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		resumed := resumeCSVFile(path, r, base, cfg, filePos{off: off, line: line})
		for s, ok := step(resumed); ok; s, ok = step(resumed) {
			got = append(got, s)
			if len(got) > len(want)+1 {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("resumed after %d results at byte %d, line %d:\n%s\nwant\n%s", k, off, line, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func FuzzJSONLines(f *testing.F) {
	f.Add([]byte("{\"id\":1,\"name\":\"a\"}\n\n{\"id\":2}\r\n"))
	f.Add([]byte("{\"id\":2,\"name\":\n{\"id\":\"x\"}\n{} {}\n   \n[1]\nnull"))
	f.Add([]byte("\ufeff{\"id\":1}"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The lines as they should be read, for an independent verdict.
		lines := strings.Split(string(data), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		type verdict struct {
			line int64
			ok   bool
		}
		var want []verdict
		for i, l := range lines {
			if i == 0 {
				l = strings.TrimPrefix(l, "\ufeff")
			}
			l = strings.TrimSpace(l)
			if l == "" {
				continue
			}
			var v event
			want = append(want, verdict{int64(i + 1), json.Unmarshal([]byte(l), &v) == nil})
		}
		for _, size := range []int{16, readBufferSize} {
			d := newJSONDecoder[event]("fuzz.jsonl", bytes.NewReader(data), size)
			var got []verdict
			for {
				_, err := d.next()
				if err == io.EOF {
					break
				}
				if len(got) > len(want) {
					t.Fatalf("more results than non-blank lines (%d)", len(want))
				}
				if err == nil {
					got = append(got, verdict{d.lr.line, true})
					continue
				}
				var re *spate.RecordError
				if !errors.As(err, &re) {
					t.Fatalf("error %v (%T) is not a *spate.RecordError", err, err)
				}
				if re.Source != "fuzz.jsonl" || re.Line != d.lr.line {
					t.Fatalf("bad record error %+v", re)
				}
				got = append(got, verdict{re.Line, false})
			}
			if len(got) != len(want) {
				t.Fatalf("buffer %d: %d results, want %d", size, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("buffer %d: result %d = %+v, want %+v", size, i, got[i], want[i])
				}
			}
		}
	})
}

// splitLines is the specification of line splitting: strings.Split on "\n",
// without the empty string after a final "\n" (or of an empty input), and
// without the "\r" of a "\r\n".
func splitLines(s string) []string {
	lines := strings.Split(s, "\n")
	last := len(lines) - 1
	if lines[last] == "" {
		lines = lines[:last]
	}
	for i := range lines {
		if i < last { // followed by "\n"; a "\r" at the end of the input is content
			lines[i] = strings.TrimSuffix(lines[i], "\r")
		}
	}
	return lines
}

func FuzzLines(f *testing.F) {
	f.Add([]byte("a\nb\r\n\r\nc"))
	f.Add([]byte("\n\n\r"))
	f.Add([]byte("a line longer than the sixteen byte buffer\r\nand another one that is also long\r"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		want := splitLines(string(data))
		for _, size := range []int{16, 17, readBufferSize} {
			d := &linesDecoder{path: "fuzz.txt", lr: newLineReader(bytes.NewReader(data), size)}
			var got []string
			for {
				l, err := d.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, l)
				if d.lr.line != int64(len(got)) {
					t.Fatalf("line number %d after %d lines", d.lr.line, len(got))
				}
			}
			if len(got) != len(want) {
				t.Fatalf("buffer %d: %q, want %q", size, got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("buffer %d: line %d = %q, want %q", size, i+1, got[i], want[i])
				}
			}
		}
	})
}
