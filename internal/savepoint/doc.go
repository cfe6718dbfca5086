// Package savepoint writes and reads savepoints, and decides which state
// of a savepoint or a retained checkpoint each subtask of a (possibly
// changed) job restores.
//
// A savepoint is a directory that holds everything needed to restore it,
// named by paths relative to itself, so that it can be moved or copied:
//
//	<savepoint-dir>/savepoint-<job-id prefix>-<random>/
//	    _metadata            JSON, written last and atomically: the job, the
//	                         checkpoint id, and per operator (by uid) its
//	                         parallelism, max parallelism and one part per
//	                         subtask (a file name, its size and SHA-256, its
//	                         key groups, whether the subtask had finished)
//	    op-<n>-<subtask>     one operator's state of one subtask, in the
//	                         state file format of internal/snapshot
//
// The format is canonical: it is the operators' own entries (named
// states, key groups, bytes), cut out of whatever chain or state backend
// held them, so that a build with other chaining, other operators
// around, or another state backend restores it.
//
// Restoring (Load, then Assign) matches the savepoint's operators with
// the job's by uid (jobgraph.JobGraph.OperatorUIDs: the program's UID,
// else one generated from kind and name). An operator of the job absent
// from the savepoint starts empty; state of an operator the job no
// longer has is an error naming the uids, unless non-restored state is
// allowed (--allow-non-restored-state). Load reads a retained
// checkpoint (a chk-<n> directory of state.checkpoints.dir) the same
// way, from the operator uids its _metadata records.
//
// Which part goes to which subtask is decided in one place,
// Redistribute: at the same parallelism subtask i gets part i. At another
// parallelism (up to pipeline.max-parallelism, which cannot change) every
// new subtask is given every part of the operator, as handles of a
// snapshot.SharedKind, and restores its share as a checkpoint's vertex
// restored at another parallelism does (snapshot.TaskState.RestoreShared,
// one path for both): the keyed state of the key groups it owns, and of
// each operator state the part Flink's list state would give it, split
// evenly (a source's splits, a sink's pre-committed transactions, which
// the new subtask commits) or unioned.
package savepoint
