package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMalformedConfigFails: a malformed value of a known key fails the
// command that loads it, naming the key, the value and the expected form,
// before any job or daemon runs: `spate run` at submission, a program run
// on its own at Execute, the daemons at their start.
func TestMalformedConfigFails(t *testing.T) {
	bin := binaries(t)
	input := wordcountInput(t)
	home := t.TempDir()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"run parallelism", []string{"run", "-D", "parallelism.default=abc", filepath.Join(bin, "wordcount"), input},
			[]string{`configuration parallelism.default = "abc": want an integer from 1 to 32768`}},
		{"run max parallelism", []string{"run", "-D", "pipeline.max-parallelism=0", filepath.Join(bin, "wordcount"), input},
			[]string{`configuration pipeline.max-parallelism = "0": want an integer from 1 to 32768`}},
		{"run remote", []string{"run", "--target", "remote", "-m", "127.0.0.1:1", "-D", "pipeline.max-parallelism=0", filepath.Join(bin, "wordcount"), input},
			[]string{`configuration pipeline.max-parallelism = "0"`}},
		{"run-application", []string{"run-application", "-D", "pipeline.max-parallelism=0", filepath.Join(bin, "wordcount"), input},
			[]string{`configuration pipeline.max-parallelism = "0": want an integer from 1 to 32768`}},
		{"session start", []string{"session", "start", "--taskmanagers", "1", "-D", "heartbeat.timeout=soon"},
			[]string{`configuration heartbeat.timeout = "soon": want a duration above zero`}},
		{"session start heartbeats", []string{"session", "start", "--taskmanagers", "1", "-D", "heartbeat.interval=60 s"},
			[]string{`configuration heartbeat.timeout = "50 s" must be longer than heartbeat.interval = "60 s"`}},
		{"jobmanager", []string{"jobmanager", "--rpc-port", "0", "-D", "rest.port=99999"},
			[]string{`configuration rest.port = "99999": want an integer from 0 to 65535`}},
		{"taskmanager", []string{"taskmanager", "--jobmanager", "127.0.0.1:1", "-D", "heartbeat.interval=often"},
			[]string{`configuration heartbeat.interval = "often"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "spate"), tt.args...)
			cmd.Env = append(os.Environ(), "SPATE_HOME="+home)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("spate %s succeeded:\n%s", strings.Join(tt.args, " "), out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("spate %s: output lacks %q:\n%s", strings.Join(tt.args, " "), w, out)
				}
			}
			// Nothing ran: the only output is the error.
			if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "spate: ") {
				t.Errorf("spate %s printed more than its error:\n%s", strings.Join(tt.args, " "), out)
			}
		})
	}
	if ss := listSessions(t, home); len(ss) != 0 {
		t.Errorf("sessions after a failed start: %+v", ss)
	}

	// A program run on its own reads $SPATE_PROPERTIES: its Execute fails.
	cmd := exec.Command(filepath.Join(bin, "wordcount"), input)
	cmd.Env = append(os.Environ(), "SPATE_PROPERTIES=pipeline.max-parallelism=0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `configuration pipeline.max-parallelism = "0"`) {
		t.Errorf("wordcount with pipeline.max-parallelism=0: %v\n%s", err, out)
	}
}

// TestConfigFileForms runs a job with the same configuration written in
// Flink's flat form and in the nested form of Flink 1.19+, through
// --config and through $SPATE_CONF_DIR/config.yaml: both reach the job
// alike, and a misspelt key is warned about, naming the file and the key
// meant.
func TestConfigFileForms(t *testing.T) {
	bin := binaries(t)
	dir := t.TempDir()
	files := map[string]string{
		"flat.yaml": `# Flink's flat form
app.greeting: "hello, nested"
containerized.taskmanager.env.PROBE_SECRET: s3cret
parallelism.default: 3
taskmanager.numberoftaskslots: 2
`,
		"nested.yaml": `# Flink 1.19+'s nested form
app:
  greeting: "hello, nested"
containerized:
  taskmanager:
    env:
      PROBE_SECRET: s3cret
parallelism:
  default: 3
taskmanager:
  numberoftaskslots: 2
`,
	}
	probes := map[string][]string{}
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(bin, "spate"), "run", "--config", path, filepath.Join(bin, "envprobe"))
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("spate run --config %s: %v\n%s%s", name, err, stdout.String(), stderr.String())
		}
		var lines []string
		for _, l := range strings.Split(stdout.String(), "\n") {
			if strings.Contains(l, "probe ") {
				lines = append(lines, l[strings.Index(l, "probe "):])
			}
		}
		slices.Sort(lines)
		probes[name] = lines
		if len(lines) != 4 || !strings.Contains(lines[0], `SECRET="s3cret"`) || !strings.Contains(lines[0], `greeting="hello, nested"`) {
			t.Errorf("%s: the job did not see the file's entries: %q", name, lines)
		}
		warn := `configuration key "taskmanager.numberoftaskslots" is not one Spate knows (did you mean taskmanager.numberOfTaskSlots?)`
		if !strings.Contains(stderr.String(), "WARN") || !strings.Contains(stderr.String(), warn) || !strings.Contains(stderr.String(), path) {
			t.Errorf("%s: no warning naming the misspelt key and the file on stderr:\n%s", name, stderr.String())
		}
		if strings.Contains(stderr.String(), "app.greeting") {
			t.Errorf("%s: the job's own key app.greeting was warned about:\n%s", name, stderr.String())
		}
	}
	if !slices.Equal(probes["flat.yaml"], probes["nested.yaml"]) {
		t.Errorf("flat and nested files differ in effect:\n%q\n%q", probes["flat.yaml"], probes["nested.yaml"])
	}

	// A misspelt -D key is warned about too; the job still runs.
	out, err := exec.Command(filepath.Join(bin, "spate"), "run", "-D", "paralelism.default=2", filepath.Join(bin, "envprobe")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `-D paralelism.default=2: configuration key "paralelism.default" is not one Spate knows (did you mean parallelism.default?)`) || !strings.Contains(string(out), "probe 4") {
		t.Errorf("spate run -D paralelism.default=2: %v, want a warning and the job's output:\n%s", err, out)
	}

	// $SPATE_CONF_DIR/config.yaml in the nested form sets a program's
	// default parallelism (read by the program itself).
	confDir := filepath.Join(dir, "conf")
	os.Mkdir(confDir, 0o755)
	if err := os.WriteFile(filepath.Join(confDir, "config.yaml"), []byte("parallelism:\n  default: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "spate"), "info", filepath.Join(bin, "wordcount"), wordcountInput(t))
	cmd.Env = append(os.Environ(), "SPATE_CONF_DIR="+confDir)
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("spate info: %v", err)
	}
	var g struct {
		Vertices []struct {
			Name        string `json:"name"`
			Parallelism int    `json:"parallelism"`
		} `json:"vertices"`
	}
	if err := json.Unmarshal(out, &g); err != nil {
		t.Fatalf("plan is not JSON: %v\n%s", err, out)
	}
	if len(g.Vertices) == 0 || g.Vertices[0].Parallelism != 5 {
		t.Errorf("plan with parallelism.default 5 nested in config.yaml: %+v", g.Vertices)
	}
}
