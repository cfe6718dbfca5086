package spate_test

import (
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

// TestMalformedConfigFailsExecute: a malformed value of a known key fails
// the job, naming the key, the value and the expected form, instead of
// being replaced by a default; from the options as from
// $SPATE_PROPERTIES, through Execute and ExecuteAsync.
func TestMalformedConfigFailsExecute(t *testing.T) {
	tests := []struct {
		name       string
		entries    map[string]string
		properties string
		want       []string
	}{
		{name: "parallelism not a number", entries: map[string]string{"parallelism.default": "abc"},
			want: []string{"parallelism.default", `"abc"`, "want an integer from 1 to 32768"}},
		{name: "max parallelism zero", entries: map[string]string{"pipeline.max-parallelism": "0"},
			want: []string{"pipeline.max-parallelism", `"0"`, "want an integer from 1 to 32768"}},
		{name: "encode not a bool", entries: map[string]string{"execution.exchange.encode": "yes"},
			want: []string{"execution.exchange.encode", `"yes"`, "want true or false"}},
		{name: "from SPATE_PROPERTIES", properties: "parallelism.default=abc",
			want: []string{"parallelism.default", `"abc"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SPATE_PROPERTIES", tt.properties)
			for _, async := range []bool{false, true} {
				env := spate.NewEnv(spate.WithConfig(tt.entries))
				c := spate.Collect(spate.FromSlice(env, []int{1, 2, 3}))
				var err error
				if async {
					var jc *spate.JobClient
					if jc, err = env.ExecuteAsync(tt.name); err == nil {
						err = jc.Wait()
					}
				} else {
					err = env.Execute(tt.name)
				}
				if err == nil {
					t.Fatalf("async=%v: the job ran (%d records) with %v %q", async, len(c.Values()), tt.entries, tt.properties)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("async=%v: error %q does not contain %q", async, err, w)
					}
				}
			}
		})
	}
	// Valid values still run.
	env := spate.NewEnv(spate.WithConfig(map[string]string{"parallelism.default": "2", "pipeline.max-parallelism": "64", "app.own-key": "anything"}))
	c := spate.Collect(spate.FromSlice(env, []int{1, 2, 3}))
	if err := env.Execute("valid"); err != nil || len(c.Values()) != 3 {
		t.Fatalf("valid configuration: %v, %d records", err, len(c.Values()))
	}
}
