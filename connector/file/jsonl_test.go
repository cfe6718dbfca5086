package file

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

type event struct {
	ID   int      `json:"id"`
	Name string   `json:"name"`
	Tags []string `json:"tags,omitempty"`
}

func TestJSONLines(t *testing.T) {
	for _, bufSize := range []int{1, 2, 100} {
		res := drainAll(t, JSONLines[event]("testdata/jsonl/events.jsonl"), bufSize)
		want := []event{{1, "a", []string{"x"}}, {2, "b", nil}, {3, "c", nil}}
		if !reflect.DeepEqual(res.recs, want) || len(res.errs) != 0 {
			t.Errorf("buffer %d: got %+v, %v; want %+v", bufSize, res.recs, res.errs, want)
		}
	}
}

func TestJSONLinesMalformed(t *testing.T) {
	for _, bufSize := range []int{1, 2, 100} {
		res := drainAll(t, JSONLines[event]("testdata/jsonl/bad.jsonl"), bufSize)
		want := []event{{1, "a", nil}, {3, "c", nil}, {6, "f", nil}}
		if !reflect.DeepEqual(res.recs, want) {
			t.Errorf("buffer %d: records %+v, want %+v", bufSize, res.recs, want)
		}
		wantErrs := []struct {
			line   int64
			record string
			err    string
		}{
			{2, `{"id":2,"name":`, "unexpected end of JSON input"},
			{5, `{"id":"four","name":"d"}`, "cannot unmarshal string"},
			{6, `{"id":5,"name":"e"} trailing`, "invalid character 't' after top-level value"},
		}
		if len(res.errs) != len(wantErrs) {
			t.Fatalf("buffer %d: errors %v, want %d", bufSize, res.errs, len(wantErrs))
		}
		for i, w := range wantErrs {
			e := res.errs[i]
			if e.Source != "testdata/jsonl/bad.jsonl" || e.Line != w.line || e.Record != w.record || !strings.Contains(e.Err.Error(), w.err) {
				t.Errorf("error %d: got {%s %d %q %v}, want {%d %q %s}", i, e.Source, e.Line, e.Record, e.Err, w.line, w.record, w.err)
			}
		}
		var se *json.SyntaxError
		if !errors.As(res.errs[0], &se) {
			t.Errorf("error %v does not wrap *json.SyntaxError", res.errs[0])
		}
	}
}

func TestJSONLinesErrorAfterGoodRecords(t *testing.T) {
	ctx := context.Background()
	r, err := JSONLines[event]("testdata/jsonl/bad.jsonl").Open(ctx, spate.Split{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]event, 10)
	n, err := r.Read(ctx, buf)
	var re *spate.RecordError
	if n != 1 || buf[0].ID != 1 || !errors.As(err, &re) || re.Line != 2 {
		t.Fatalf("first Read = %d, %v; want record 1 and the error of line 2", n, err)
	}
	n, err = r.Read(ctx, buf)
	if n != 1 || buf[0].ID != 3 || !errors.As(err, &re) || re.Line != 5 {
		t.Fatalf("second Read = %d, %v; want record 3 and the error of line 5", n, err)
	}
}

func TestJSONLinesBOMAndCRLF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.jsonl")
	write(t, path, "\ufeff{\"id\":1}\r\n\r\n{\"id\":2}")
	res := drainAll(t, JSONLines[event](path), 10)
	if want := []event{{ID: 1}, {ID: 2}}; !reflect.DeepEqual(res.recs, want) || len(res.errs) != 0 {
		t.Errorf("got %+v, %v; want %+v", res.recs, res.errs, want)
	}
	// Any type encoding/json decodes works.
	maps := drainAll(t, JSONLines[map[string]any](path), 10)
	if len(maps.recs) != 2 || maps.recs[1]["id"] != 2.0 {
		t.Errorf("got %v", maps.recs)
	}
}

func TestJSONLinesMissing(t *testing.T) {
	err := openErr(JSONLines[event]("testdata/jsonl/missing.jsonl"))
	if err == nil || !strings.Contains(err.Error(), "testdata/jsonl/missing.jsonl") || !strings.Contains(err.Error(), "file.JSONLines") {
		t.Errorf("Open error %v", err)
	}
}
