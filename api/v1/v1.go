// Package v1 holds the JSON wire types of the JobManager's REST API, shared by
// the server (internal/rest) and the client (client/). It uses the standard
// library only so that any program can speak to a Spate cluster.
//
// The shapes follow Apache Flink's REST API where the concept is the same:
// field names ("jid", "start-time", "slots-available"), job and subtask status
// strings (CREATED, RUNNING, FINISHED, FAILED, CANCELED, ...), and the error
// body {"errors": ["..."]}.
package v1

import "encoding/json"

// Version is the API's path prefix.
const Version = "/v1"

// Job status strings, as Flink's JobStatus.
const (
	JobCreated      = "CREATED"
	JobRunning      = "RUNNING"
	JobFailing      = "FAILING"
	JobFailed       = "FAILED"
	JobCancelling   = "CANCELLING"
	JobCanceled     = "CANCELED"
	JobFinished     = "FINISHED"
	JobRestarting   = "RESTARTING"
	JobInitializing = "INITIALIZING"
)

// Subtask (execution) status strings, as Flink's ExecutionState.
const (
	TaskCreated      = "CREATED"
	TaskScheduled    = "SCHEDULED"
	TaskDeploying    = "DEPLOYING"
	TaskInitializing = "INITIALIZING"
	TaskRunning      = "RUNNING"
	TaskFinished     = "FINISHED"
	TaskCanceling    = "CANCELING"
	TaskCanceled     = "CANCELED"
	TaskFailed       = "FAILED"
)

// TerminalJobStatus reports whether a job in status s will not change any more.
func TerminalJobStatus(s string) bool {
	return s == JobFinished || s == JobFailed || s == JobCanceled
}

// ErrorResponse is the body of every 4xx and 5xx response.
type ErrorResponse struct {
	Errors []string `json:"errors"`
}

// Overview is GET /v1/overview: the cluster at a glance.
type Overview struct {
	TaskManagers   int    `json:"taskmanagers"`
	SlotsTotal     int    `json:"slots-total"`
	SlotsAvailable int    `json:"slots-available"`
	JobsRunning    int    `json:"jobs-running"`
	JobsFinished   int    `json:"jobs-finished"`
	JobsCancelled  int    `json:"jobs-cancelled"`
	JobsFailed     int    `json:"jobs-failed"`
	Version        string `json:"spate-version"`
}

// ConfigEntry is one configuration key and its value.
type ConfigEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Config is GET /v1/config: the JobManager's version and effective
// configuration (secrets are not included).
type Config struct {
	Version      string        `json:"spate-version"`
	TimezoneName string        `json:"timezone-name"`
	Entries      []ConfigEntry `json:"config"`
}

// JobIDStatus is one entry of GET /v1/jobs.
type JobIDStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// JobIDsWithStatus is GET /v1/jobs.
type JobIDsWithStatus struct {
	Jobs []JobIDStatus `json:"jobs"`
}

// TaskCounts counts a job's or vertex's subtasks by status (Flink's
// "tasks" object).
type TaskCounts map[string]int

// JobOverview is one job in GET /v1/jobs/overview.
type JobOverview struct {
	JID              string     `json:"jid"`
	Name             string     `json:"name"`
	State            string     `json:"state"`
	StartTime        int64      `json:"start-time"`
	EndTime          int64      `json:"end-time"`
	Duration         int64      `json:"duration"`
	LastModification int64      `json:"last-modification"`
	Tasks            TaskCounts `json:"tasks"`
}

// JobsOverview is GET /v1/jobs/overview.
type JobsOverview struct {
	Jobs []JobOverview `json:"jobs"`
}

// VertexMetrics are a vertex's record counts summed over its subtasks.
type VertexMetrics struct {
	ReadRecords          int64 `json:"read-records"`
	ReadRecordsComplete  bool  `json:"read-records-complete"`
	WriteRecords         int64 `json:"write-records"`
	WriteRecordsComplete bool  `json:"write-records-complete"`
}

// JobVertex is one vertex (chain of operators) of GET /v1/jobs/{id}.
type JobVertex struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Parallelism int           `json:"parallelism"`
	Status      string        `json:"status"`
	StartTime   int64         `json:"start-time"`
	EndTime     int64         `json:"end-time"`
	Duration    int64         `json:"duration"`
	Tasks       TaskCounts    `json:"tasks"`
	Metrics     VertexMetrics `json:"metrics"`
}

