package taskmanager

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
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
	if u, err := h.tm.takeUser(); err != nil || u.uid == uid {
		t.Errorf("a second worker got uid %v (%v) while %d is held", u, err, uid)
	} else {
		u.release()
	}
}
