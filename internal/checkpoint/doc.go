// Package checkpoint is the job master's checkpoint coordinator, as
// Flink's CheckpointCoordinator: it decides when a checkpoint starts, at
// which subtasks, when it is complete, aborted or timed out, which
// completed checkpoints are retained, and when too many failed ones fail
// the job.
//
// It is a pure state machine. Every method takes one event (a timer tick,
// a subtask's state, an acknowledgement, a decline, the durable write of
// a checkpoint's metadata, a failover) with the time it happened, and
// returns the effects the caller must carry out (trigger at subtasks,
// write metadata, notify complete or aborted, discard files, fail the
// job). It has no goroutines, no sockets and no clock: the JobManager
// (internal/jobmanager) feeds it and performs the effects; the tests feed
// it scripts (testdata/*.txt) and compare its effects with golden files.
//
// A checkpoint's life:
//
//	 trigger (interval due, min-pause passed, fewer than
//	 max-concurrent pending, every unfinished subtask RUNNING)
//	     │
//	     ▼
//	 PENDING ──decline / timeout / failover / subsumed──▶ ABORTED
//	     │                                  (NotifyAborted, Discard)
//	     │ every needed subtask acknowledged
//	     │ (or sent its final state, finishing)
//	     ▼
//	FINALIZING ──metadata write failed / failover──▶ ABORTED
//	     │
//	     │ MetadataWritten (the _metadata is durable)
//	     ▼
//	COMPLETED  (NotifyComplete to every worker; older pending
//	            ones subsumed; beyond state.checkpoints.num-retained
//	            the oldest completed ones are discarded)
//
// The needed set is fixed at the trigger: every subtask not FINISHED. The
// trigger goes to the running subtasks none of whose inputs still runs
// (the sources, and those whose upstream all finished), so that a
// finished bounded source does not block the checkpoints of the rest of
// the job. A subtask whose input ended sends its final state (an Ack with
// ID FinalID): it stands for every checkpoint after the last one the
// subtask took part in, including one that waits for it now, and the
// metadata records the subtask finished (a restore does not run it
// again). A checkpoint waiting for a subtask that finished without one
// times out.
//
// Savepoints (TriggerSavepoint) are checkpoints of another Kind: the user
// triggers them, at once, past the interval, min-pause and
// max-concurrent; their metadata is also written in the canonical
// savepoint format (internal/savepoint, the caller's business); once
// complete they are completed checkpoints like the others (a failover
// restores them, since the sinks committed up to them), and a failed one
// does not count towards the tolerable failures. A StopSavepoint (spate
// stop) holds back every periodic trigger while pending; once complete,
// NotifyComplete asks the workers to commit and confirm
// (ConfirmCommit), and the job ends FINISHED (StopJob) only once every
// subtask that took part confirmed (CommitConfirmed), as Flink's
// stop-with-savepoint finishes its tasks after notifyCheckpointComplete:
//
//	stop-savepoint COMPLETED ──NotifyComplete(ConfirmCommit)──▶ COMMITTING
//	    COMMITTING ──every subtask's CommitConfirmed──▶ StopJob (FINISHED)
//	    COMMITTING ──a subtask failed, failover, cancel──▶ StopFailed
//	    COMMITTING ──execution.checkpointing.timeout──▶ StopFailed, FailJob
//
// A failed stop leaves a complete savepoint: the job's restore (a
// failover restores it, the latest completed checkpoint) or a run from it
// commits its transactions, since commits are idempotent.
//
// Fencing: the coordinator knows the job's current attempt; an
// acknowledgement or decline of another attempt is refused (Stale), and
// a failover aborts every checkpoint of the old attempt, so a zombie's
// late acknowledgement or metadata can never complete one.
package checkpoint
