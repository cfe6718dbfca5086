package jobmanager

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/spate-dev/spate/internal/resource"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// TestKeptTaskManagerReplaced: a session's kept TaskManager
// (MinTaskManagers) that the provider reports ended after it registered is
// replaced at once; one that ended before registering is not, so that a
// cluster whose TaskManagers cannot start does not retry forever.
func TestKeptTaskManagerReplaced(t *testing.T) {
	p := &fakeProvider{exits: make(chan resource.Exit, 4)}
	jm, _, _ := startJMWith(t, Config{Provider: p, ProvidedSlots: 1, MinTaskManagers: 1})
	waitFor(t, 5*time.Second, "the kept TaskManager to be asked for", func() bool { return p.count() == 1 })

	// taskmanager-1 registers, then its pod is reported gone.
	conn, err := grpc.NewClient(jm.RPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rpc := rpcpb.NewJobManagerClient(conn)
	if _, err := rpc.RegisterTaskManager(context.Background(), &rpcpb.RegisterTaskManagerRequest{ResourceId: "taskmanager-1", Slots: 1}); err != nil {
		t.Fatal(err)
	}
	p.exits <- resource.Exit{ID: "taskmanager-1", Reason: "ended: pod x was deleted"}
	waitFor(t, 5*time.Second, "a replacement to be asked for", func() bool { return p.count() == 2 })

	// taskmanager-2 ends before registering: no third.
	p.exits <- resource.Exit{ID: "taskmanager-2", Reason: "could not start: forbidden"}
	waitFor(t, 5*time.Second, "the loss to be taken", func() bool {
		jm.mu.Lock()
		defer jm.mu.Unlock()
		return !slices.Contains(jm.mu.sched.Pending(), "taskmanager-2")
	})
	if n := p.count(); n != 2 {
		t.Errorf("TaskManagers asked for = %d, want 2: one that never registered was replaced", n)
	}
}
