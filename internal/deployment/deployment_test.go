package deployment

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDeploymentRoundTrip(t *testing.T) {
	want := &Deployment{
		JobID: "j1", JobName: "wordcount", WorkerID: "w-2", Fingerprint: "f00d",
		JobManager: "127.0.0.1:6123", DataHost: "127.0.0.1", SlotWorkers: []string{"w-1", "w-2", "w-2"},
		TaskManager: "tm-1 (tmA)", HeartbeatInterval: 200 * time.Millisecond, HeartbeatTimeout: 2 * time.Second,
	}
	path := filepath.Join(t.TempDir(), "deployment.json")
	if err := want.Write(path); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvDeployment, path)
	got, err := FromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		vertex, subtask int
		want            bool
	}{{0, 0, false}, {0, 1, true}, {3, 2, true}, {0, 3, false}} {
		if l := got.Local(tc.vertex, tc.subtask); l != tc.want {
			t.Errorf("Local(%d, %d) = %v, want %v", tc.vertex, tc.subtask, l, tc.want)
		}
	}
}

func TestDeploymentFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		path    string
		wantErr string
	}{
		{name: "not a worker", path: ""},
		{name: "missing file", path: filepath.Join(dir, "absent.json"), wantErr: "read deployment"},
		{name: "not JSON", path: write("bad.json", "{"), wantErr: "bad.json"},
		{name: "incomplete", path: write("part.json", `{"jobId":"j1","workerId":"w-1"}`), wantErr: "incomplete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvDeployment, tc.path)
			d, err := FromEnvironment()
			switch {
			case tc.wantErr == "" && (err != nil || d != nil):
				t.Errorf("FromEnvironment() = %v, %v; want nil, nil", d, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("FromEnvironment() error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
