package jobmanager

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
	"github.com/spate-dev/spate/internal/savepoint"
	"github.com/spate-dev/spate/internal/snapshot"
)

// ackSnapshot acknowledges checkpoint tr for each of the worker's
// subtasks with state in the runtime's format (an entry per operator of
// the subtask's vertex, inline), as a real worker does, so that a
// savepoint can be written of it.
func (w *ckptWorker) ackSnapshot(jm *JobManager, tr *rpcpb.TriggerCheckpoint) {
	w.t.Helper()
	jm.mu.Lock()
	ops := jm.mu.jobs[JobID(w.dep.JobId)].ft.operators
	jm.mu.Unlock()
	for v := range 2 {
		for _, sub := range w.slots() {
			var es []snapshot.Entry
			for _, op := range ops {
				if op.Vertex == v {
					es = append(es, snapshot.Entry{Operator: int32(op.Node), Name: "state", KeyGroup: snapshot.NoKeyGroup, Data: []byte{byte(sub)}})
				}
			}
			data := snapshot.Encode(nil, es)
			_, err := w.ckpt.AcknowledgeCheckpoint(context.Background(), &rpcpb.AcknowledgeCheckpointRequest{
				JobId: w.dep.JobId, WorkerId: w.dep.WorkerId, Attempt: w.dep.Attempt, Vertex: int32(v), Subtask: int32(sub), CheckpointId: tr.CheckpointId,
				States: []*rpcpb.StateHandle{{Operator: -1, Kind: checkpoint.KindSubtask, Inline: data, Size: int64(len(data)), Sha256: snapshot.Sum(data)}},
			})
			if err != nil {
				w.t.Fatalf("ack of checkpoint %d by %d/%d: %v", tr.CheckpointId, v, sub, err)
			}
		}
	}
}

// confirm confirms the commit of checkpoint id for the worker's subtasks.
func (w *ckptWorker) confirm(id int64) (*rpcpb.ConfirmCommitResponse, error) {
	req := &rpcpb.ConfirmCommitRequest{JobId: w.dep.JobId, WorkerId: w.dep.WorkerId, Attempt: w.dep.Attempt, CheckpointId: id}
	for v := range 2 {
		for _, s := range w.slots() {
			req.Subtasks = append(req.Subtasks, &rpcpb.SubtaskRef{Vertex: int32(v), Subtask: int32(s)})
		}
	}
	return w.ckpt.ConfirmCommit(context.Background(), req)
}

