// Package deployment is what a TaskManager tells a worker process it
// starts: the Deployment descriptor (which job, which share of it, whom to
// talk to), the environment variables that carry it, and the exit status
// by which a worker says its job no longer runs with it. The TaskManager
// writes it and package worker reads it; neither imports the other.
package deployment

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Environment variables that give a process the worker role.
const (
	// EnvDeployment holds the path of the worker's Deployment (JSON).
	EnvDeployment = "SPATE_WORKER_DEPLOYMENT"
	// EnvJobDir is the worker's private directory, removed when the job
	// is released.
	EnvJobDir = "SPATE_JOB_DIR"
)

// ExitJobOver is the exit status of a worker that stopped itself because
// the JobManager said its job no longer runs with it: its TaskManager
// counts the exit as expected, so it never passes for the job's cause of
// failure.
const ExitJobOver = 75

// Deployment is what a TaskManager tells a worker process: which job, which
// share of it, and whom to talk to.
type Deployment struct {
	JobID   string `json:"jobId"`
	JobName string `json:"jobName"`
	// JobOrdinal and Fingerprint identify the job within its program: the
	// worker runs the JobOrdinal-th Execute/ExecuteAsync call of main
	// (counted from 0 across the process), whose graph must have
	// Fingerprint.
	JobOrdinal  int    `json:"jobOrdinal"`
	WorkerID    string `json:"workerId"`
	Fingerprint string `json:"fingerprint"`
	// JobManager is the JobManager's RPC address.
	JobManager string `json:"jobManager"`
	// DataHost is the host the worker's data-plane listener binds.
	DataHost string `json:"dataHost"`
	// SlotWorkers[s] is the worker running slot s, which holds subtask s
	// of every vertex.
	SlotWorkers []string `json:"slotWorkers"`
	// TaskManager names the worker's TaskManager, for errors.
	TaskManager string `json:"taskManager"`
	// HeartbeatInterval and HeartbeatTimeout are the cluster's
	// heartbeat.interval and heartbeat.timeout, for the worker's liveness
	// link to the JobManager; defaults if zero.
	HeartbeatInterval time.Duration `json:"heartbeatInterval,omitempty"`
	HeartbeatTimeout  time.Duration `json:"heartbeatTimeout,omitempty"`
	// Attempt is the deployment's attempt number (DeployWorker.attempt):
	// every call to the JobManager carries it, and the JobManager refuses
	// an older attempt's.
	Attempt int64 `json:"attempt,omitempty"`
	// CheckpointMode is the job's execution.checkpointing.mode
	// (EXACTLY_ONCE or AT_LEAST_ONCE) when it takes checkpoints, "" when
	// it does not.
	CheckpointMode string `json:"checkpointMode,omitempty"`
	// CheckpointAlignmentMaxSize is the job's
	// task.checkpoint.alignment.max-size in bytes, 0 for no bound.
	CheckpointAlignmentMaxSize int64 `json:"checkpointAlignmentMaxSize,omitempty"`
	// Restore is the checkpoint to restore (DeployWorker.restore, an
	// rpcpb.RestoreCheckpoint in protobuf's encoding), nil to start empty;
	// see worker.RestoreCheckpoint.
	Restore []byte `json:"restore,omitempty"`
	// TLS, if set, are the worker's certificate files; nil when the
	// cluster's internal connections are in the clear.
	TLS *TLSFiles `json:"tls,omitempty"`
}

// TLSFiles are the files, in the worker's private directory and readable
// by the worker only (0600), that prove which worker of which job it is.
type TLSFiles struct {
	// Keystore holds the worker's certificate (it names the job and the
	// worker; the JobManager's worker CA signed it) and its key.
	Keystore string `json:"keystore"`
	// Truststore holds the cluster's CA certificates: the JobManager's
	// certificate must chain to one.
	Truststore string `json:"truststore"`
	// PeerCA holds the worker CA's certificate: the job's other workers'
	// certificates must chain to it.
	PeerCA string `json:"peerCA"`
}

// Local reports whether subtask s of a vertex runs in this worker.
func (d *Deployment) Local(vertex, s int) bool {
	return s < len(d.SlotWorkers) && d.SlotWorkers[s] == d.WorkerID
}

// Write stores d in path.
func (d *Deployment) Write(path string) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// FromEnvironment returns the deployment of this process, or nil if the
// process is not a worker.
func FromEnvironment() (*Deployment, error) {
	path := os.Getenv(EnvDeployment)
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("worker: read deployment: %w", err)
	}
	var d Deployment
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("worker: deployment %s: %w", path, err)
	}
	if d.JobID == "" || d.WorkerID == "" || d.JobManager == "" || len(d.SlotWorkers) == 0 {
		return nil, fmt.Errorf("worker: deployment %s is incomplete", path)
	}
	return &d, nil
}
