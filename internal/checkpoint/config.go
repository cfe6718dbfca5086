package checkpoint

import (
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
	// KeyDir is where checkpoints are stored, a URL (file:///path, or a
	// plain path); see internal/checkpoint/storage.
	KeyDir = "state.checkpoints.dir"
)

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
