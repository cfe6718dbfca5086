// Package provider defines how a JobManager's resource manager gets and
// returns TaskManagers. A provider starts TaskManager processes (child
// processes on this host, pods, ...) that register with the JobManager on
// their own, stops them on request, and reports the ones that ended. The
// standalone cluster has no provider: its TaskManagers are started by an
// operator.
//
// Implementations: process (child processes of the JobManager: the
// embedded default). The Kubernetes provider is to implement the same
// interface.
package provider

import "context"

// TaskManagerSpec describes a TaskManager to start.
type TaskManagerSpec struct {
	// ID names the TaskManager; it registers under it as its resource id.
	ID string
	// JobManager is the JobManager's RPC address.
	JobManager string
	// Slots is the number of task slots it offers.
	Slots int
}

// Exit reports that a TaskManager the provider started has ended.
type Exit struct {
	ID string
	// Reason tells how it ended: exit status, signal, or a start failure.
	Reason string
}

// Provider starts and stops TaskManagers for a resource manager.
type Provider interface {
	// StartTaskManager starts a TaskManager; it registers with the
	// JobManager by itself once running.
	StartTaskManager(ctx context.Context, spec TaskManagerSpec) error
	// StopTaskManager stops the TaskManager id and waits until it is gone.
	StopTaskManager(id string) error
	// Exits reports TaskManagers that ended, whether stopped or not.
	Exits() <-chan Exit
	// Close stops every TaskManager still running and waits for them.
	Close() error
}
