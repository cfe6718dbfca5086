package spate

import "github.com/spate-dev/spate/internal/operator"

// TimeDomain tells which clock a timer follows.
type TimeDomain = operator.TimeDomain

const (
	// EventTime timers fire when the watermark passes them.
	EventTime = operator.EventTime
	// ProcessingTime timers fire when the wall clock passes them.
	ProcessingTime = operator.ProcessingTime
)
