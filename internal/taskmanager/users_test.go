package taskmanager

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spate-dev/spate/internal/deployment"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// ownUserScript prints who it runs as, its directory's owner and mode,
// and whether it can read the TaskManager's cache and environment.
const ownUserScript = `#!/bin/sh
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
echo "dir=$(stat -c '%u %a' "$SPATE_JOB_DIR") deployment=$(stat -c '%u %a' "$SPATE_WORKER_DEPLOYMENT")"
echo "tmpdir=$TMPDIR"
if cat /proc/1/environ >/dev/null 2>&1; then echo "init-environ=readable"; else echo "init-environ=refused"; fi
echo done
`

// TestWorkersRunAsOwnUsers: a TaskManager running as root runs each
// worker under a uid of the range, no groups, in a 0700 directory of that
// uid; two workers at once get two uids; a released worker's uid is freed
// only with its directory.
func TestWorkersRunAsOwnUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a TaskManager changes users only as root")
	}
	saved := uidLockDir
	uidLockDir = t.TempDir()
	t.Cleanup(func() { uidLockDir = saved })
	h := startTM(t, Config{Slots: 2, WorkerUIDs: &UIDRange{First: 170000, Last: 170009}}, ownUserScript)
	h.deploy(1, nil, nil)
	waitFor(t, 10*time.Second, "the worker's output", func() bool { return strings.Contains(h.out.String(), "done") })
	text := strings.Join(h.lines(), "\n")
	var uid int
	for _, l := range h.lines() {
		if rest, ok := strings.CutPrefix(l, "uid="); ok {
			uid, _ = strconv.Atoi(strings.Fields(rest)[0])
		}
	}
	if uid < 170000 || uid > 170009 {
		t.Fatalf("the worker ran as uid %d, want one of 170000-170009:\n%s", uid, text)
	}
	for _, want := range []string{
		"gid=" + strconv.Itoa(uid) + " groups=" + strconv.Itoa(uid),
		"dir=" + strconv.Itoa(uid) + " 700",
		"deployment=" + strconv.Itoa(uid) + " 600",
		"init-environ=refused",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the worker's output lacks %q:\n%s", want, text)
		}
	}
	// Its uid is locked while its directory exists.
	if _, err := os.Stat(uidLockDir + "/" + strconv.Itoa(uid)); err != nil {
		t.Errorf("no lock file for uid %d: %v", uid, err)
	}
	if u, err := h.tm.takeUser("j2"); err != nil || u.uid == uid {
		t.Errorf("a worker of another job got uid %v (%v) while %d is held", u, err, uid)
	} else {
		u.release()
	}
	// Another worker of the job shares its uid: what one attempt writes
	// the next may change.
	if u, err := h.tm.takeUser("j1"); err != nil || u.uid != uid {
		t.Errorf("another worker of job j1 got uid %v (%v), want j1's %d", u, err, uid)
	} else {
		u.release()
	}
}

// TestTakeUser: the workers of one job share a uid, those of other jobs
// get others; a uid freed by its job's last worker goes to the next job
// that hashes to it; a full range is an error that names the key.
func TestTakeUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a TaskManager changes users only as root")
	}
	saved := uidLockDir
	uidLockDir = t.TempDir()
	t.Cleanup(func() { uidLockDir = saved })
	tm := &TaskManager{cfg: Config{WorkerUIDs: &UIDRange{First: 170100, Last: 170102}}}
	take := func(job string) *workerUser {
		t.Helper()
		u, err := tm.takeUser(job)
		if err != nil {
			t.Fatalf("takeUser(%s): %v", job, err)
		}
		return u
	}
	a1, a2, b := take("job-a"), take("job-a"), take("job-b")
	if a1.uid != a2.uid || b.uid == a1.uid {
		t.Errorf("job-a's workers got %d and %d, job-b's %d: want one uid for job-a, another for job-b", a1.uid, a2.uid, b.uid)
	}
	c := take("job-c")
	if c.uid == a1.uid || c.uid == b.uid {
		t.Errorf("job-c got %d, held by job-a (%d) or job-b (%d)", c.uid, a1.uid, b.uid)
	}
	if u, err := tm.takeUser("job-d"); err == nil || !strings.Contains(err.Error(), KeyWorkerUIDs) {
		t.Errorf("a fourth job in a range of three got %v, %v; want an error naming %s", u, err, KeyWorkerUIDs)
	}
	// job-a's uid is held until its last worker goes.
	a1.release()
	if u, err := tm.takeUser("job-d"); err == nil {
		t.Errorf("job-d got uid %d while job-a's second worker holds it", u.uid)
	}
	a2.release()
	d := take("job-d")
	if d.uid != a1.uid {
		t.Errorf("job-d got %d, want the freed %d", d.uid, a1.uid)
	}
	b.release()
	c.release()
	d.release()
}

// TestWorkerRestoresStateItCannotOpen: a worker of its own user cannot
// open checkpoint storage (the JobManager's, 0700): the TaskManager reads
// the file:// state of its restore into its deployment file, so that the
// worker gets the bytes its handle names and no URL.
func TestWorkerRestoresStateItCannotOpen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a TaskManager changes users only as root")
	}
	saved := uidLockDir
	uidLockDir = t.TempDir()
	t.Cleanup(func() { uidLockDir = saved })
	store := t.TempDir() // 0700, root's
	state := []byte("keyed state of subtask 0")
	statePath := filepath.Join(store, "chk-3", "0-0-1-keyed")
	if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, state, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
