package file

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

type trade struct {
	Symbol string
	Price  float64 `csv:"price"`
	Qty    int     `csv:"qty"`
	Note   string  // no column: stays zero
}

func TestCSVHeader(t *testing.T) {
	res := drainAll(t, CSV[trade]([]string{"testdata/csv/trades.csv"}), 10)
	want := []trade{{"AAPL", 189.5, 100, ""}, {"MSFT", 411.25, 20, ""}}
	if !reflect.DeepEqual(res.recs, want) || len(res.errs) != 0 {
		t.Errorf("got %+v, %v; want %+v", res.recs, res.errs, want)
	}
}

func TestCSVTagsAndCase(t *testing.T) {
	type row struct {
		Name    string `csv:"full name"`
		Age     int    // matched case-insensitively by "AGE"
		Ignored string `csv:"-"`
		City    string `csv:"city,omitempty"`
		private int
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "people.csv")
	write(t, path, "\ufeffAGE , full name,extra,city,Ignored\n41,Ada Lovelace,x,London,no\n")
	res := drainAll(t, CSV[row]([]string{path}), 10)
	want := []row{{Name: "Ada Lovelace", Age: 41, City: "London"}}
	if !reflect.DeepEqual(res.recs, want) || len(res.errs) != 0 {
		t.Errorf("got %+v, %v; want %+v", res.recs, res.errs, want)
	}
}

func TestCSVExactMatchPreferred(t *testing.T) {
	type row struct {
		A string `csv:"id"`
		B string `csv:"ID"`
	}
	path := filepath.Join(t.TempDir(), "x.csv")
	write(t, path, "ID,id\nupper,lower\n")
	res := drainAll(t, CSV[row]([]string{path}), 10)
	if want := []row{{"lower", "upper"}}; !reflect.DeepEqual(res.recs, want) {
		t.Errorf("got %+v, want %+v", res.recs, want)
	}
}

func TestCSVEmbedded(t *testing.T) {
	type Base struct {
		ID int `csv:"id"`
	}
	type row struct {
		Base
		Name string
	}
	path := filepath.Join(t.TempDir(), "x.csv")
	write(t, path, "name,id\nn,7\n")
	res := drainAll(t, CSV[row]([]string{path}), 10)
	if want := []row{{Base{7}, "n"}}; !reflect.DeepEqual(res.recs, want) {
		t.Errorf("got %+v, want %+v", res.recs, want)
	}
}

func TestCSVNoHeaderComma(t *testing.T) {
	type row struct {
		Symbol string
		Price  float64
		Qty    int
	}
	res := drainAll(t, CSV[row]([]string{"testdata/csv/noheader.csv"}, NoHeader(), Comma(';')), 1)
	want := []row{{"AAPL", 189.5, 100}, {"MSFT", 411.25, 20}}
	if !reflect.DeepEqual(res.recs, want) || len(res.errs) != 0 {
		t.Errorf("got %+v, %v; want %+v", res.recs, res.errs, want)
	}

	// Without the Comma option the rows are one column: Symbol only.
	res = drainAll(t, CSV[row]([]string{"testdata/csv/noheader.csv"}, NoHeader()), 10)
	want = []row{{Symbol: "AAPL;189.5;100"}, {Symbol: "MSFT;411.25;20"}}
	if !reflect.DeepEqual(res.recs, want) {
		t.Errorf("got %+v, want %+v", res.recs, want)
	}

	// Tabs, and more columns than fields.
	type pair struct{ K, V string }
	path := filepath.Join(t.TempDir(), "x.tsv")
	write(t, path, "a\t1\textra\nb\t2\tmore\nc\t3\n")
	res2 := drainAll(t, CSV[pair]([]string{path}, NoHeader(), Comma('\t')), 10)
	if want := []pair{{"a", "1"}, {"b", "2"}}; !reflect.DeepEqual(res2.recs, want) {
		t.Errorf("got %+v, want %+v", res2.recs, want)
	}
	if len(res2.errs) != 1 || res2.errs[0].Line != 3 || !strings.Contains(res2.errs[0].Err.Error(), "wrong number of fields: got 2, want 3") {
		t.Errorf("errors %v, want wrong number of fields on line 3", res2.errs)
	}
}

type named string
type typed struct {
	Name    named
	I       int
	I8      int8
	I16     int16
	I32     int32
	I64     int64
	U       uint
	U8      uint8
	U16     uint16
	U32     uint32
	U64     uint64
	F32     float32
	F64     float64
	B       bool
	At      time.Time
	Wait    time.Duration
	OptInt  *int       `csv:"opt_int"`
	OptStr  *string    `csv:"opt_str"`
	OptTime *time.Time `csv:"opt_time"`
}

