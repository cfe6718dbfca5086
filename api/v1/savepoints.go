package v1

// SavepointTriggerRequest is the body of POST /v1/jobs/{id}/savepoints,
// Flink's SavepointTriggerRequestBody. TargetDirectory is where the
// savepoint goes (execution.checkpointing.savepoint-dir if empty).
// CancelJob is refused: stop a job with a savepoint through POST
// /v1/jobs/{id}/stop.
type SavepointTriggerRequest struct {
	TargetDirectory string `json:"target-directory,omitempty"`
	CancelJob       bool   `json:"cancel-job,omitempty"`
	// FormatType is CANONICAL (the only format), or empty.
	FormatType string `json:"formatType,omitempty"`
}

// StopWithSavepointRequest is the body of POST /v1/jobs/{id}/stop,
// Flink's StopWithSavepointRequestBody: a final savepoint, the sinks
// commit, then the job is FINISHED. Drain is refused.
type StopWithSavepointRequest struct {
	TargetDirectory string `json:"targetDirectory,omitempty"`
	Drain           bool   `json:"drain,omitempty"`
}

// TriggerResponse answers a savepoint's trigger: its trigger id, for
// GET /v1/jobs/{id}/savepoints/{triggerid}.
type TriggerResponse struct {
	RequestID string `json:"request-id"`
}

// Queue statuses of an asynchronous operation, Flink's.
const (
	OperationInProgress = "IN_PROGRESS"
	OperationCompleted  = "COMPLETED"
)

// SavepointStatus is GET /v1/jobs/{id}/savepoints/{triggerid}, Flink's
// AsynchronousOperationResult: Status.ID is IN_PROGRESS or COMPLETED;
// once completed, Operation holds the savepoint's location or the cause
// of its failure.
type SavepointStatus struct {
	Status    QueueStatus    `json:"status"`
	Operation *SavepointInfo `json:"operation,omitempty"`
}

// QueueStatus is an asynchronous operation's status.
type QueueStatus struct {
	ID string `json:"id"`
}

// SavepointInfo is a completed savepoint operation: Location (the
// savepoint's directory) or FailureCause.
type SavepointInfo struct {
	Location     string        `json:"location,omitempty"`
	FailureCause *FailureCause `json:"failure-cause,omitempty"`
}

// FailureCause is a failure, shaped as Flink's SerializedThrowable.
type FailureCause struct {
	Class      string `json:"class"`
	StackTrace string `json:"stack-trace"`
}