if cat "$1" >/dev/null 2>&1; then echo "state-file=readable"; else echo "state-file=refused"; fi
echo "deployment=$(base64 -w0 "$SPATE_WORKER_DEPLOYMENT")"
echo done
`
	h := startTM(t, Config{Slots: 1, WorkerUIDs: &UIDRange{First: 170010, Last: 170019}}, script)
	sum := sha256.Sum256(state)
	h.jm.toTM <- &rpcpb.JobManagerMessage{Kind: &rpcpb.JobManagerMessage_Deploy{Deploy: &rpcpb.DeployWorker{
		JobId: "j1", JobName: "test", WorkerId: "w-1", Artifact: h.artifact, Args: []string{statePath},
		Fingerprint: "f1", SlotWorkers: []string{"w-1"}, Slots: 1,
		Restore: &rpcpb.RestoreCheckpoint{CheckpointId: 3, Subtasks: []*rpcpb.SubtaskState{{States: []*rpcpb.StateHandle{
			{Kind: "keyed", Url: "file://" + statePath, Size: int64(len(state)), Sha256: hex.EncodeToString(sum[:])},
			{Kind: "operator", Inline: []byte("small")},
		}}}},
	}}}
	waitFor(t, 10*time.Second, "the worker's output", func() bool { return strings.Contains(h.out.String(), "done") })
	var dep deployment.Deployment
	for _, l := range h.lines() {
		if b64, ok := strings.CutPrefix(l, "deployment="); ok {
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &dep); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Contains(h.lines(), "state-file=refused") {
		t.Errorf("the worker could read the JobManager's state file, or did not say:\n%s", strings.Join(h.lines(), "\n"))
	}
	var r rpcpb.RestoreCheckpoint
	if err := proto.Unmarshal(dep.Restore, &r); err != nil || len(r.Subtasks) != 1 || len(r.Subtasks[0].States) != 2 {
		t.Fatalf("the worker's restore: %v, %v", &r, err)
	}
	got := r.Subtasks[0].States
	if got[0].Url != "" || !bytes.Equal(got[0].Inline, state) || got[0].Sha256 != hex.EncodeToString(sum[:]) || got[0].Size != int64(len(state)) {
		t.Errorf("the file state reached the worker as %+v, want inline %q with its handle's size and SHA-256", got[0], state)
	}
	if string(got[1].Inline) != "small" {
		t.Errorf("the inline state reached the worker as %+v", got[1])
	}
}

// TestDefaultUIDRange: auto is root's subordinate ids where /etc/subuid
// and /etc/subgid both give root a range, else the fixed fallback.
func TestDefaultUIDRange(t *testing.T) {
	for _, tc := range []struct {
		name, subuid, subgid string
		want                 UIDRange
	}{
		{"podman's", "root:100000:65536\n", "root:100000:65536\n", UIDRange{100000, 165535}},
		{"other users only", "alice:100000:65536\nbob:165536:65536\n", "alice:100000:65536\n", FallbackWorkerUIDs},
		{"gids narrower", "root:200000:65536\n", "root:210000:10000\n", UIDRange{210000, 219999}},
		{"disjoint", "root:200000:65536\n", "root:400000:65536\n", FallbackWorkerUIDs},
		{"root by uid, LXD's", "0:1000000:1000000000\n", "0:1000000:1000000000\n", UIDRange{1000000, 1000999999}},
		{"too few", "root:100000:10\n", "root:100000:10\n", FallbackWorkerUIDs},
		{"low ids", "root:0:65536\n", "root:0:65536\n", UIDRange{1000, 65535}},
		{"garbage", "root:x:y\nroot\n::\n", "root:100000:65536\n", FallbackWorkerUIDs},
		{"no files", "", "", FallbackWorkerUIDs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := [2]string{filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")}
			if tc.subuid != "" {
				os.WriteFile(files[0], []byte(tc.subuid), 0o644)
				os.WriteFile(files[1], []byte(tc.subgid), 0o644)
			}
			saved := subIDFiles
			subIDFiles = files
			t.Cleanup(func() { subIDFiles = saved })
			if got := DefaultUIDRange(); got != tc.want {
				t.Errorf("DefaultUIDRange() = %v, want %v", got, tc.want)
			}
			if r, err := ParseUIDRange("auto"); err != nil || *r != tc.want {
				t.Errorf("ParseUIDRange(auto) = %v, %v, want %v", r, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		in      string
		want    *UIDRange
		wantErr bool
	}{
		{in: "none"}, {in: " NONE "},
		{in: "100000-100009", want: &UIDRange{100000, 100009}},
		{in: "10-20", wantErr: true}, {in: "200-100", wantErr: true}, {in: "lots", wantErr: true},
	} {
		got, err := ParseUIDRange(tc.in)
		if (err != nil) != tc.wantErr || (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
			t.Errorf("ParseUIDRange(%q) = %v, %v; want %v (error: %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// FuzzSubIDs: no subuid or subgid text makes rootSubIDs panic, and a
// range it finds is of at least 1,024 uids from 1000 up, that go with
// no account's.
func FuzzSubIDs(f *testing.F) {
	f.Add("root:100000:65536\n", "root:100000:65536\n")
	f.Add("0:1000000:1000000000\n", "root:0:4294967295\n")
	f.Fuzz(func(t *testing.T, subuid, subgid string) {
		r, ok := rootSubIDs(subuid, subgid)
		if ok && (r.First < 1000 || r.Last > 1<<31-2 || r.Last-r.First+1 < 1024) {
			t.Fatalf("rootSubIDs = %v", r)
		}
	})
}
