package worker

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/spate-dev/spate/internal/deployment"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// Deployment is what a TaskManager tells a worker process (package
// deployment, which the TaskManager shares without importing this one).
type Deployment = deployment.Deployment

// Environment variables that give a process the worker role.
const (
	// EnvDeployment holds the path of the worker's Deployment (JSON).
	EnvDeployment = deployment.EnvDeployment
	// EnvJobDir is the worker's private directory, removed when the job
	// is released.
	EnvJobDir = deployment.EnvJobDir
)

// FromEnvironment returns the deployment of this process, or nil if the
// process is not a worker.
func FromEnvironment() (*Deployment, error) { return deployment.FromEnvironment() }

// RestoreCheckpoint decodes d.Restore: the checkpoint the worker's
// subtasks start from, nil if they start empty.
func RestoreCheckpoint(d *Deployment) (*rpcpb.RestoreCheckpoint, error) {
	if len(d.Restore) == 0 {
		return nil, nil
	}
	var r rpcpb.RestoreCheckpoint
	if err := proto.Unmarshal(d.Restore, &r); err != nil {
		return nil, fmt.Errorf("worker %s: decode the restore checkpoint of job %s: %w", d.WorkerID, d.JobID, err)
	}
	return &r, nil
}
