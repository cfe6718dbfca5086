package role

import (
	"strings"
	"testing"
)

// TestClusterTarget checks which TargetEnv values send jobs to a cluster,
// and that an unknown one is refused naming the variable and the choices.
// The roles themselves run in real processes in cmd/spate's tests.
func TestClusterTarget(t *testing.T) {
	cases := []struct {
		name        string
		target      string
		wantCluster bool
		wantErr     string
	}{
		{name: "unset", target: ""},
		{name: "local", target: "local"},
		{name: "remote", target: "remote", wantCluster: true},
		{name: "per-job", target: "per-job", wantCluster: true},
		{name: "unknown", target: "yarn", wantErr: `SPATE_TARGET="yarn": unknown execution target; use local, remote or per-job`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(TargetEnv, c.target)
			got, err := ClusterTarget()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("ClusterTarget() error = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.wantCluster {
				t.Errorf("ClusterTarget() = %v, %v; want %v, nil", got, err, c.wantCluster)
			}
		})
	}
}
