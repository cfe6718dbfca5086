// Package metrics measures what a job does and exports it: the figures of
// subtasks and operators with Flink's names and meanings (numRecordsIn,
// busyTimeMsPerSecond, currentOutputWatermark, ...), the Go runtime's
// figures of each process, and a job's uptime, restarts and checkpoint
// gauges.
//
// Where the figures come from and where they go:
//
//	subtask (exec.Task counters) ─► worker: Sampler, every second ─► WorkerMetrics over a pipe (PipeEnv)
//	     ─► TaskManager: Store; /metrics (TaskManagerCollector); MetricsReporter.Report every second
//	     ─► JobManager: Store per TaskManager; REST metric endpoints; /metrics (JobManagerCollector)
//
// Counting is the runtime's (package exec): a subtask counts records and
// bytes per batch and takes a clock reading only when it blocks, so the hot
// path pays almost nothing. Rates (per second) are computed by the worker's
// Sampler from two readings a second apart.
//
// Names. Prometheus names are Flink's reporter's with the spate_ prefix:
// the scope joined by underscores, then the metric
// (spate_taskmanager_job_task_operator_numRecordsIn), with Flink's labels
// (job_id, job_name, task_name, subtask_index, operator_name, tm_id). REST
// metric ids are Flink's: "numRecordsIn" for a subtask,
// "<operator>.numRecordsIn" for an operator of its chain, "Status.Go.…"
// for a process.
package metrics
