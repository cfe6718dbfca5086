// Package worker runs a job's share of subtasks inside a job-scoped worker
// process that a TaskManager started from the program's own binary. The
// program's Execute (package spate) recognises the worker role from the
// environment, rebuilds the job, checks its fingerprint and hands the
// subtasks to Run here, which connects them to the other workers over the
// data plane (internal/network) and reports their states to the
// JobManager.
//
// Lifecycle of a worker process:
//
//	started by TM ──Execute rebuilds graph──▶ fingerprint checked
//	  ──WorkerReady (data address)──▶ all workers ready ──▶ subtasks run
//	  ──states reported──▶ waits for the TaskManager's SIGTERM ──▶ exit
//
// A worker that fails reports the failure and also waits: the JobManager
// decides the job's fate and the TaskManager stops every worker of the job.
// Throughout, the worker asks the JobManager every heartbeat.interval
// whether its job still runs with it (WorkerHeartbeat); told no, or
// unanswered for heartbeat.timeout, or orphaned by its TaskManager, it
// stops itself (see Run), so no user code runs for a job the cluster gave
// up even when the TaskManager cannot stop it.
package worker
