package taskmanager

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"google.golang.org/protobuf/proto"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// Per-worker users. A TaskManager running as root runs each worker under
// a uid of its own from Config.WorkerUIDs (taskmanager.worker.uid-range,
// by default root's subordinate uids or a fixed high range, auto),
// with no supplementary groups, in a private directory (0700, owned by
// that uid) under a directory only root writes (0711): a job's worker
// cannot read another job's /proc/<pid>/environ, memory, files or
// certificate, as every worker ran as one user before. A uid is taken
// for one job at a time on the whole host (takeUser): the workers of a
// job share one, and the TaskManagers of a host never hand it to
// another job's worker while one of the job's runs; a uid some process
// still runs as (one that escaped its worker's group) is skipped. The program runs from a copy in the worker's directory, whose
// SHA-256 is checked against the artifact id as it is made.
//
// A TaskManager that is not root cannot change users: its workers run as
// its own user and can read each other's environment (docs/security.md).

// KeyWorkerUIDs is the range of uids workers run under.
const KeyWorkerUIDs = "taskmanager.worker.uid-range"

// DefaultWorkerUIDs is KeyWorkerUIDs's default: auto, a range picked
// as container runtimes pick one (DefaultUIDRange).
const DefaultWorkerUIDs = "auto"

// SuggestedWorkerUIDs is the range docs/security.md suggests.
const SuggestedWorkerUIDs = "100000-165535"

// FallbackWorkerUIDs is auto's range where root has no subordinate ids:
// 65,536 uids from 0x70000000, above the ranges useradd (100000 up to
// 600100000) and systemd-nspawn (0x80000-0x6FFFFFFF) hand out, below
// systemd's foreign range (0x7FFE0000) and 2^31.
var FallbackWorkerUIDs = UIDRange{First: 0x70000000, Last: 0x70000000 + 65535}

// subIDFiles are the files of subordinate uids and gids auto reads.
var subIDFiles = [2]string{"/etc/subuid", "/etc/subgid"}

// uidLockDir holds the host's uid lock files.
var uidLockDir = "/run/spate-uids"

// UIDRange is a range of uids, both ends included.
type UIDRange struct{ First, Last int }

// ParseUIDRange reads "first-last", "auto" (DefaultUIDRange) or "none"
// (nil: no own users).
func ParseUIDRange(v string) (*UIDRange, error) {
	v = strings.TrimSpace(v)
	switch {
	case strings.EqualFold(v, "none"):
		return nil, nil
	case v == "" || strings.EqualFold(v, "auto"):
		r := DefaultUIDRange()
		return &r, nil
	}
	r, ok := parseRange(v)
	if !ok {
		return nil, fmt.Errorf("configuration %s = %q: want first-last, uids from 1000 up (e.g. %s), auto or none", KeyWorkerUIDs, v, SuggestedWorkerUIDs)
	}
	return &r, nil
}

func parseRange(v string) (UIDRange, bool) {
	a, b, ok := strings.Cut(v, "-")
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || first < 1000 || last < first || last > 1<<31-2 {
		return UIDRange{}, false
	}
	return UIDRange{First: first, Last: last}, true
}

