package config

// ApplyProperties applies the entries of a $SPATE_PROPERTIES value (as
// EncodeProperties writes, or key=value entries separated by commas) over
// c's: how the JobManager reads a job's own configuration from its
// submission.
func (c *Config) ApplyProperties(props string) error { return decodeProperties(c, props) }
