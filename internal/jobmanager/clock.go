package jobmanager

import "time"

// Clock tells the JobManager's decisions what time it is: scheduling,
// timeouts, the job store's expiry and the root-cause window all take
// their "now" from it, so that a test can drive them with chosen times
// (call tickLocked with a time of its own) instead of waiting.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

var _ Clock = SystemClock{}
