package worker

import "github.com/spate-dev/spate/internal/deployment"

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
