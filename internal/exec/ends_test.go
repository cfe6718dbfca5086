package exec

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// TestEnds: a task's Ends run after every task of the Run has ended, with
// nil only if all finished; an End's error fails its task and the Run.
func TestEnds(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name string
		// failB makes task b fail after task a has ended; endErr makes
		// a's End fail; cancel stops the Run before b ends.
		failB, endErr, cancel bool
		wantOutcome           error // what a's End sees, nil for success
		wantRun               string
	}{
		{name: "all finished", wantOutcome: nil},
		{name: "another task fails later", failB: true, wantOutcome: boom, wantRun: "boom"},
		{name: "cancelled", cancel: true, wantOutcome: context.Canceled, wantRun: "context canceled"},
		{name: "end fails", endErr: true, wantOutcome: nil, wantRun: "publish failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			aDone := make(chan struct{})
			var mu sync.Mutex
			var outcome error
			var ran bool
			var endedErr error
			a := &Task{Name: "a", Parallelism: 1,
				Source: func(context.Context) error { return nil },
				Closes: []func() error{func() error { close(aDone); return nil }},
				Ends: []func(error) error{func(err error) error {
					mu.Lock()
					defer mu.Unlock()
					outcome, ran = err, true
					if tc.endErr {
						return errors.New("publish failed")
					}
					return nil
				}},
			}
			b := &Task{Name: "b", Parallelism: 1, Source: func(ctx context.Context) error {
				<-aDone
				switch {
				case tc.failB:
					return boom
				case tc.cancel:
					cancel()
					<-ctx.Done()
					return context.Cause(ctx)
				}
				return nil
			}}
			err := RunObserved(ctx, []*Task{a, b}, func(tk *Task, err error) {
				if tk == a {
					mu.Lock()
					defer mu.Unlock()
					if !ran {
						t.Error("task a reported ended before its Ends ran")
					}
					endedErr = err
				}
			})
			if tc.wantRun == "" && err != nil || tc.wantRun != "" && (err == nil || !strings.Contains(err.Error(), tc.wantRun)) {
				t.Errorf("Run = %v, want %q", err, tc.wantRun)
			}
			if !ran {
				t.Fatal("task a's End did not run")
			}
			if tc.wantOutcome == nil && outcome != nil || tc.wantOutcome != nil && !errors.Is(outcome, tc.wantOutcome) {
				t.Errorf("task a's End saw %v, want %v", outcome, tc.wantOutcome)
			}
			if tc.endErr != (endedErr != nil) {
				t.Errorf("task a ended with %v; want an error only when its End failed", endedErr)
			}
		})
	}
}
