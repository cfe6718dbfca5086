package network

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestConnErrPeerLost: a broken connection's error matches ErrPeerLost
// (the JobManager takes it for a consequence, not a cause), through the
// wrapping a subtask's failure adds; a protocol error does not.
func TestConnErrPeerLost(t *testing.T) {
	p := &peer{id: "w1", remote: "127.0.0.1:1"}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "reset", err: connErr(p, errors.New("read: connection reset by peer")), want: true},
		{name: "eof", err: connErr(p, io.EOF), want: true},
		{name: "wrapped by a subtask", err: fmt.Errorf("operator %q failed: %w", "Map", connErr(p, io.EOF)), want: true},
		{name: "protocol", err: connErr(p, fmt.Errorf("bad frame: %w", errProtocol)), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(tt.err, ErrPeerLost); got != tt.want {
				t.Errorf("errors.Is(%v, ErrPeerLost) = %v, want %v", tt.err, got, tt.want)
			}
			if tt.want && !errors.Is(tt.err, io.EOF) && tt.name == "eof" {
				t.Errorf("the cause is lost: %v", tt.err)
			}
		})
	}
}
