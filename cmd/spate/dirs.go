package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spate-dev/spate/internal/procdir"
)

// Where the daemons keep their files. A JobManager of the process
// provider keeps everything under its --cluster-dir: logs in log/, the
// blob store in work/blobs, each TaskManager's files in work/<id>; the
// work directory goes when the JobManager exits, the logs when the cluster
// is removed. A daemon without a directory of its own (a standalone
// JobManager without blob.storage.directory, a TaskManager without
// taskmanager.tmp.dirs) uses a directory of its own under the per-user
// root $TMPDIR/spate-<uid>, named jobmanager-<pid>-… or taskmanager-<pid>-…,
// removed when it exits. Every directory carries a marker naming its
// owning process, and each daemon, as it starts, removes what dead owners
// left there and next to its cluster directory (a SIGKILLed daemon's).

// pruneStale removes what dead daemons left under the per-user root, and
// under parent if set, logging what it removed.
func pruneStale(log *slog.Logger, parent string) {
	dirs := []string{parent}
	if _, err := os.Lstat(procdir.RootPath()); err == nil {
		root, err := procdir.Root() // checks it is this user's
		if err != nil {
			log.Warn("not removing what dead daemons left", "err", err)
		} else {
			dirs = append(dirs, root)
		}
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		removed, err := procdir.Prune(dir)
		if err != nil {
			log.Warn("remove the directories of dead clusters", "dir", dir, "err", err)
		}
		for _, r := range removed {
			log.Info("removed the directory of a dead cluster", "dir", r)
		}
	}
}

// jobManagerDirs claims clusterDir, if set, for this JobManager (all of it
// to be removed after its death if remove, else its work directory), and
// returns the blob directory to use when blob.storage.directory is unset
// with the function that removes it at exit.
func jobManagerDirs(log *slog.Logger, clusterDir string, remove bool) (blobDir string, cleanup func(), err error) {
	parent := ""
	if clusterDir != "" {
		if err := procdir.Claim(clusterDir, remove); err != nil {
			return "", nil, fmt.Errorf("jobmanager: %w", err)
		}
		parent = filepath.Dir(filepath.Clean(clusterDir))
	}
	pruneStale(log, parent)
	if clusterDir != "" {
		work := filepath.Join(clusterDir, procdir.Work)
		return filepath.Join(work, "blobs"), func() { os.RemoveAll(work) }, nil
	}
	root, err := procdir.Root()
	if err != nil {
		return "", nil, fmt.Errorf("jobmanager: %w", err)
	}
	dir, err := procdir.Create(root, "jobmanager")
	if err != nil {
		return "", nil, fmt.Errorf("jobmanager: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// taskManagerDir returns the work directory of a TaskManager that has none
// configured, with the function that removes it at exit.
func taskManagerDir(log *slog.Logger) (string, func(), error) {
	pruneStale(log, "")
	root, err := procdir.Root()
	if err != nil {
		return "", nil, fmt.Errorf("taskmanager: %w", err)
	}
	dir, err := procdir.Create(root, "taskmanager")
	if err != nil {
		return "", nil, fmt.Errorf("taskmanager: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
