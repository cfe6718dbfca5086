package main

import (
	"bytes"
	"testing"
)

// TestJobLines checks how a per-job client labels its clusters' output
// lines with their job's name.
func TestJobLines(t *testing.T) {
	tests := []struct {
		name, job, in, want string
	}{
		{name: "tagged", job: "daily", in: "[job 1234abcd w0] alpha 1\n[job 1234abcd w1] beta 2\n",
			want: "[job 1234abcd w0 daily] alpha 1\n[job 1234abcd w1 daily] beta 2\n"},
		{name: "name with spaces", job: "daily report", in: "[job 1234abcd w0] x\n",
			want: "[job 1234abcd w0 \"daily report\"] x\n"},
		{name: "name with a bracket", job: "a]b", in: "[job 1234abcd w0] x\n",
			want: "[job 1234abcd w0 \"a]b\"] x\n"},
		{name: "untagged passes through", job: "daily", in: "taskmanager says hi\n[job broken\n",
			want: "taskmanager says hi\n[job broken\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			n, err := (&jobLines{name: tt.job, w: &out}).Write([]byte(tt.in))
			if err != nil || n != len(tt.in) {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(tt.in))
			}
			if out.String() != tt.want {
				t.Errorf("got %q, want %q", out.String(), tt.want)
			}
		})
	}
}
