package jobmanager

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// TestWorkerHeartbeat asks, over the real RPC surface, whether a deployed
// job runs with its worker, with another worker, and after it was
// cancelled; and about a job the JobManager does not know.
func TestWorkerHeartbeat(t *testing.T) {
	jm, c := startJM(t, time.Minute)
	ctx := context.Background()
	up, err := c.UploadArtifactReader(ctx, strings.NewReader("binary"), -1)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.SubmitJob(ctx, v1.JobSubmitRequest{JobGraph: graphJSON(t, 1), Artifact: up.ID})
	if err != nil {
		t.Fatal(err)
	}
	tm := connectFakeTM(t, jm, 1)
	dep := tm.next("deploy").GetDeploy()
	ask := func(job, worker string) *rpcpb.WorkerHeartbeatResponse {
		t.Helper()
		resp, err := tm.rpc.WorkerHeartbeat(ctx, &rpcpb.WorkerHeartbeatRequest{JobId: job, WorkerId: worker})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct {
		name, job, worker string
		wantRunning       bool
		wantReason        string
	}{
		{name: "its worker", job: id, worker: dep.WorkerId, wantRunning: true},
		{name: "another worker", job: id, worker: "w9", wantReason: "runs without worker w9"},
		{name: "unknown job", job: strings.Repeat("0", 32), worker: dep.WorkerId, wantReason: "has no job"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := ask(tc.job, tc.worker)
			if resp.Running != tc.wantRunning || !strings.Contains(resp.Reason, tc.wantReason) {
				t.Errorf("WorkerHeartbeat = %v, %q; want %v, %q", resp.Running, resp.Reason, tc.wantRunning, tc.wantReason)
			}
		})
	}
	if err := c.CancelJob(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Cancelling already: the worker must stop though its TaskManager has
	// not confirmed the release.
	if resp := ask(id, dep.WorkerId); resp.Running || !strings.Contains(resp.Reason, v1.JobCancelling) {
		t.Errorf("after cancel: WorkerHeartbeat = %v, %q; want not running, %s", resp.Running, resp.Reason, v1.JobCancelling)
	}
}
