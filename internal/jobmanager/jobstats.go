package jobmanager

// coreStats is the JobManager's own JobStatsSource: the figures its jobs'
// failover and checkpoint cores keep (jobmaster restarts, the coordinator's
// statistics), read under the JobManager's mutex.
type coreStats struct{ jm *JobManager }

var _ JobStatsSource = coreStats{}

// JobStats returns zeros for a job that is unknown or takes no checkpoints.
func (s coreStats) JobStats(id JobID) JobStats {
	jm := s.jm
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, err := jm.jobLocked(string(id))
	if err != nil || j.ft == nil {
		return JobStats{}
	}
	st := j.ft.coord.Stats()
	out := JobStats{
		Restarts:             int64(restartsOf(j)),
		CompletedCheckpoints: int64(st.Counts.Completed),
		FailedCheckpoints:    int64(st.Counts.Failed),
	}
	if l := st.Latest.Completed; l != nil {
		out.LastCheckpointDuration = l.EndTime.Sub(l.TriggerTime)
		out.LastCheckpointSize = l.StateSize
	}
	return out
}
