package jobmanager

import (
	"time"
)

// Artifacts (program binaries) are kept in the blob store while a job that
// has not ended with its workers gone references them, and for
// blob.service.cleanup.interval (Config.ArtifactGrace) after their last
// use: an upload, a client's HEAD, a TaskManager's download, the last time
// a sweep saw a job referencing them. Then they are deleted; a client
// submitting the program again uploads it again (client.EnsureArtifact
// asks first). The TaskManagers' caches keep binaries for the same
// interval after their last worker exited.
//
// A submission's check that its artifact is stored counts as a use, so
// the sweep cannot delete it between that check and the job's
// registration (which takes far less than the interval). The references
// come from the job store (ArtifactsInUse): the sweep costs the jobs that
// run and the artifacts stored, never the cluster's history.

// artifactSweepInterval is how often the sweep runs for a grace: a tenth
// of it, so an artifact goes between 0.9 and 1.1 graces after its last
// job, within [10 ms, 1 min].
func artifactSweepInterval(grace time.Duration) time.Duration {
	return min(max(grace/10, 10*time.Millisecond), time.Minute)
}

// sweepArtifacts deletes, until the JobManager stops, the artifacts no
// job has referenced for a grace that were last used a grace ago.
func (jm *JobManager) sweepArtifacts() {
	defer jm.wg.Done()
	grace := jm.cfg.ArtifactGrace
	tick := time.NewTicker(artifactSweepInterval(grace))
	defer tick.Stop()
	// lastInUse is when each artifact was last seen referenced, for
	// those seen within a grace.
	lastInUse := map[string]time.Time{}
	for {
		select {
		case <-jm.stop:
			return
		case <-tick.C:
		}
		// The cutoff comes first: a use after it keeps the artifact. It
		// is wall time, not jm.clock: it is compared with the files'
		// modification times.
		now := time.Now()
		for id, t := range lastInUse {
			if now.Sub(t) >= grace {
				delete(lastInUse, id) // keeps it no more
			}
		}
		for _, id := range jm.ArtifactsInUse() {
			lastInUse[id] = now
		}
		removed, err := jm.blobs.Sweep(now.Add(-grace), func(id string) bool {
			_, keep := lastInUse[id]
			return keep
		})
		for _, id := range removed {
			jm.log.Info("jobmanager: artifact deleted: no job has used it for "+KeyBlobCleanupInterval, "artifact", id, "interval", grace)
		}
		if err != nil {
			jm.log.Warn("jobmanager: delete unused artifacts", "err", err)
		}
	}
}
