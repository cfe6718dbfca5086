package config

import (
	"maps"
	"os"
	"strings"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	f, err := os.Open("testdata/job.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ParseEnvFile(f, "job.env")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"DB_USER":     "spate",
		"DB_PASSWORD": `s3cret, with "quotes" # and a hash`,
		"API_TOKEN":   `raw $value \n kept`,
		"EMPTY":       "",
		"SPACED":      "padded value",
		"URL":         "http://example.com/#fragment",
	}
	if !maps.Equal(got, want) {
		t.Errorf("ParseEnvFile =\n%q\nwant\n%q", got, want)
	}
}

func TestParseEnvFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"no equals", "A=1\nJUSTANAME\n", "job.env:2: want NAME=value"},
		{"bad name", "1A=x\n", `job.env:1: variable name "1A"`},
		{"dash in name", "MY-VAR=x\n", `"MY-VAR": use letters, digits and _`},
		{"empty name", "=x\n", "empty variable name"},
		{"reserved", "SPATE_PROPERTIES=x\n", "set by Spate"},
		{"reserved lower case", "spate_target=x\n", "set by Spate"},
		{"memory limit", "GOMEMLIMIT=1GiB\n", "set by Spate"},
		{"unclosed", "A=\"abc\n", "no closing \""},
		{"text after quotes", "A='abc' def\n", "after the quoted value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnvFile(strings.NewReader(tc.text), "job.env")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseEnvFile(%q) error = %v, want one containing %q", tc.text, err, tc.want)
			}
		})
	}
}

func TestWorkerEnv(t *testing.T) {
	var c Config
	c.Set(TaskManagerEnvPrefix+"DB_PASSWORD", "s3cret")
	c.Set(TaskManagerEnvPrefix+"REGION", "eu")
	c.Set("parallelism.default", "2")
	got, err := c.WorkerEnv()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"DB_PASSWORD": "s3cret", "REGION": "eu"}; !maps.Equal(got, want) {
		t.Errorf("WorkerEnv = %v, want %v", got, want)
	}
	if got := c.ClusterEntries(); !maps.Equal(got, map[string]string{"parallelism.default": "2"}) {
		t.Errorf("ClusterEntries = %v, want the entries without the workers' variables", got)
	}
	c.Set(TaskManagerEnvPrefix+"SPATE_WORKER_DEPLOYMENT", "x")
	if _, err := c.WorkerEnv(); err == nil || !strings.Contains(err.Error(), TaskManagerEnvPrefix+"SPATE_WORKER_DEPLOYMENT") {
		t.Errorf("reserved name: %v, want an error naming the entry", err)
	}
}

// TestPropertiesRoundTrip checks values with the separators of the
// hand-written form survive the trip to a child process.
func TestPropertiesRoundTrip(t *testing.T) {
	entries := map[string]string{
		"kafka.bootstrap.servers":            "a:9092,b:9092",
		TaskManagerEnvPrefix + "DB_PASSWORD": "p=a,s\ns",
		"parallelism.default":                "4",
	}
	t.Setenv(ConfDirEnv, "")
	t.Setenv(PropertiesEnv, EncodeProperties(entries))
	c, err := FromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Entries(); !maps.Equal(got, entries) {
		t.Errorf("entries after the round trip = %q, want %q", got, entries)
	}
	t.Setenv(PropertiesEnv, `{"a": 1}`)
	if _, err := FromEnvironment(); err == nil || !strings.Contains(err.Error(), PropertiesEnv) {
		t.Errorf("malformed JSON properties: %v, want an error naming %s", err, PropertiesEnv)
	}
}

// FuzzParseEnvFile checks the parser never panics, and that what it
// accepts is a set of valid names whose values a file written back in
// double quotes reproduces.
func FuzzParseEnvFile(f *testing.F) {
	b, err := os.ReadFile("testdata/job.env")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("A='x'\nB=\"y\\\"\" # c\n")
	f.Add("export X=1 #2\n")
	f.Fuzz(func(t *testing.T, text string) {
		env, err := ParseEnvFile(strings.NewReader(text), "fuzz.env")
		if err != nil {
			return
		}
		var out strings.Builder
		for k, v := range env {
			if err := checkEnvName(k); err != nil {
				t.Fatalf("accepted name %q: %v", k, err)
			}
			if strings.ContainsAny(v, "\r\n") {
				continue // a line-based file writes these escaped only
			}
			r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
			out.WriteString(k + `="` + r.Replace(v) + "\"\n")
		}
		again, err := ParseEnvFile(strings.NewReader(out.String()), "again.env")
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out.String(), err)
		}
		for k, v := range again {
			if env[k] != v {
				t.Fatalf("%s = %q after the round trip, want %q", k, v, env[k])
			}
		}
	})
}
