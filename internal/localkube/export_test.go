package localkube

import (
	"context"
	"time"
)

// StatusWrites is the number of pod status updates the runner sent.
func (c *Cluster) StatusWrites() int64 { return c.runner.statusWrites.Load() }

// RefreshTokensAt renews the tokens due at now, as the runner's minutely
// loop does.
func (c *Cluster) RefreshTokensAt(now time.Time) { c.runner.refreshDue(context.Background(), now) }
