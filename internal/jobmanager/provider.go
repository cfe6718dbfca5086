package jobmanager

import (
	"context"

	"github.com/spate-dev/spate/internal/resource"
)

// Provider starts and stops TaskManagers for the resource manager: child
// processes, pods, ... (internal/provider's implementations, which the
// entrypoint passes in Config). It is defined here, where it is consumed,
// so that the JobManager does not import the providers.
type Provider interface {
	// StartTaskManager starts a TaskManager; it registers with the
	// JobManager by itself once running.
	StartTaskManager(ctx context.Context, spec resource.TaskManagerSpec) error
	// StopTaskManager stops the TaskManager id and waits until it is gone;
	// when ctx ends first, it is killed.
	StopTaskManager(ctx context.Context, id string) error
	// Exits reports TaskManagers that ended, whether stopped or not.
	Exits() <-chan resource.Exit
	// Close stops every TaskManager still running and waits for them.
	Close() error
}
