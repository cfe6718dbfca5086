// Package procdir keeps directories owned by a process on this host. Each
// carries a marker file naming its owner (process id and start time, so a
// reused pid is not mistaken for it), and a later process removes the
// directories whose owner died without cleaning up after itself, as a
// SIGKILLed JobManager or TaskManager does.
//
// A directory is claimed either whole (Create, or Claim with remove) or
// with only its scratch subdirectory Work disposable (Claim without
// remove): a kept cluster's logs outlive its processes, its blobs and
// caches do not. Prune removes what the dead owners left.
//
// Daemons without a directory of their own use per-process directories
// under Root, $TMPDIR/spate-<uid>.
package procdir

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// MarkerFile is the name of the owner marker in a claimed directory.
const MarkerFile = ".spate-owner"

// Work is the scratch subdirectory of a directory claimed without remove:
// what Prune removes once the owner has died.
const Work = "work"

// owner is a marker's content.
type owner struct {
	PID int `json:"pid"`
	// Start is the process's start time in clock ticks since boot
	// (/proc/PID/stat field 22), empty where /proc is missing.
	Start string `json:"start,omitempty"`
	// Remove asks for the whole directory to be removed once the owner
	// has died; otherwise only Work is.
	Remove bool `json:"remove"`
}

// RootPath is the per-user directory for the files of daemons that have
// no directory of their own: $TMPDIR/spate-<uid>.
func RootPath() string {
	return filepath.Join(os.TempDir(), "spate-"+strconv.Itoa(os.Getuid()))
}

// Root returns RootPath, creating it (mode 0700). It must be a directory
// of this user's, not a symbolic link: in a shared /tmp another user could
// have made it first.
func Root() (string, error) {
	dir := RootPath()
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("create the per-user directory %s: %w (set TMPDIR to a writable directory)", dir, err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("per-user directory %s: %w", dir, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !st.IsDir() || ok && int(sys.Uid) != os.Getuid() || st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("per-user directory %s is not a private directory of this user (mode %v): remove it, or set TMPDIR elsewhere", dir, st.Mode())
	}
	return dir, nil
}

// Claim marks dir, which must exist, as owned by this process. With
// remove, Prune removes all of dir once this process has died; without,
// only dir/Work.
func Claim(dir string, remove bool) error {
	b, _ := json.Marshal(owner{PID: os.Getpid(), Start: startTime(os.Getpid()), Remove: remove})
	tmp := filepath.Join(dir, MarkerFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("claim %s: %w", dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, MarkerFile)); err != nil {
		return fmt.Errorf("claim %s: %w", dir, err)
	}
	return nil
}

// Create makes a new directory under root named prefix-<pid>-<random>,
// claimed whole by this process.
func Create(root, prefix string) (string, error) {
	var r [4]byte
	rand.Read(r[:])
	dir := filepath.Join(root, fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), hex.EncodeToString(r[:])))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("create a directory under %s: %w", root, err)
	}
	if err := Claim(dir, true); err != nil {
		os.Remove(dir)
		return "", err
	}
	return dir, nil
}

// Prune removes, from the directories directly under root, what their
// dead owners left: the whole directory if it was claimed so, else its
// Work subdirectory. Directories without a marker, and those of live
// owners, are left alone. It returns what it removed; a directory it
// cannot remove (another user's) is skipped.
func Prune(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prune %s: %w", root, err)
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		o, ok := readMarker(dir)
		if !ok || Alive(o.PID, o.Start) {
			continue
		}
		target := dir
		if !o.Remove {
			target = filepath.Join(dir, Work)
			if _, err := os.Lstat(target); err != nil {
				continue
			}
		}
		if err := os.RemoveAll(target); err == nil {
			removed = append(removed, target)
		}
	}
	return removed, nil
}

// Owned reports whether dir's marker names a process that still runs.
func Owned(dir string) bool {
	o, ok := readMarker(dir)
	return ok && Alive(o.PID, o.Start)
}

func readMarker(dir string) (owner, bool) {
	b, err := os.ReadFile(filepath.Join(dir, MarkerFile))
	if err != nil {
		return owner{}, false
	}
	var o owner
	if json.Unmarshal(b, &o) != nil || o.PID <= 0 {
		return owner{}, false
	}
	return o, true
}

// Alive reports whether process pid runs and, if start is set, is the
// process that started then rather than a later one given the same pid.
// A zombie counts as dead.
func Alive(pid int, start string) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true // no /proc: trust kill
	}
	fields, ok := statFields(b)
	if !ok {
		return true
	}
	if fields[0] == "Z" {
		return false
	}
	return start == "" || fields[19] == start
}

// startTime is a process's start time from /proc, "" if unknown.
func startTime(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	fields, ok := statFields(b)
	if !ok {
		return ""
	}
	return fields[19]
}

// statFields returns the fields of /proc/PID/stat after the command name:
// [0] is the state (field 3), [19] the start time (field 22).
func statFields(b []byte) ([]string, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	var fields []string
	for _, f := range bytes.Fields(b[i+1:]) {
		fields = append(fields, string(f))
	}
	return fields, len(fields) >= 20
}
