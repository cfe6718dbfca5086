package v1

// CollectRequest is the body of POST /v1/jobs/{id}/collect, by which a
// job's client fetches the records of the job's Collect sinks (Flink's
// executeAndCollect). Asking for Offset acknowledges every batch before
// it: the JobManager drops them and makes room for more (the sinks wait
// while the job's buffer is full). Hence POST: a fetch changes the buffer.
type CollectRequest struct {
	// Offset is the number of batches of the job the client has taken.
	Offset int64 `json:"offset"`
	// WaitMillis, if positive, makes the JobManager wait up to that long
	// (at most a few seconds) for a batch at Offset when none is there yet,
	// or for the job's end.
	WaitMillis int64 `json:"waitMillis,omitempty"`
	// Release tells that the client has taken everything it wants: the
	// JobManager drops the job's buffer.
	Release bool `json:"release,omitempty"`
}

// CollectResponse answers a CollectRequest.
type CollectResponse struct {
	// Offset is the offset of Batches[0] (the request's).
	Offset int64 `json:"offset"`
	// Batches are the batches from Offset on, in arrival order, up to a
	// size limit.
	Batches []CollectBatch `json:"batches"`
	// Available is the offset after the last batch buffered: more than
	// Offset+len(Batches) when the answer was cut at its size limit.
	Available int64 `json:"available"`
	// JobState is the job's status when the batches were taken: if it is
	// terminal, every batch the job will ever send is at or before
	// Available.
	JobState string `json:"jobState"`
}

// CollectBatch is a batch of records of one Collect sink subtask.
type CollectBatch struct {
	// Sink is the Collect sink's operator id in the JobGraph.
	Sink int `json:"sink"`
	// Subtask is the sending subtask's index.
	Subtask int `json:"subtask"`
	// Records is the batch in the record type's codec (base64 in JSON): a
	// uvarint count, then the records.
	Records []byte `json:"records"`
	// Last marks the subtask's final batch: its input ended and its
	// worker's subtasks all finished.
	Last bool `json:"last,omitempty"`
}
