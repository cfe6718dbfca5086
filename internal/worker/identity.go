package worker

import (
	"context"
	"fmt"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// MismatchError is a worker's refusal to run a job it cannot reproduce:
// the program's Execute/ExecuteAsync call at the job's ordinal built
// another dataflow than the one submitted.
type MismatchError struct {
	JobName    string
	JobOrdinal int
	// Built is the fingerprint of the graph the worker's call built;
	// Submitted the one of the submitted JobGraph.
	Built, Submitted string
	// BuiltName is the name the worker's call gave its job.
	BuiltName string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("job %q is Execute/ExecuteAsync call #%d of its program, but that call, run again in this worker, built job %q with fingerprint %s where the submitted JobGraph has %s: "+
		"main must be deterministic, making the same Execute/ExecuteAsync calls in the same order with the same dataflows for the same arguments (is main non-deterministic?)",
		e.JobName, e.JobOrdinal, e.BuiltName, e.Built, e.Submitted)
}

// Refuse reports to the JobManager that this worker will not run its
// job, for err (a *MismatchError, say); the JobManager fails the job with
// err as its cause. It returns err for the caller.
func Refuse(ctx context.Context, d *Deployment, err error) error {
	conn, cerr := dialJobManager(d)
	if cerr != nil {
		return err
	}
	defer conn.Close()
	return report(ctx, rpcpb.NewJobManagerClient(conn), d, nil, err)
}
