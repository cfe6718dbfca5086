package procdir

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// deadPID returns the pid of a process that has ended and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

func mark(t *testing.T, dir string, o owner) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, Work), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keep.log"), []byte("log"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(o)
	if err := os.WriteFile(filepath.Join(dir, MarkerFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPrune(t *testing.T) {
	root := t.TempDir()
	dead := deadPID(t)
	self := os.Getpid()
	tests := []struct {
		name       string
		owner      *owner
		wantDir    bool // the directory is still there
		wantWork   bool // its Work subdirectory is still there
		wantPruned string
	}{
		{name: "live owner", owner: &owner{PID: self, Start: startTime(self), Remove: true}, wantDir: true, wantWork: true},
		{name: "dead owner, remove", owner: &owner{PID: dead, Remove: true}, wantPruned: "dead owner, remove"},
		{name: "dead owner, keep", owner: &owner{PID: dead}, wantDir: true, wantPruned: filepath.Join("dead owner, keep", Work)},
		{name: "pid reused", owner: &owner{PID: self, Start: "1", Remove: true}, wantPruned: "pid reused"},
		{name: "no marker", wantDir: true, wantWork: true},
	}
	for _, tc := range tests {
		dir := filepath.Join(root, tc.name)
		if tc.owner != nil {
			mark(t, dir, *tc.owner)
		} else if err := os.MkdirAll(filepath.Join(dir, Work), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Prune(root)
	if err != nil {
		t.Fatal(err)
	}
	var wantRemoved []string
	for _, tc := range tests {
		if tc.wantPruned != "" {
			wantRemoved = append(wantRemoved, filepath.Join(root, tc.wantPruned))
		}
	}
	slices.Sort(removed)
	slices.Sort(wantRemoved)
	if !slices.Equal(removed, wantRemoved) {
		t.Errorf("Prune removed %q, want %q", removed, wantRemoved)
	}
	for _, tc := range tests {
		dir := filepath.Join(root, tc.name)
		if _, err := os.Stat(dir); (err == nil) != tc.wantDir {
			t.Errorf("%s: directory present = %v, want %v", tc.name, err == nil, tc.wantDir)
		}
		if _, err := os.Stat(filepath.Join(dir, Work)); (err == nil) != tc.wantWork {
			t.Errorf("%s: work present = %v, want %v", tc.name, err == nil, tc.wantWork)
		}
	}
}

func TestCreateClaims(t *testing.T) {
	root := t.TempDir()
	dir, err := Create(root, "taskmanager")
	if err != nil {
		t.Fatal(err)
	}
	if !Owned(dir) {
		t.Errorf("Owned(%s) = false for this process's directory", dir)
	}
	if removed, _ := Prune(root); len(removed) != 0 {
		t.Errorf("Prune removed %q, the directory of a live process", removed)
	}
	if got, want := filepath.Base(dir), fmt.Sprintf("taskmanager-%d-", os.Getpid()); !strings.HasPrefix(got, want) {
		t.Errorf("directory name %q does not start with %q (the owner's pid)", got, want)
	}
}

func TestRootRefusesForeignDirectory(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir, err := Root()
	if err != nil || dir != RootPath() {
		t.Fatalf("Root() = %q, %v", dir, err)
	}
	if _, err := Root(); err != nil {
		t.Fatalf("Root() again: %v", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Root(); err == nil || !strings.Contains(err.Error(), "not a private directory") {
		t.Errorf("Root() of a world-writable directory: %v, want refused", err)
	}
	os.Remove(dir)
	if err := os.Symlink(t.TempDir(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Root(); err == nil {
		t.Error("Root() of a symbolic link: no error, want refused")
	}
}
