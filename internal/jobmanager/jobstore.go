package jobmanager

import (
	"slices"
	"time"
)

// The job store keeps ended jobs for the REST API, as Flink's
// ExecutionGraphInfoStore: at most jobstore.max-capacity of them, each for
// jobstore.expiration-time after its end. A job enters it once it has
// ended with its workers gone, already compacted (no graph, no secrets);
// the oldest leaves first. Eviction costs the evicted jobs only: the
// archive is in order of entry, so expiry looks at its head.

// archiveLocked puts the ended job j into the job store, evicting the
// oldest jobs beyond its capacity.
func (jm *JobManager) archiveLocked(j *job, now time.Time) {
	j.endedAt = now
	jm.mu.archive = append(jm.mu.archive, j)
	if over := len(jm.mu.archive) - jm.cfg.JobStoreCapacity; over > 0 {
		jm.evictLocked(over, "jobstore.max-capacity")
	}
}

// expireLocked forgets the ended jobs kept longer than
// jobstore.expiration-time.
func (jm *JobManager) expireLocked(now time.Time) {
	n := 0
	for n < len(jm.mu.archive) && now.Sub(jm.mu.archive[n].endedAt) >= jm.cfg.JobStoreExpiration {
		n++
	}
	if n > 0 {
		jm.evictLocked(n, "jobstore.expiration-time")
	}
}

// evictLocked forgets the n oldest ended jobs.
func (jm *JobManager) evictLocked(n int, why string) {
	for _, j := range jm.mu.archive[:n] {
		delete(jm.mu.jobs, j.id)
		jm.log.Debug("job store: job forgotten", "job", j.id, "name", j.name, "by", why)
	}
	clear(jm.mu.archive[:n])
	jm.mu.archive = slices.Delete(jm.mu.archive, 0, n)
}

// ArtifactsInUse lists the artifacts (SHA-256 ids) of the jobs that have
// not ended with their workers gone: those a TaskManager may still fetch.
// An artifact in no list (and not just uploaded) can be deleted; ended jobs
// need theirs no more.
func (jm *JobManager) ArtifactsInUse() []string {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	var ids []string
	for _, j := range jm.mu.active {
		if !slices.Contains(ids, j.artifact) {
			ids = append(ids, j.artifact)
		}
	}
	slices.Sort(ids)
	return ids
}
