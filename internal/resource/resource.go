// Package resource holds what a resource manager and the providers that
// start its TaskManagers share: the description of a TaskManager to start
// and the report that one ended. The JobManager defines the provider
// interface it consumes (jobmanager.Provider); the providers under
// internal/provider implement it with these types, and the entrypoint
// (cmd/spate) wires one into the other, so neither imports the other.
package resource

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
