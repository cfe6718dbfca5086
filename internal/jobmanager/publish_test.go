package jobmanager

import (
	"testing"

	v1 "github.com/spate-dev/spate/api/v1"
)

// TestPublishLocked: workers waiting to publish are answered yes only once
// every subtask of the job finished or runs in a waiting worker, and no as
// soon as the job stops running.
func TestPublishLocked(t *testing.T) {
	newJob := func(status string, states ...string) *job {
		// Two vertices at parallelism 2; slot 0 on w0, slot 1 on w1.
		j := &job{id: "j", status: status, workers: []*worker{{id: "w0", slots: 1}, {id: "w1", slots: 1}}}
		j.tasks = [][]task{{{state: states[0]}, {state: states[1]}}, {{state: states[2]}, {state: states[3]}}}
		return j
	}
	const fin, run = v1.TaskFinished, v1.TaskRunning
	cases := []struct {
		name       string
		job        *job
		waiting    []string
		wantAnswer bool
		wantReason string
	}{
		{"other worker still running", newJob(statusRunning, fin, run, fin, fin), []string{"w0"}, false, ""},
		{"other worker finished", newJob(statusRunning, run, fin, run, fin), []string{"w0"}, true, ""},
		{"both waiting", newJob(statusRunning, run, run, run, run), []string{"w0", "w1"}, true, ""},
		{"job failing", newJob(statusFailing, fin, run, fin, fin), []string{"w0"}, true, "job j is FAILING"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := tc.job
			j.publish = map[string]chan string{}
			answers := map[string]chan string{}
			for _, w := range tc.waiting {
				answers[w] = make(chan string, 1)
				j.publish[w] = answers[w]
			}
			j.publishLocked()
			for w, ch := range answers {
				select {
				case reason := <-ch:
					if !tc.wantAnswer {
						t.Fatalf("%s answered %q, want no answer yet", w, reason)
					}
					if reason != tc.wantReason {
						t.Errorf("%s answered %q, want %q", w, reason, tc.wantReason)
					}
				default:
					if tc.wantAnswer {
						t.Fatalf("%s got no answer", w)
					}
				}
			}
			if tc.wantAnswer && len(j.publish) != 0 {
				t.Errorf("answered workers still wait: %v", j.publish)
			}
		})
	}
}
