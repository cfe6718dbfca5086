// Package provider defines how clusters get their processes. On the client
// side a Deployer starts a whole cluster (a JobManager, and the
// TaskManagers it asks for) for a session, a job or an application, and
// tears it down. On the JobManager side a Provider serves the resource
// manager: it starts TaskManager processes (child processes on this host,
// pods, ...) that register with the JobManager on their own, stops them on
// request, and reports the ones that ended. The standalone cluster has
// neither: its daemons are started by an operator.
//
// Implementations: process (child processes of the JobManager: the
// embedded default). The Kubernetes provider is to implement the same
// interface.
package provider

import (
	"context"
	"time"

	"github.com/spate-dev/spate/internal/resource"
)

// TaskManagerSpec describes a TaskManager to start (package resource,
// which the JobManager shares without importing this one).
type TaskManagerSpec = resource.TaskManagerSpec

// Exit reports that a TaskManager the provider started has ended.
type Exit = resource.Exit

// Provider starts and stops TaskManagers for a resource manager. It is the
// method set of jobmanager.Provider, which the JobManager consumes; an
// implementation asserts this one.
type Provider interface {
	// StartTaskManager starts a TaskManager; it registers with the
	// JobManager by itself once running.
	StartTaskManager(ctx context.Context, spec TaskManagerSpec) error
	// StopTaskManager stops the TaskManager id and waits until it is gone;
	// when ctx ends first, it is killed.
	StopTaskManager(ctx context.Context, id string) error
	// Exits reports TaskManagers that ended, whether stopped or not.
	Exits() <-chan Exit
	// Close stops every TaskManager still running and waits for them.
	Close() error
}

// Mode is the kind of cluster a Deployer starts (DESIGN.md §2).
type Mode int

const (
	// Session is a long-lived cluster shared by the jobs submitted to it,
	// until its owner stops it.
	Session Mode = iota
	// PerJob is a cluster for one submitted job; it ends with that job.
	PerJob
	// Application is a cluster whose JobManager runs a program's main; it
	// ends when main has returned and its jobs are over.
	Application
)

// ClusterSpec describes a cluster to start.
type ClusterSpec struct {
	Mode Mode
	// Dir is the cluster's home on the client's host: its logs go to
	// Dir/log. It is created if missing.
	Dir string
	// Config holds the cluster's configuration entries (Flink's keys).
	Config map[string]string
	// Env holds environment variables for the JobManager, and so for an
	// Application's main.
	Env map[string]string
	// TaskManagers is how many TaskManagers start at once and stay for
	// the cluster's life; others are started on demand.
	TaskManagers int
	// Artifact is the program whose main an Application cluster runs,
	// with Args its arguments; the cluster keeps its own copy.
	Artifact string
	Args     []string
	// RemoveWhenDone makes a cluster that ends by itself remove Dir, logs
	// included (the cluster of a client that detached).
	RemoveWhenDone bool
	// ResultLinger is how long a PerJob cluster stays after its job has
	// ended, for an attached client to fetch the result.
	ResultLinger time.Duration
}

// Cluster is a cluster a Deployer started.
type Cluster interface {
	// ID names the cluster to Deployer.Kill, from another client too.
	ID() string
	// REST is the JobManager's REST address, host:port.
	REST() string
	// Done is closed once the JobManager has ended; its TaskManagers end
	// with it.
	Done() <-chan struct{}
	// Err tells, after Done, how the JobManager ended: nil if it exited
	// cleanly (an Application's main succeeded).
	Err() error
	// Stop tears the cluster down and waits until all of it is gone; when
	// ctx ends first, it is killed.
	Stop(ctx context.Context) error
}

// Deployer starts and removes whole clusters for a client, as Flink's
// ClusterDescriptor: the client side of a provider, where Provider is the
// JobManager side.
type Deployer interface {
	// Deploy starts a cluster and returns once its REST API answers.
	Deploy(ctx context.Context, spec ClusterSpec) (Cluster, error)
	// Kill tears down the cluster named id (Cluster.ID) and waits until it
	// is gone; when ctx ends first, it is killed.
	Kill(ctx context.Context, id string) error
}