func TestCSVTypes(t *testing.T) {
	res := drainAll(t, CSV[typed]([]string{"testdata/csv/types.csv"}), 10)
	if len(res.errs) != 0 || len(res.recs) != 2 {
		t.Fatalf("got %+v, %v", res.recs, res.errs)
	}
	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	seven, x := 7, "x"
	optTime := time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.FixedZone("", 2*3600))
	want := typed{"full", -1, -8, -16, -32, -64, 1, 8, 16, 32, 64, 1.5, 2.25, true, at, 90 * time.Second, &seven, &x, &optTime}
	got := res.recs[0]
	if !got.OptTime.Equal(optTime) || !got.At.Equal(at) {
		t.Errorf("times %v, %v; want %v, %v", got.At, got.OptTime, at, optTime)
	}
	got.At, got.OptTime, want.At, want.OptTime = time.Time{}, nil, time.Time{}, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	empty := res.recs[1]
	if empty.OptInt != nil || empty.OptStr != nil || empty.OptTime != nil {
		t.Errorf("empty cells: got %v %v %v, want nil pointers", empty.OptInt, empty.OptStr, empty.OptTime)
	}
}

func TestCSVCellErrors(t *testing.T) {
	tests := []struct {
		column, cell, want string
	}{
		{"i8", "128", `column "i8": strconv.ParseInt: parsing "128": value out of range`},
		{"u", "-1", `column "u": strconv.ParseUint: parsing "-1": invalid syntax`},
		{"f32", "abc", `column "f32": strconv.ParseFloat: parsing "abc": invalid syntax`},
		{"b", "yes", `column "b": strconv.ParseBool: parsing "yes": invalid syntax`},
		{"at", "2024-03-01", `column "at": parsing time "2024-03-01"`},
		{"wait", "5", `column "wait": time: missing unit in duration "5"`},
		{"i", "", `column "i": strconv.ParseInt: parsing "": invalid syntax`},
		{"opt_int", "x", `column "opt_int": strconv.ParseInt: parsing "x": invalid syntax`},
	}
	header := "name,i,i8,i16,i32,i64,u,u8,u16,u32,u64,f32,f64,b,at,wait,opt_int,opt_str,opt_time"
	good := strings.Split("n,1,1,1,1,1,1,1,1,1,1,1,1,true,2024-03-01T12:00:00Z,1s,,,", ",")
	cols := strings.Split(header, ",")
	base, err := newCSVDecoder[typed]()
	if err != nil {
		t.Fatal(err)
	}
	dec := base.bindHeader(cols)
	if _, err := dec.decodeRow(good); err != nil {
		t.Fatalf("good row: %v", err)
	}
	for _, tt := range tests {
		cells := append([]string(nil), good...)
		cells[slicesIndex(cols, tt.column)] = tt.cell
		_, err := dec.decodeRow(cells)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s=%q: error %v, want %s", tt.column, tt.cell, err, tt.want)
		}
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	panic(v)
}

func TestCSVMalformedRows(t *testing.T) {
	for _, bufSize := range []int{1, 2, 100} {
		res := drainAll(t, CSV[trade]([]string{"testdata/csv/bad.csv"}), bufSize)
		want := []trade{{"AAPL", 189.5, 100, ""}, {"AMZN", 180.5, 7, ""}, {"NVDA", 900, 3, ""}}
		if !reflect.DeepEqual(res.recs, want) {
			t.Errorf("buffer %d: records %+v, want %+v", bufSize, res.recs, want)
		}
		wantErrs := []struct {
			line   int64
			record string
			err    string
		}{
			{3, "MSFT,abc,20", `column "price": strconv.ParseFloat: parsing "abc": invalid syntax`},
			{5, "GOOG,140.1", "wrong number of fields: got 2, want 3"},
			{6, "IBM,170,\"multi\nline\"", `column "qty": strconv.ParseInt: parsing "multi\nline": invalid syntax`},
			{9, `"bad"quote,1,2`, `extraneous or missing " in quoted-field`},
		}
		if len(res.errs) != len(wantErrs) {
			t.Fatalf("buffer %d: errors %v, want %d", bufSize, res.errs, len(wantErrs))
		}
		for i, w := range wantErrs {
			e := res.errs[i]
			if e.Source != "testdata/csv/bad.csv" || e.Line != w.line || e.Record != w.record || !strings.Contains(e.Err.Error(), w.err) {
				t.Errorf("error %d: got {%s %d %q %v}, want {bad.csv %d %q %s}", i, e.Source, e.Line, e.Record, e.Err, w.line, w.record, w.err)
			}
		}
		if !errors.Is(res.errs[3], csv.ErrQuote) {
			t.Errorf("syntax error %v does not wrap csv.ErrQuote", res.errs[3])
		}
		var ne *strconv.NumError
		if !errors.As(res.errs[0], &ne) {
			t.Errorf("cell error %v does not wrap *strconv.NumError", res.errs[0])
		}
	}
}

