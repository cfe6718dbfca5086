package localkube

// StatusWrites is the number of pod status updates the runner sent.
func (c *Cluster) StatusWrites() int64 { return c.runner.statusWrites.Load() }
