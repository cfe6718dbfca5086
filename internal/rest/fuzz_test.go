package rest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rest"
)

var fuzzMethods = []string{"GET", "POST", "PATCH", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "TRACE", "BREW"}

// FuzzSubmitJob posts arbitrary bodies to POST /v1/jobs, and sends them
// with an arbitrary method to arbitrary paths and query strings: the
// answer is never a 5xx, and a 4xx is a JSON error.
func FuzzSubmitJob(f *testing.F) {
	f.Add([]byte(submitBody(programID)), "v1/jobs", "", uint8(1))
	f.Add([]byte(`{"jobGraph":{},"artifact":"`+programID+`","programArgs":null,"env":{"":""}}`), "v1/jobs/"+jobA, "mode=cancel", uint8(2))
	f.Add([]byte(`{"jobGraph":`), "v1/jobs/"+jobA+"/exceptions", "", uint8(0))
	f.Add([]byte(`{"JOBGRAPH":1}`), "v1/artifacts", "", uint8(1))
	f.Add([]byte(`[]`), "v1/artifacts/"+programID, "x=%zz", uint8(3))
	f.Add([]byte(`null`), "v1/jobs/overview", "mode=stop", uint8(2))
	f.Add([]byte("\x00\xff"), "v1//jobs/../overview", "", uint8(4))
	f.Add([]byte(`{"programArgs":[1]}`), "v1/taskmanagers", "", uint8(8))
	f.Fuzz(func(t *testing.T, body []byte, path, query string, method uint8) {
		fake := fixture(t)
		h := rest.NewHandler(fake, rest.Options{MaxBodyBytes: 4096, MaxArtifactBytes: 4096, Logger: quietLogger()})

		r := httptest.NewRequest("POST", "/v1/jobs", bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkFuzzAnswer(t, "POST /v1/jobs", w)

		// What a server would hand the handler for this path and query.
		u, err := url.ParseRequestURI("/" + path + "?" + query)
		if err != nil {
			return
		}
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		r, err = http.NewRequest(m, "http://jobmanager"+u.RequestURI(), bytes.NewReader(body))
		if err != nil {
			return
		}
		r.RequestURI = u.RequestURI()
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		checkFuzzAnswer(t, m+" "+r.RequestURI, w)
	})
}

func checkFuzzAnswer(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s: status %d: %s", what, w.Code, w.Body)
	}
	if w.Code < 400 {
		return
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: %d with Content-Type %q", what, w.Code, ct)
	}
	var e v1.ErrorResponse
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || len(e.Errors) != 1 || e.Errors[0] == "" {
		if w.Body.Len() == 0 { // HEAD
			return
		}
		t.Fatalf("%s: %d with body %q: not a JSON error (%v)", what, w.Code, w.Body, err)
	}
}