// TestStopWaitsForCommits: a stop-with-savepoint of a job on two workers
// completes its savepoint, tells both workers to commit and confirm, and
// the job is FINISHED (and the stop COMPLETED with the savepoint's path)
// only once both confirmed. When a worker dies before it confirmed, the
// stop fails naming the savepoint, which stays usable: the job fails over
// and its restore is the savepoint (its sinks commit on restore).
func TestStopWaitsForCommits(t *testing.T) {
	for _, tc := range []struct {
		name string
		// dies: the second worker's TaskManager is lost instead of
		// confirming.
		dies bool
	}{{name: "both confirm"}, {name: "a worker dies first", dies: true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir, spDir := t.TempDir(), t.TempDir()
			jm, c, clock := startJMWith(t, Config{Settings: checkpointSettings(t, dir, savepoint.Key, spDir,
				"restart-strategy.type", "fixed-delay", "restart-strategy.fixed-delay.delay", "0 s")})
			id := submit(t, c, upload(t, c), 2)
			tm1, tm2 := connectFakeTM(t, jm, 1), connectFakeTM(t, jm, 1)
			d1, d2 := tm1.next("deploy").GetDeploy(), tm2.next("deploy").GetDeploy()
			w1, w2 := startWorker(t, jm, d1), startWorker(t, jm, d2)
			ready(t, w1, w2)
			for _, w := range []*ckptWorker{w1, w2} {
				if err := w.report(v1.TaskRunning); err != nil {
					t.Fatal(err)
				}
			}
			trigger, err := jm.TriggerSavepoint(ctx, id, "", true)
			if err != nil {
				t.Fatal(err)
			}
			tr1, tr2 := w1.next().GetTrigger(), w2.next().GetTrigger()
			if tr1 == nil || tr2 == nil || !tr1.Options.Savepoint {
				t.Fatalf("triggers %v, %v: want the stop's savepoint", tr1, tr2)
			}
			w1.ackSnapshot(jm, tr1)
			w2.ackSnapshot(jm, tr2)
			for _, w := range []*ckptWorker{w1, w2} {
				if o := w.next().GetComplete(); o == nil || o.CheckpointId != tr1.CheckpointId || !o.ConfirmCommit {
					t.Fatalf("worker %s: want notify-complete of the savepoint asking to confirm, got %v", w.dep.WorkerId, o)
				}
			}
			status := func() v1.SavepointStatus {
				st, err := jm.SavepointStatus(ctx, id, trigger)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			if r, _ := w1.confirm(tr1.CheckpointId); !r.GetAccepted() {
				t.Fatalf("first confirmation refused: %v", r)
			}
			tick(jm, clock, 10*time.Millisecond)
			if s := jobState(jm, id); s != v1.JobRunning || status().Status.ID != v1.OperationInProgress {
				t.Fatalf("with one worker's confirmation: job %s, stop %+v; want RUNNING and the stop IN_PROGRESS", s, status())
			}
			if !tc.dies {
				if r, err := w2.confirm(tr1.CheckpointId); err != nil || !r.Accepted {
					t.Fatalf("second confirmation: %v %v", r, err)
				}
				// An application's cluster, its job stopped, waits until
				// the stop's result is fetched (awaitStopResults).
				waitCtx, cancelWait := context.WithCancel(ctx)
				defer cancelWait()
				waited := make(chan struct{})
				go func() {
					defer close(waited)
					jm.awaitStopResults(waitCtx)
				}()
				select {
				case <-waited:
					t.Fatal("awaitStopResults returned before the stop's result was fetched")
				case <-time.After(100 * time.Millisecond):
				}
				st := status()
				select {
				case <-waited:
				case <-time.After(10 * time.Second):
					t.Fatal("awaitStopResults still waits once the stop's result was fetched")
				}
				if s := jobState(jm, id); s != v1.JobFinished || st.Status.ID != v1.OperationCompleted || st.Operation == nil ||
					!strings.HasPrefix(st.Operation.Location, spDir+"/savepoint-") {
					t.Fatalf("after both confirmations: job %s, stop %+v; want FINISHED, COMPLETED at the savepoint", s, st)
				}
				return
			}
			tm2.stop()
			waitFor(t, 5*time.Second, "the stop to fail", func() bool { return status().Status.ID == v1.OperationCompleted })
			st := status()
			if st.Operation == nil || st.Operation.FailureCause == nil {
				t.Fatalf("stop %+v after the worker died, want a failure", st)
			}
			cause := st.Operation.FailureCause.StackTrace
			if !strings.Contains(cause, "complete and usable") || !strings.Contains(cause, spDir+"/savepoint-") {
				t.Fatalf("failure cause %q: want it to name the savepoint, complete and usable", cause)
			}
			if s := jobState(jm, id); s == v1.JobFinished {
				t.Fatalf("job FINISHED though a worker never confirmed its commit")
			}
			// The failover restores the savepoint, the latest completed
			// checkpoint: the sinks commit what it holds on restore.
			tm1.next("release")
			tm1.stream.Send(&rpcpb.TaskManagerMessage{Kind: &rpcpb.TaskManagerMessage_JobReleased{JobReleased: &rpcpb.JobReleased{JobId: id, Attempt: 1}}})
			tm3 := connectFakeTM(t, jm, 1)
			tick(jm, clock, time.Second)
			for _, d := range []*rpcpb.DeployWorker{tm1.next("deploy").GetDeploy(), tm3.next("deploy").GetDeploy()} {
				if d.Attempt != 2 || d.Restore == nil || d.Restore.CheckpointId != tr1.CheckpointId {
					t.Fatalf("redeployment %s: attempt %d restores %v; want the savepoint, checkpoint %d", d.WorkerId, d.Attempt, d.Restore, tr1.CheckpointId)
				}
			}
			t.Logf("failure cause: %s", cause)
		})
	}
}