// String gives the range as KeyWorkerUIDs takes it.
func (r UIDRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// DefaultUIDRange is the range auto stands for. As rootful Podman and
// LXD do, it is root's subordinate ids: the first range of root in
// /etc/subuid that /etc/subgid gives root too (workers' gids are their
// uids), from uid 1000 up; without one, FallbackWorkerUIDs. Either way
// no account of /etc/passwd owns these uids.
func DefaultUIDRange() UIDRange {
	uids, err1 := os.ReadFile(subIDFiles[0])
	gids, err2 := os.ReadFile(subIDFiles[1])
	if err1 != nil || err2 != nil {
		return FallbackWorkerUIDs
	}
	if r, ok := rootSubIDs(string(uids), string(gids)); ok {
		return r
	}
	return FallbackWorkerUIDs
}

// rootSubIDs finds root's first subordinate uid range (subuid's format,
// name:first:count per line) that its subordinate gids cover too.
func rootSubIDs(subuid, subgid string) (UIDRange, bool) {
	gids := subRanges(subgid)
	for _, u := range subRanges(subuid) {
		for _, g := range gids {
			r := UIDRange{First: max(u.First, g.First, 1000), Last: min(u.Last, g.Last, 1<<31-2)}
			if r.Last-r.First+1 >= 1024 {
				return r, true
			}
		}
	}
	return UIDRange{}, false
}

// subRanges returns root's ranges in a subuid or subgid file.
func subRanges(text string) []UIDRange {
	var out []UIDRange
	for line := range strings.Lines(text) {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 3 || (f[0] != "root" && f[0] != "0") {
			continue
		}
		first, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || first < 0 || n <= 0 || first > 1<<31-2-n {
			continue
		}
		out = append(out, UIDRange{First: first, Last: first + n - 1})
	}
	return out
}

// workerUser is the user a worker runs as when it is not the
// TaskManager's own; nil means the TaskManager's.
type workerUser struct {
	uid, gid int
	lock     *os.File // held while the worker runs
}

// own gives path to the worker's user; nothing for a nil workerUser.
func (u *workerUser) own(path string) error {
	if u == nil {
		return nil
	}
	if err := os.Lchown(path, u.uid, u.gid); err != nil {
		return fmt.Errorf("give %s to uid %d: %w", path, u.uid, err)
	}
	return nil
}

// release frees the uid for another worker.
func (u *workerUser) release() {
	if u != nil && u.lock != nil {
		u.lock.Close()
		u.lock = nil
	}
}

// ownUsers tells whether workers get users of their own.
func (tm *TaskManager) ownUsers() bool { return tm.cfg.WorkerUIDs != nil && os.Geteuid() == 0 }

// takeUser takes a uid of the range for a worker of job: the uid the
// job's other workers on this host run as, if one runs, else a free one,
// searched from where a hash of the job points, so that its workers on
// every host of the same range mostly get the same uid too. A job's
// workers share their uid so that what one writes (a file sink's
// directories and staging files) the next attempt's may change after a
// failover; no other job's worker gets it while one of the job's runs.
//
// Each uid has a lock file in uidLockDir, held shared by the workers
// running as it, which holds the id of their job; one taker at a time
// on the host (an exclusive lock on uidLockDir/take) reads and writes
// them.
func (tm *TaskManager) takeUser(job string) (*workerUser, error) {
	r := tm.cfg.WorkerUIDs
	if err := os.MkdirAll(uidLockDir, 0o700); err != nil {
		return nil, fmt.Errorf("worker users: %w", err)
	}
	guard, err := os.OpenFile(filepath.Join(uidLockDir, "take"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("worker users: %w", err)
	}
	defer guard.Close() // and so unlocked
	if err := syscall.Flock(int(guard.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("worker users: lock %s: %w", guard.Name(), err)
	}
	var busy map[int]bool
	n := r.Last - r.First + 1
	h := fnv.New32a()
	h.Write([]byte(job))
	start := int(h.Sum32() % uint32(n))
	for i := range n {
		uid := r.First + (start+i)%n
		path := filepath.Join(uidLockDir, strconv.Itoa(uid))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("worker users: %w", err)
		}
		fd := int(f.Fd())
		if syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			// No worker runs as uid: a process that does escaped its
			// worker's group, and may be another job's.
			if busy == nil {
				busy = uidsInUse()
			}
			if busy[uid] || f.Truncate(0) != nil {
				f.Close()
				continue
			}
			if _, err := f.WriteAt([]byte(job), 0); err != nil {
				f.Close()
				return nil, fmt.Errorf("worker users: %w", err)
			}
			// Shared, for the job's next workers (under the guard, the
			// conversion need not be atomic).
			if err := syscall.Flock(fd, syscall.LOCK_SH); err != nil {
				f.Close()
				return nil, fmt.Errorf("worker users: lock %s: %w", path, err)
			}
			return &workerUser{uid: uid, gid: uid, lock: f}, nil
		}
		if holder, err := os.ReadFile(path); err == nil && string(holder) == job && syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB) == nil {
			return &workerUser{uid: uid, gid: uid, lock: f}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("worker users: every uid of %s (%d-%d) is in use: widen the range", KeyWorkerUIDs, r.First, r.Last)
}

// uidsInUse returns the uids processes run as.
func uidsInUse() map[int]bool {
	busy := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if fi, err := os.Stat(filepath.Join("/proc", e.Name())); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				busy[int(st.Uid)] = true
			}
		}
	}
	return busy
}

