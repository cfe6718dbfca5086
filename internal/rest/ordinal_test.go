package rest_test

import (
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/rest"
)

// TestSubmitJobOrdinal checks that a submission's jobOrdinal, which tells
// workers which Execute call of the program to run, reaches the backend,
// and that one out of range is refused with the field named.
func TestSubmitJobOrdinal(t *testing.T) {
	tests := []struct {
		name     string
		ordinal  string
		wantCode int
		want     int
	}{
		{name: "absent", wantCode: 202, want: 0},
		{name: "second", ordinal: "1", wantCode: 202, want: 1},
		{name: "negative", ordinal: "-1", wantCode: 400},
		{name: "beyond int32", ordinal: "2147483648", wantCode: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fixture(t)
			h := rest.NewHandler(f, rest.Options{Logger: quietLogger()})
			body := submitBody(programID)
			if tt.ordinal != "" {
				body = strings.TrimSuffix(body, "}") + `,"jobOrdinal":` + tt.ordinal + `}`
			}
			w := do(h, request{method: "POST", path: "/v1/jobs", body: body})
			if w.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantCode, w.Body)
			}
			if tt.wantCode != 202 {
				if !strings.Contains(w.Body.String(), "jobOrdinal") {
					t.Errorf("the error does not name jobOrdinal: %s", w.Body)
				}
				return
			}
			if sub := f.Submitted(); len(sub) != 1 || sub[0].JobOrdinal != tt.want {
				t.Errorf("backend got %+v, want jobOrdinal %d", sub, tt.want)
			}
		})
	}
}
