package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// TestDaemonsLogJSON runs a job on daemons started with --log-format
// json: every line they log is a JSON object with time, level and msg,
// and every line that concerns the job carries its id as "job".
func TestDaemonsLogJSON(t *testing.T) {
	jsonLog := []string{"--log-format", "json"}
	c := startClusterTM(t, jsonLog, jsonLog, 1)
	out, id, err := c.run(t, []string{"-p", "1"}, "wordcount", wordcountInput(t))
	if err != nil || id == "" {
		t.Fatalf("run: %v\n%s", err, out)
	}
	c.waitStatus(t, id, v1.JobFinished)
	// The TaskManager logs the job's release once the JobManager has
	// released it.
	waitFor(t, 20*time.Second, "the TaskManager to log the job's release", func() bool {
		return strings.Contains(c.tms[0].stderr(), `"job":"`+id+`"`)
	})
	aboutJob := 0
	for name, p := range map[string]*proc{"JobManager": c.jm, "TaskManager": c.tms[0]} {
		sc := bufio.NewScanner(strings.NewReader(p.stderr()))
		for sc.Scan() {
			line := sc.Text()
			if strings.TrimSpace(line) == "" {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("%s logged a line that is not JSON: %v\n%s", name, err, line)
				continue
			}
			for _, k := range []string{"time", "level", "msg"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("%s logged a line without %q: %s", name, k, line)
				}
			}
			if strings.Contains(line, id) {
				aboutJob++
				if rec["job"] != id {
					t.Errorf("%s logged a line about job %s without it as \"job\": %s", name, id, line)
				}
			}
		}
	}
	if aboutJob < 3 {
		t.Errorf("the daemons logged %d lines about the job, want its submission, deployment and release at least", aboutJob)
	}
	// A wrong format is refused, naming the forms.
	if out, err := spateCLI(t, "taskmanager", "--log-format", "xml", "--jobmanager", c.rpc); err == nil || !strings.Contains(out, "text or json") {
		t.Errorf("--log-format xml: %v\n%s", err, out)
	}
}
