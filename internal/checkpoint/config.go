package checkpoint

import (
	"slices"
	"strings"
	"time"

	"github.com/spate-dev/spate/internal/config"
)

// Configuration keys, Flink's.
const (
	KeyInterval          = "execution.checkpointing.interval"
	KeyMode              = "execution.checkpointing.mode"
	KeyTimeout           = "execution.checkpointing.timeout"
	KeyMinPause          = "execution.checkpointing.min-pause"
	KeyMaxConcurrent     = "execution.checkpointing.max-concurrent-checkpoints"
	KeyTolerableFailures = "execution.checkpointing.tolerable-failed-checkpoints"
	KeyNumRetained       = "state.checkpoints.num-retained"
	// KeyAlignmentMaxSize bounds what a barrier alignment holds.
	KeyAlignmentMaxSize = "task.checkpoint.alignment.max-size"
	// KeyDir is where checkpoints are stored, a URL (file:///path, or a
	// plain path); see internal/checkpoint/storage.
	KeyDir = "state.checkpoints.dir"
	// KeyRetention says what becomes of a job's checkpoints as it ends.
	KeyRetention = "execution.checkpointing.externalized-checkpoint-retention"
)

// Retention is execution.checkpointing.externalized-checkpoint-retention,
// Flink's: which ended jobs keep their checkpoints (to start a job from
// with spate run -s). A finished job's are deleted in every case.
type Retention int

// The retentions.
const (
	// DeleteOnCancellation keeps a failed job's checkpoints (the default).
	DeleteOnCancellation Retention = iota
	// RetainOnCancellation keeps a failed or cancelled job's.
	RetainOnCancellation
	// NoExternalized keeps none.
	NoExternalized
)

var retentionNames = []string{"DELETE_ON_CANCELLATION", "RETAIN_ON_CANCELLATION", "NO_EXTERNALIZED_CHECKPOINTS"}

func (r Retention) String() string { return retentionNames[r] }

// Keeps tells whether a job that ended with status (FAILED, CANCELED,
// FINISHED) keeps its checkpoints.
func (r Retention) Keeps(status string) bool {
	switch status {
	case "FAILED":
		return r != NoExternalized
	case "CANCELED":
		return r == RetainOnCancellation
	}
	return false
}

// Defaults, Flink's.
const (
	DefaultTimeout       = 10 * time.Minute
	DefaultMaxConcurrent = 1
	DefaultRetained      = 1
)

// ConfigFrom reads a job's checkpointing configuration from c. Without
// execution.checkpointing.interval the job takes no checkpoints, as in
// Flink.
func ConfigFrom(c config.Config) (Config, error) {
	cfg := Config{}
	var err error
	if cfg.Interval, err = c.Duration(KeyInterval, 0); err != nil {
		return cfg, err
	}
	if cfg.Timeout, err = c.Duration(KeyTimeout, DefaultTimeout); err != nil {
		return cfg, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MinPause, err = c.Duration(KeyMinPause, 0); err != nil {
		return cfg, err
	}
	if cfg.MaxConcurrent, err = c.Int(KeyMaxConcurrent, DefaultMaxConcurrent); err != nil {
		return cfg, err
	}
	if cfg.TolerableFailures, err = c.Int(KeyTolerableFailures, 0); err != nil {
		return cfg, err
	}
	if cfg.Retained, err = c.Int(KeyNumRetained, DefaultRetained); err != nil {
		return cfg, err
	}
	for _, k := range []struct {
		key string
		n   int
		min int
	}{{KeyMaxConcurrent, cfg.MaxConcurrent, 1}, {KeyTolerableFailures, cfg.TolerableFailures, 0}, {KeyNumRetained, cfg.Retained, 1}} {
		if k.n < k.min {
			v, _ := c.Get(k.key)
			return cfg, &config.ValueError{Key: k.key, Value: v, Expected: "an integer, " + map[int]string{0: "0", 1: "1"}[k.min] + " or more"}
		}
	}
	if cfg.MaxAlignedBytes, err = c.Bytes(KeyAlignmentMaxSize, 0); err != nil {
		return cfg, err
	}
	ret := strings.ToUpper(c.String(KeyRetention, retentionNames[0]))
	if i := slices.Index(retentionNames, ret); i >= 0 {
		cfg.Retention = Retention(i)
	} else {
		v, _ := c.Get(KeyRetention)
		return cfg, &config.ValueError{Key: KeyRetention, Value: v, Expected: "one of " + strings.Join(retentionNames, ", ")}
	}
	switch m := strings.ToUpper(c.String(KeyMode, "EXACTLY_ONCE")); m {
	case "EXACTLY_ONCE":
		cfg.Mode = ExactlyOnce
	case "AT_LEAST_ONCE":
		cfg.Mode = AtLeastOnce
	default:
		v, _ := c.Get(KeyMode)
		return cfg, &config.ValueError{Key: KeyMode, Value: v, Expected: "one of EXACTLY_ONCE, AT_LEAST_ONCE"}
	}
	return cfg, nil
}