// workersRoot is the directory of the workers' own directories when
// they run as users of their own: root's, mode 0711 (traversable, not
// listable), made on first use under /tmp and removed when Run returns.
func (tm *TaskManager) workersRoot() (string, error) {
	tm.usersMu.Lock()
	defer tm.usersMu.Unlock()
	if tm.usersRoot != "" {
		return tm.usersRoot, nil
	}
	d, err := os.MkdirTemp("/tmp", "spate-workers-")
	if err != nil {
		return "", fmt.Errorf("worker users: %w", err)
	}
	if err := os.Chmod(d, 0o711); err != nil {
		os.RemoveAll(d)
		return "", fmt.Errorf("worker users: %w", err)
	}
	tm.usersRoot = d
	return d, nil
}

// removeWorkersRoot removes workersRoot's directory.
func (tm *TaskManager) removeWorkersRoot() {
	tm.usersMu.Lock()
	defer tm.usersMu.Unlock()
	if tm.usersRoot != "" {
		os.RemoveAll(tm.usersRoot)
		tm.usersRoot = ""
	}
}

// verifiedCopy copies the cached artifact src to dst (mode 0755),
// checking on the way that its SHA-256 is id: what the worker runs is
// what was submitted.
func verifiedCopy(src, dst, id string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != id {
		os.Remove(dst)
		return fmt.Errorf("artifact %s: the cached binary hashes to %s: refusing to run it", shortID(id), shortID(got))
	}
	return nil
}

// verifyFile checks that the file at path has SHA-256 id.
func verifyFile(path, id string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != id {
		return fmt.Errorf("artifact %s: the cached binary hashes to %s: refusing to run it", shortID(id), shortID(got))
	}
	return nil
}

// logUsers says once, as the TaskManager starts, whom its workers run as.
func (tm *TaskManager) logUsers() {
	switch {
	case os.Geteuid() != 0:
		tm.log.Info("taskmanager: not running as root, so every job's workers run as this TaskManager's user: a job can read another job's environment and files on this TaskManager; run it as root, or each job in a cluster of its own, where jobs must not see each other (docs/security.md)", "uid", os.Geteuid())
	case tm.cfg.WorkerUIDs == nil:
		tm.log.Warn("SECURITY WARNING: taskmanager.worker.uid-range is none: every job's workers run as root and can read each other's environment, memory and files (docs/security.md)")
	default:
		tm.log.Info("taskmanager: each worker runs as a user of its own", "uids", tm.cfg.WorkerUIDs.String())
	}
}

// inlineFileStates returns r with the state files at file:// URLs read
// into their handles. Checkpoint storage is the JobManager's (0700
// directories, 0600 files): a worker of a user of its own cannot open
// it, so the TaskManager, root, reads its subtasks' state for it, and it
// reaches the worker in its deployment file, its uid's alone. The worker
// checks each state against its handle's size and SHA-256 as before;
// other schemes (s3://) it reads itself.
func inlineFileStates(r *rpcpb.RestoreCheckpoint) (*rpcpb.RestoreCheckpoint, error) {
	if r == nil {
		return nil, nil
	}
	r = proto.CloneOf(r)
	for _, st := range r.Subtasks {
		for _, h := range st.States {
			if !strings.HasPrefix(h.Url, "file:") {
				continue
			}
			u, err := url.Parse(h.Url)
			if err != nil {
				return nil, fmt.Errorf("state file %q of checkpoint %d: %w", h.Url, r.CheckpointId, err)
			}
			data, err := os.ReadFile(u.Path)
			if err != nil {
				return nil, fmt.Errorf("read state file of checkpoint %d for a worker of its own user: %w", r.CheckpointId, err)
			}
			h.Inline, h.Url = data, ""
		}
	}
	return r, nil
}