// JobDetails is GET /v1/jobs/{id}.
type JobDetails struct {
	JID          string           `json:"jid"`
	Name         string           `json:"name"`
	IsStoppable  bool             `json:"isStoppable"`
	State        string           `json:"state"`
	StartTime    int64            `json:"start-time"`
	EndTime      int64            `json:"end-time"`
	Duration     int64            `json:"duration"`
	Now          int64            `json:"now"`
	Timestamps   map[string]int64 `json:"timestamps"`
	Vertices     []JobVertex      `json:"vertices"`
	StatusCounts TaskCounts       `json:"status-counts"`
	// Plan is the job's JobGraph as JSON.
	Plan json.RawMessage `json:"plan,omitempty"`
	// NumRestarts counts the job's restarts (Flink's numRestarts metric).
	NumRestarts int `json:"numRestarts"`
}

// ExceptionEntry is one failure in a job's exception history.
type ExceptionEntry struct {
	ExceptionName string `json:"exceptionName"`
	Stacktrace    string `json:"stacktrace"`
	Timestamp     int64  `json:"timestamp"`
	TaskName      string `json:"taskName,omitempty"`
	// Location names the TaskManager (and worker) where it happened.
	Location string `json:"location,omitempty"`
}

// ExceptionHistory is the "exceptionHistory" object of JobExceptions.
type ExceptionHistory struct {
	Entries   []ExceptionEntry `json:"entries"`
	Truncated bool             `json:"truncated"`
}

// JobExceptions is GET /v1/jobs/{id}/exceptions.
type JobExceptions struct {
	RootException string           `json:"root-exception,omitempty"`
	Timestamp     int64            `json:"timestamp,omitempty"`
	History       ExceptionHistory `json:"exceptionHistory"`
}

// Hardware describes a TaskManager's host.
type Hardware struct {
	CPUCores       int   `json:"cpuCores"`
	PhysicalMemory int64 `json:"physicalMemory"`
}

// TaskManagerInfo is one entry of GET /v1/taskmanagers.
type TaskManagerInfo struct {
	ID                     string   `json:"id"`
	Path                   string   `json:"path"`
	DataPort               int      `json:"dataPort"`
	TimeSinceLastHeartbeat int64    `json:"timeSinceLastHeartbeat"`
	SlotsNumber            int      `json:"slotsNumber"`
	FreeSlots              int      `json:"freeSlots"`
	Hardware               Hardware `json:"hardware"`
	// PrometheusAddress is host:port of the TaskManager's /metrics, once
	// its first metrics report arrived; empty if it serves none.
	PrometheusAddress string `json:"prometheusAddress,omitempty"`
}

// TaskManagers is GET /v1/taskmanagers.
type TaskManagers struct {
	TaskManagers []TaskManagerInfo `json:"taskmanagers"`
}

// ArtifactUploadResponse is the answer to POST /v1/artifacts: the SHA-256 of
// the uploaded binary, which names it from then on.
type ArtifactUploadResponse struct {
	ID     string `json:"id"`
	Size   int64  `json:"size"`
	Status string `json:"status"`
}

// JobSubmitRequest is the body of POST /v1/jobs: a JobGraph extracted by a
// client, and the artifact (the program's binary) that can run it.
type JobSubmitRequest struct {
	// JobGraph is the plan as internal/jobgraph marshals it; its fingerprint
	// is checked again by every worker.
	JobGraph json.RawMessage `json:"jobGraph"`
	// Artifact is the SHA-256 of an uploaded binary.
	Artifact string `json:"artifact"`
	// Args are the program's arguments: workers run the program with them to
	// rebuild the same graph.
	Args []string `json:"programArgs"`
	// Env holds environment variables for this job's workers only
	// (configuration and secrets given at submission).
	Env map[string]string `json:"env,omitempty"`
	// Program is the file name of the program's binary, for messages
	// about the job (a worker that never starts names it); optional.
	Program string `json:"program,omitempty"`
	// JobOrdinal tells which job of its program this is: the ordinal of
	// the Execute/ExecuteAsync call that made it among all such calls of
	// the program's process, 0 for the first. Workers run the program
	// with Args and run exactly that call's dataflow, skipping the calls
	// before it; the call's graph must have JobGraph's fingerprint.
	JobOrdinal int `json:"jobOrdinal"`
}

// JobSubmitResponse is the answer to POST /v1/jobs.
type JobSubmitResponse struct {
	JobID string `json:"jobid"`
}

// Application is GET /v1/application on a cluster running an application
// (main run by the cluster): its status (RUNNING, FINISHED, FAILED) and,
// if it failed, why.
type Application struct {
	Status    string `json:"status"`
	Error     string `json:"error,omitempty"`
	StartTime int64  `json:"start-time"`
	EndTime   int64  `json:"end-time"`
}
