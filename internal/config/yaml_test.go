package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readFixture parses testdata/yaml/name with warnings sent to a buffer.
func readFixture(t *testing.T, name string) (Config, string, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "yaml", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var warnings bytes.Buffer
	var c Config
	err = c.parseYAML(f, name, slog.New(slog.NewTextHandler(&warnings, nil)))
	return c, warnings.String(), err
}

func TestParseYAMLForms(t *testing.T) {
	want := map[string]string{
		"parallelism.default":                    "4",
		"pipeline.max-parallelism":               "256",
		"taskmanager.numberOfTaskSlots":          "2",
		"taskmanager.worker.memory-limit":        "1g",
		"heartbeat.interval":                     "2 s",
		"heartbeat.timeout":                      "20 s",
		"execution.exchange.encode":              "true",
		"rest.port":                              "0",
		"containerized.taskmanager.env.GREETING": "hello",
		"app.inputs":                             `[a.csv, "b, c.csv"]`,
	}
	for _, name := range []string{"flat.yaml", "nested.yaml", "mixed.yaml"} {
		t.Run(name, func(t *testing.T) {
			c, warnings, err := readFixture(t, name)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Entries(); !maps.Equal(got, want) {
				t.Errorf("entries of %s:\n got %v\nwant %v", name, got, want)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			// The job's own key app.inputs is not warned about.
			if warnings != "" {
				t.Errorf("warnings of %s = %q, want none", name, warnings)
			}
		})
	}
}

func TestParseYAMLErrors(t *testing.T) {
	tests := []struct {
		file     string
		wantErrs []string
	}{
		{"malformed-syntax.yaml", []string{"malformed-syntax.yaml:4: mapping values are not allowed"}},
		{"malformed-duplicate.yaml", []string{"malformed-duplicate.yaml:4:", "taskmanager.numberOfTaskSlots is set twice (also at line 1)"}},
		{"malformed-flat-line.yaml", []string{"malformed-flat-line.yaml:2:", `want "key: value" entries`, "parallelism.default 3"}},
		{"malformed-list-root.yaml", []string{"malformed-list-root.yaml:1:", "got a list"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, _, err := readFixture(t, tt.file)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseYAMLWarnsUnknownKeys(t *testing.T) {
	c, warnings, err := readFixture(t, "unknown.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(warnings), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 warnings, got %q", warnings)
	}
	for i, want := range []string{
		`unknown.yaml:2: configuration key \"paralelism.default\" is not one Spate knows (did you mean parallelism.default?)`,
		`unknown.yaml:3: configuration key \"taskmanager.numberoftaskslots\" is not one Spate knows (did you mean taskmanager.numberOfTaskSlots?)`,
		`unknown.yaml:5: configuration key \"state.backend.type\" is not one Spate knows; it has no effect unless a job reads it`,
	} {
		if !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], want) || !strings.Contains(lines[i], "file=unknown.yaml") {
			t.Errorf("warning %d = %q, want it to contain %q and the file", i, lines[i], want)
		}
	}
	// A job's own key is not warned about, and every key is kept: a job
	// reads its own keys.
	if strings.Contains(warnings, "app.greeting") {
		t.Errorf("a job's own key was warned about: %q", warnings)
	}
	if v, _ := c.Get("app.greeting"); v != "hi" {
		t.Errorf("app.greeting = %q, want hi", v)
	}
	if got := c.UnknownKeys(); !slices.Equal(got, []string{"paralelism.default", "state.backend.type", "taskmanager.numberoftaskslots"}) {
		t.Errorf("UnknownKeys = %q", got)
	}
}

func TestParseYAMLEdgeCases(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
		wantErr  string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "only comments", in: "# nothing\n\n# here\n", want: map[string]string{}},
		{name: "null leaves unset", in: "parallelism.default:\nrest.port: ~\n", want: map[string]string{}},
		{name: "block scalar", in: "app.text: |\n  a\n  b\n", want: map[string]string{"app.text": "a\nb\n"}},
		{name: "anchor and merge", in: "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", want: map[string]string{"base.x": "1", "other.x": "1", "other.y": "2"}},
		{name: "merge overridden", in: "base: &b {x: 1, y: 1}\nother:\n  <<: *b\n  x: 2\n", want: map[string]string{"base.x": "1", "base.y": "1", "other.x": "2", "other.y": "1"}},
		{name: "merge list, first wins", in: "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n", want: map[string]string{"a.x": "1", "b.x": "2", "b.y": "2", "c.x": "1", "c.y": "2"}},
		{name: "merge of text", in: "a:\n  <<: 3\n", wantErr: "in:2: << merges mappings"},
		{name: "quoted colon", in: `rest.address: "::1"` + "\n", want: map[string]string{"rest.address": "::1"}},
		{name: "inline comment", in: "parallelism.default: 3 # three\n", want: map[string]string{"parallelism.default": "3"}},
		{name: "empty key", in: `"": 3` + "\n", wantErr: "in:1: empty key"},
		{name: "list key", in: "[a]: 3\n", wantErr: "in:1: a key must be text"},
		{name: "two documents", in: "a: 1\n---\nb: 2\n", wantErr: "in:2: a second YAML document"},
		{name: "tab indent", in: "a:\n\tb: 1\n", wantErr: "in:2:"},
		{name: "nested duplicate", in: "a:\n  b: 1\na.b: 2\n", wantErr: "in:3: key a.b is set twice (also at line 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			err := c.parseYAML(strings.NewReader(tt.in), "in", slog.New(slog.DiscardHandler))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Entries(); !maps.Equal(got, tt.want) {
				t.Errorf("entries = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestParseYAMLAliasBomb: nested aliases that would expand to billions of
// entries are refused quickly.
func TestParseYAMLAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	var c Config
	err := c.parseYAML(strings.NewReader(b.String()), "bomb", slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "YAML nodes") {
		t.Fatalf("alias bomb: %v, want an error about the number of nodes", err)
	}
}

// flatYAML renders entries as a flat configuration file.
func flatYAML(entries map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		fmt.Fprintf(&b, "%q: %q\n", k, entries[k])
	}
	return b.String()
}

// FuzzParseYAML: any input parses or fails with an error naming the file,
// never panics; what parses, written back as flat YAML, reads back the
// same.
func FuzzParseYAML(f *testing.F) {
	for _, name := range []string{"flat.yaml", "nested.yaml", "mixed.yaml", "malformed-syntax.yaml", "malformed-duplicate.yaml", "unknown.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "yaml", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("a: &x [1, *x]\n")
	f.Add("<<: {a: 1}\n")
	f.Fuzz(func(t *testing.T, in string) {
		var c Config
		err := c.parseYAML(strings.NewReader(in), "fuzz.yaml", slog.New(slog.DiscardHandler))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		_ = c.Validate() // must not panic
		var back Config
		// %q is Go quoting, which YAML's double quotes read back for
		// printable text; skip values it would not.
		for k, v := range c.Entries() {
			if strings.ContainsFunc(k+v, func(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 }) {
				return
			}
		}
		if err := back.parseYAML(strings.NewReader(flatYAML(c.Entries())), "back.yaml", slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("flat rendering of %v does not parse: %v", c.Entries(), err)
		}
		if !maps.Equal(back.Entries(), c.Entries()) {
			t.Fatalf("round trip: %v, then %v", c.Entries(), back.Entries())
		}
	})
}

// FuzzProperties: $SPATE_PROPERTIES in either form never panics, and what
// EncodeProperties writes decodes to the same entries.
func FuzzProperties(f *testing.F) {
	f.Add("parallelism.default=5, execution.exchange.encode=true")
	f.Add(`{"a":"b,c=d","e":"\n"}`)
	f.Add("novalue")
	f.Fuzz(func(t *testing.T, props string) {
		var c Config
		if err := decodeProperties(&c, props); err != nil {
			return
		}
		if err := c.Validate(); err != nil && strings.Contains(err.Error(), "UTF-8") {
			return // refused before it is encoded for a job's workers
		}
		var back Config
		if err := decodeProperties(&back, EncodeProperties(c.Entries())); err != nil {
			t.Fatalf("EncodeProperties(%v) does not decode: %v", c.Entries(), err)
		}
		if !maps.Equal(back.Entries(), c.Entries()) {
			t.Fatalf("round trip: %v, then %v", c.Entries(), back.Entries())
		}
	})
}
