package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
)

// TestWatchJob: WatchJob reports every change of state and of the number
// of restarts, including a restart whose RESTARTING state no poll saw.
func TestWatchJob(t *testing.T) {
	seq := []v1.JobDetails{
		{State: v1.JobRunning},
		{State: v1.JobRunning},
		{State: v1.JobRestarting},
		{State: v1.JobRunning, NumRestarts: 1},
		{State: v1.JobRunning, NumRestarts: 2}, // RESTARTING between two polls
		{State: v1.JobFinished, NumRestarts: 2},
	}
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := seq[min(n, len(seq)-1)]
		n++
		mu.Unlock()
		d.JID = "0123456789abcdef0123456789abcdef"
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d)
	}))
	defer srv.Close()
	c, err := client.New(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	type change struct {
		state    string
		restarts int
	}
	var got []change
	d, err := c.WatchJob(context.Background(), "0123456789abcdef0123456789abcdef", time.Millisecond, func(prev, cur v1.JobDetails) {
		got = append(got, change{cur.State, cur.NumRestarts})
	})
	if err != nil || d.State != v1.JobFinished {
		t.Fatalf("WatchJob = %+v, %v", d, err)
	}
	want := []change{{v1.JobRunning, 0}, {v1.JobRestarting, 0}, {v1.JobRunning, 1}, {v1.JobRunning, 2}, {v1.JobFinished, 2}}
	if len(got) != len(want) {
		t.Fatalf("changes = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("changes = %v, want %v", got, want)
		}
	}
}
