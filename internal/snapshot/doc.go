// Package snapshot is the runtime's side of checkpoints: the state file
// format, and the glue that snapshots the operators of a subtask at a
// barrier and restores them from a completed checkpoint.
//
// At checkpoint n's barrier a subtask (exec.Checkpointing.Snapshot, set to
// TaskState.Snapshot) asks each of its chain's operators that have state
// to capture it (Operator.SnapshotState): on the task's goroutine, so only
// a cheap copy. Encoding the capture into entries, writing the state file
// to a Store and acknowledging to the Acker happen on a goroutine of the
// Runner while records flow again. An operator that commits output
// (Committer, a transactional sink) pre-commits in SnapshotState and
// commits when the Runner hears that the checkpoint completed.
//
//	barrier n ─► SnapshotState (sync) ─► barrier n sent on ─► records flow
//	                                └──► encode, Store.Put, Acker.Acknowledge (async)
//	checkpoint n complete ─► Runner.CommitCheckpoint(n) ─► sinks commit
//
// A state file holds one subtask's entries; keyed state has one entry per
// key group (and state name), so that a restore at another parallelism can
// pick the key groups it owns from every file (RestoreShared, with
// Redistribute deciding the share: key groups by range, operator state
// split evenly or unioned). The format (Encode) has a
// version byte and checksums; Decode refuses anything else.
package snapshot
