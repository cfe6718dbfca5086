// Package exec runs the subtasks of a job inside one process: one goroutine
// per chained subtask, records moving between subtasks in batches through
// bounded queues, watermarks min-combined across input channels.
//
// The package knows nothing of user functions. The caller (the spate root
// package) builds, for every subtask, a chain of operators that implement
// Output and hands exec the chain's head, its input gates and its outgoing
// edge writers. exec owns the goroutines: Run starts one per subtask, and
// returns when all have ended or the first has failed, after stopping the
// rest.
//
// Lifecycle of a subtask:
//
//	open operators ─► process input (records, watermarks, idleness) ─► finish ─► close ─► (all tasks ended) ─► ends(outcome)
//	        │                       │
//	        └─────── error/panic ───┴──► job context cancelled, every subtask unwinds
//
// A task's Ends run only once every task of the Run has ended, with the
// Run's outcome: nil if all finished their input, else the failure or stop.
// Sinks publish there, so that a failure anywhere in the process keeps
// every sink's output unpublished.
//
// Cancellation unwinds a subtask blocked on a full queue by panicking with an
// internal sentinel that the subtask's runner recovers; a record never needs
// an error check on the hot path.
package exec
