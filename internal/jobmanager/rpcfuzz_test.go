package jobmanager

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// FuzzRPCRequests decodes arbitrary bytes as each request message the
// JobManager's RPC port takes, as gRPC would, and hands what decodes to
// the JobManager's handler: none panics, whatever the fields hold.
func FuzzRPCRequests(f *testing.F) {
	seed := func(m proto.Message) {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	seed(&rpcpb.RegisterTaskManagerRequest{ResourceId: "tm", Slots: 4, Host: "127.0.0.1"})
	seed(&rpcpb.ReportTasksRequest{JobId: "0123456789abcdef0123456789abcdef", WorkerId: "w0",
		Tasks: []*rpcpb.TaskStatus{{Vertex: -1, Subtask: 1 << 30, State: "FAILED", Error: "x"}}, Failure: "boom"})
	seed(&rpcpb.WorkerReadyRequest{JobId: "j", WorkerId: "w0", DataAddress: "127.0.0.1:1", Fingerprint: "f"})
	seed(&rpcpb.IssueWorkerCertificateRequest{TaskmanagerId: "tm-1", JobId: "j", WorkerId: "w0", PublicKey: []byte{0x30, 0x82}})
	seed(&rpcpb.CollectPushRequest{JobId: "j", WorkerId: "w0", Sink: -3, Subtask: 7, Records: []byte{1, 2}, Last: true})
	seed(&rpcpb.WorkerHeartbeatRequest{JobId: "j", WorkerId: "w0"})
	seed(&rpcpb.AwaitPublishRequest{JobId: "j", WorkerId: "w0"})
	seed(&rpcpb.FetchArtifactRequest{Artifact: "../../etc/passwd"})
	jm, _ := runJM(f, Config{})
	sec := securityServer{jm: jm}
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if m := new(rpcpb.RegisterTaskManagerRequest); proto.Unmarshal(b, m) == nil {
			if resp, err := jm.RegisterTaskManager(ctx, m); err == nil {
				// Admitted: it must leave again, or the registry grows.
				jm.mu.Lock()
				tm := jm.mu.tms[resp.TaskmanagerId]
				jm.mu.Unlock()
				jm.lose(tm, "fuzz")
			}
		}
		if m := new(rpcpb.ReportTasksRequest); proto.Unmarshal(b, m) == nil {
			jm.ReportTasks(ctx, m)
		}
		if m := new(rpcpb.WorkerReadyRequest); proto.Unmarshal(b, m) == nil {
			jm.WorkerReady(ctx, m)
		}
		if m := new(rpcpb.WorkerHeartbeatRequest); proto.Unmarshal(b, m) == nil {
			jm.WorkerHeartbeat(ctx, m)
		}
		if m := new(rpcpb.AwaitPublishRequest); proto.Unmarshal(b, m) == nil {
			jm.AwaitPublish(ctx, m)
		}
		if m := new(rpcpb.IssueWorkerCertificateRequest); proto.Unmarshal(b, m) == nil {
			sec.IssueWorkerCertificate(ctx, m)
		}
		if m := new(rpcpb.CollectPushRequest); proto.Unmarshal(b, m) == nil {
			collectServer{jm: jm}.Push(ctx, m)
		}
	})
}
