package v1

// CheckpointingStatistics is GET /v1/jobs/{id}/checkpoints, shaped as
// Flink's /jobs/:jobid/checkpoints.
type CheckpointingStatistics struct {
	Counts  CheckpointCounts       `json:"counts"`
	Summary CheckpointSummary      `json:"summary"`
	Latest  LatestCheckpoints      `json:"latest"`
	History []CheckpointStatistics `json:"history"`
	// NumRestarts counts the job's restarts (Flink's numRestarts metric).
	NumRestarts int `json:"numRestarts"`
}

// CheckpointCounts counts a job's checkpoints by outcome.
type CheckpointCounts struct {
	Restored   int `json:"restored"`
	Total      int `json:"total"`
	InProgress int `json:"in_progress"`
	Completed  int `json:"completed"`
	Failed     int `json:"failed"`
}

// MinMaxAvg summarises a quantity over the completed checkpoints.
type MinMaxAvg struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
	Avg int64 `json:"avg"`
}

// CheckpointSummary summarises the completed checkpoints: sizes in bytes,
// durations in milliseconds.
type CheckpointSummary struct {
	StateSize        MinMaxAvg `json:"state_size"`
	CheckpointedSize MinMaxAvg `json:"checkpointed_size"`
	EndToEndDuration MinMaxAvg `json:"end_to_end_duration"`
}

// LatestCheckpoints holds the latest completed, failed and restored
// checkpoints and the latest completed savepoint (null if none).
type LatestCheckpoints struct {
	Completed *CheckpointStatistics `json:"completed"`
	Savepoint *CheckpointStatistics `json:"savepoint"`
	Failed    *CheckpointStatistics `json:"failed"`
	Restored  *RestoredCheckpoint   `json:"restored"`
}

// CheckpointStatistics describes one checkpoint. Times are Unix
// milliseconds, durations milliseconds, sizes bytes.
type CheckpointStatistics struct {
	ID                      int64  `json:"id"`
	Status                  string `json:"status"`
	IsSavepoint             bool   `json:"is_savepoint"`
	CheckpointType          string `json:"checkpoint_type"`
	TriggerTimestamp        int64  `json:"trigger_timestamp"`
	LatestAckTimestamp      int64  `json:"latest_ack_timestamp"`
	StateSize               int64  `json:"state_size"`
	CheckpointedSize        int64  `json:"checkpointed_size"`
	EndToEndDuration        int64  `json:"end_to_end_duration"`
	NumSubtasks             int    `json:"num_subtasks"`
	NumAcknowledgedSubtasks int    `json:"num_acknowledged_subtasks"`
	// SyncDurationMax, AsyncDurationMax and AlignmentDurationMax are the
	// longest of the subtasks' synchronous pauses, asynchronous writes and
	// barrier alignments.
	SyncDurationMax      int64  `json:"sync_duration_max"`
	AsyncDurationMax     int64  `json:"async_duration_max"`
	AlignmentDurationMax int64  `json:"alignment_duration_max"`
	ExternalPath         string `json:"external_path,omitempty"`
	Discarded            bool   `json:"discarded"`
	FailureTimestamp     int64  `json:"failure_timestamp,omitempty"`
	FailureMessage       string `json:"failure_message,omitempty"`
}

// RestoredCheckpoint is the checkpoint a job last restored.
type RestoredCheckpoint struct {
	ID               int64  `json:"id"`
	RestoreTimestamp int64  `json:"restore_timestamp"`
	IsSavepoint      bool   `json:"is_savepoint"`
	ExternalPath     string `json:"external_path"`
}

// CheckpointConfig is GET /v1/jobs/{id}/checkpoints/config, shaped as
// Flink's /jobs/:jobid/checkpoints/config. Durations are milliseconds.
type CheckpointConfig struct {
	// Mode is exactly_once or at_least_once.
	Mode                       string                    `json:"mode"`
	Interval                   int64                     `json:"interval"`
	Timeout                    int64                     `json:"timeout"`
	MinPause                   int64                     `json:"min_pause"`
	MaxConcurrent              int                       `json:"max_concurrent"`
	TolerableFailedCheckpoints int                       `json:"tolerable_failed_checkpoints"`
	Externalization            CheckpointExternalization `json:"externalization"`
	StateBackend               string                    `json:"state_backend"`
	CheckpointStorage          string                    `json:"checkpoint_storage"`
	UnalignedCheckpoints       bool                      `json:"unaligned_checkpoints"`
	// NumRetained is state.checkpoints.num-retained.
	NumRetained int `json:"num_retained"`
	// RestartStrategy names the job's restart strategy and its settings.
	RestartStrategy string `json:"restart_strategy"`
}

// CheckpointExternalization tells whether completed checkpoints are kept
// in storage (they are, up to num_retained) and whether a cancel deletes
// them.
type CheckpointExternalization struct {
	Enabled              bool `json:"enabled"`
	DeleteOnCancellation bool `json:"delete_on_cancellation"`
}