// TestCSVErrorAfterGoodRecords checks that Read returns the good records
// before a malformed row together with its error, and continues after it.
func TestCSVErrorAfterGoodRecords(t *testing.T) {
	ctx := context.Background()
	r, err := CSV[trade]([]string{"testdata/csv/bad.csv"}).Open(ctx, spate.Split{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]trade, 10)
	n, err := r.Read(ctx, buf)
	var re *spate.RecordError
	if n != 1 || buf[0].Symbol != "AAPL" || !errors.As(err, &re) || re.Line != 3 {
		t.Fatalf("first Read = %d %+v, %v; want AAPL and the error of line 3", n, buf[:n], err)
	}
	if want := `testdata/csv/bad.csv:3: malformed record: column "price"`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want prefix %q", err, want)
	}
	n, err = r.Read(ctx, buf)
	if n != 0 || !errors.As(err, &re) || re.Line != 5 {
		t.Fatalf("second Read = %d, %v; want the error of line 5", n, err)
	}
}

func TestCSVLongRecordText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "long.csv")
	long := strings.Repeat("é", 500)
	write(t, path, "symbol,price,qty\n"+long+",x,1\nA,1,1\n")
	res := drainAll(t, CSV[trade]([]string{path}), 10)
	if len(res.errs) != 1 || len(res.recs) != 1 {
		t.Fatalf("got %v, %v", res.recs, res.errs)
	}
	rec := res.errs[0].Record
	if len(rec) > maxRecordText+3 || !strings.HasPrefix(rec, "éé") || !strings.HasSuffix(rec, "...") || !utf8Valid(rec) {
		t.Errorf("record text %q (%d bytes)", rec, len(rec))
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestCSVMalformedHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.csv")
	write(t, path, "sym\"bol,price\nA,1\n")
	res := drainAll(t, CSV[trade]([]string{path, "testdata/csv/trades.csv"}), 10)
	if len(res.errs) != 1 || res.errs[0].Line != 1 || !strings.Contains(res.errs[0].Err.Error(), "malformed header") {
		t.Errorf("errors %v, want a malformed header on line 1", res.errs)
	}
	if len(res.recs) != 2 { // the rest of the file is skipped, the next file read
		t.Errorf("records %+v, want those of trades.csv", res.recs)
	}
}

func TestCSVHeaderOnlyAndEmpty(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.csv"), "symbol,price,qty\n")
	write(t, filepath.Join(dir, "b.csv"), "")
	write(t, filepath.Join(dir, "c.csv"), "\n\nsymbol,price,qty\n\nX,1,2")
	res := drainAll(t, CSV[trade]([]string{dir}), 10)
	if want := []trade{{Symbol: "X", Price: 1, Qty: 2}}; !reflect.DeepEqual(res.recs, want) || len(res.errs) != 0 {
		t.Errorf("got %+v, %v; want %+v", res.recs, res.errs, want)
	}
}

func TestCSVOpenErrors(t *testing.T) {
	type bad struct {
		Name string
		Tags []string
	}
	type badPtr struct{ P **int }
	type embedsPtr struct{ *trade }
	tests := []struct {
		name string
		open func() error
		want []string
	}{
		{"unsupported field", func() error { return openErr(CSV[bad]([]string{"testdata/csv/trades.csv"})) },
			[]string{"file.CSV", "Tags", "[]string", "bad"}},
		{"pointer to pointer", func() error { return openErr(CSV[badPtr]([]string{"testdata/csv/trades.csv"})) },
			[]string{"field P", "**int"}},
		{"embedded pointer", func() error { return openErr(CSV[embedsPtr]([]string{"testdata/csv/trades.csv"})) },
			[]string{"embedded field trade", "*file.trade"}},
		{"not a struct", func() error { return openErr(CSV[int]([]string{"testdata/csv/trades.csv"})) },
			[]string{"file.CSV[int]", "int is not a struct"}},
		{"pointer to struct", func() error { return openErr(CSV[*trade]([]string{"testdata/csv/trades.csv"})) },
			[]string{"*file.trade is not a struct"}},
		{"bad delimiter", func() error { return openErr(CSV[trade]([]string{"testdata/csv/trades.csv"}, Comma('"'))) },
			[]string{"invalid delimiter"}},
		{"missing file", func() error { return openErr(CSV[trade]([]string{"testdata/csv/missing.csv"})) },
			[]string{"testdata/csv/missing.csv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.open()
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func openErr[T any](src spate.Source[T]) error {
	r, err := src.Open(context.Background(), spate.Split{Parallelism: 1})
	if err == nil {
		r.Close()
	}
	return err
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
