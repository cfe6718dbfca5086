// Package restart decides whether a failed job restarts, and after how
// long: Flink's restart strategies (RestartBackoffTimeStrategy) under
// Flink's names, keys and defaults.
//
//	restart-strategy.type   none | fixed-delay | failure-rate | exponential-delay
//
// Without restart-strategy.type the strategy is exponential-delay when the
// job takes checkpoints (execution.checkpointing.interval set) and none
// otherwise, as in Flink 1.19 and later.
//
// A Strategy is pure: the caller passes the failure's time in and gets a
// decision out; randomness (exponential-delay's jitter) is injected. The
// job master (internal/jobmaster) asks it once per failure that would end
// the job.
package restart

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate/internal/config"
)

// Configuration keys, Flink's.
const (
	KeyType = "restart-strategy.type"

	KeyFixedDelayAttempts = "restart-strategy.fixed-delay.attempts"
	KeyFixedDelayDelay    = "restart-strategy.fixed-delay.delay"

	KeyFailureRateMaxFailures = "restart-strategy.failure-rate.max-failures-per-interval"
	KeyFailureRateInterval    = "restart-strategy.failure-rate.failure-rate-interval"
	KeyFailureRateDelay       = "restart-strategy.failure-rate.delay"

	KeyExpInitialBackoff = "restart-strategy.exponential-delay.initial-backoff"
	KeyExpMaxBackoff     = "restart-strategy.exponential-delay.max-backoff"
	KeyExpMultiplier     = "restart-strategy.exponential-delay.backoff-multiplier"
	KeyExpResetThreshold = "restart-strategy.exponential-delay.reset-backoff-threshold"
	KeyExpJitter         = "restart-strategy.exponential-delay.jitter-factor"
	KeyExpAttempts       = "restart-strategy.exponential-delay.attempts-before-reset-backoff"
)

// Names of the strategies (restart-strategy.type).
const (
	None             = "none"
	FixedDelay       = "fixed-delay"
	FailureRate      = "failure-rate"
	ExponentialDelay = "exponential-delay"
)

// Flink's defaults.
const (
	DefaultFixedDelayAttempts     = 1
	DefaultFixedDelayDelay        = time.Second
	DefaultFailureRateMaxFailures = 1
	DefaultFailureRateInterval    = time.Minute
	DefaultFailureRateDelay       = time.Second
	DefaultExpInitialBackoff      = time.Second
	DefaultExpMaxBackoff          = time.Minute
	DefaultExpMultiplier          = 1.5
	DefaultExpResetThreshold      = time.Hour
	DefaultExpJitter              = 0.1
	DefaultExpAttempts            = math.MaxInt
)

// Decision is a strategy's answer to one failure.
type Decision struct {
	// Restart tells whether the job restarts; if not, it fails for good.
	Restart bool
	// Delay is how long after the failure the job is deployed again.
	Delay time.Duration
	// Reason says why the job does not restart (restarts exhausted), for
	// its exception history.
	Reason string
}

// Strategy decides about a job's failures, in the order they happen.
type Strategy interface {
	// Failed records a failure at now and decides.
	Failed(now time.Time) Decision
	// String names the strategy with its settings, for logs.
	String() string
}

// Random returns a number in [0, 1); math/rand/v2's Float64 in
// production, a fixed sequence in tests.
type Random func() float64

// noRestart is restart-strategy.type none.
type noRestart struct{}

func (noRestart) Failed(time.Time) Decision {
	return Decision{Reason: "the job does not restart (restart-strategy.type is none; set it, or execution.checkpointing.interval, to restart failed jobs)"}
}
func (noRestart) String() string { return None }

// NewNone returns the strategy that never restarts.
func NewNone() Strategy { return noRestart{} }

// fixedDelay restarts up to attempts times, each after delay.
type fixedDelay struct {
	attempts int
	delay    time.Duration
	done     int
}

// NewFixedDelay returns Flink's fixed-delay strategy: at most attempts
// restarts in the job's life, each delay after its failure.
func NewFixedDelay(attempts int, delay time.Duration) Strategy {
	return &fixedDelay{attempts: attempts, delay: delay}
}

func (s *fixedDelay) Failed(time.Time) Decision {
	if s.done >= s.attempts {
		return Decision{Reason: fmt.Sprintf("restarts exhausted: %d of %d (%s) used; raise it to restart more often", s.done, s.attempts, KeyFixedDelayAttempts)}
	}
	s.done++
	return Decision{Restart: true, Delay: s.delay}
}

func (s *fixedDelay) String() string {
	return fmt.Sprintf("%s(attempts=%d, delay=%v)", FixedDelay, s.attempts, s.delay)
}

// failureRate restarts unless more than max failures fell within the last
// interval.
type failureRate struct {
	max      int
	interval time.Duration
	delay    time.Duration
	// times are the recent failures, oldest first, at most max of them.
	times []time.Time
}

// NewFailureRate returns Flink's failure-rate strategy: the job restarts,
// after delay, unless this failure makes more than max failures within
// interval.
func NewFailureRate(max int, interval, delay time.Duration) Strategy {
	return &failureRate{max: max, interval: interval, delay: delay}
}

func (s *failureRate) Failed(now time.Time) Decision {
	s.times = append(s.times, now)
	if len(s.times) > s.max {
		first := s.times[len(s.times)-s.max-1]
		s.times = s.times[len(s.times)-s.max:]
		if now.Sub(first) <= s.interval {
			return Decision{Reason: fmt.Sprintf("failure rate exceeded: %d failures within %v (%s = %d per %s = %v)",
				s.max+1, now.Sub(first), KeyFailureRateMaxFailures, s.max, KeyFailureRateInterval, s.interval)}
		}
	}
	return Decision{Restart: true, Delay: s.delay}
}

func (s *failureRate) String() string {
	return fmt.Sprintf("%s(max-failures-per-interval=%d, failure-rate-interval=%v, delay=%v)", FailureRate, s.max, s.interval, s.delay)
}

// Exponential configures exponential-delay.
type Exponential struct {
	Initial, Max time.Duration
	Multiplier   float64
	// ResetThreshold: a failure this long after the previous one starts
	// the backoff (and the attempts) over.
	ResetThreshold time.Duration
	// Jitter spreads each backoff by up to ± this fraction of it.
	Jitter float64
	// Attempts bounds the restarts before the backoff is reset.
	Attempts int
}

// exponential is Flink's exponential-delay strategy.
type exponential struct {
	cfg     Exponential
	rnd     Random
	backoff time.Duration
	last    time.Time
	// attempts counts the restarts since the backoff was last reset.
	attempts int
}

// NewExponential returns Flink's exponential-delay strategy: the first
// restart after Initial, each next one Multiplier times longer, up to
// Max, all spread by ±Jitter; a failure ResetThreshold or more after the
// previous starts over; more than Attempts restarts in a row fail the job.
func NewExponential(cfg Exponential, rnd Random) Strategy {
	return &exponential{cfg: cfg, rnd: rnd}
}

func (s *exponential) Failed(now time.Time) Decision {
	if s.backoff == 0 || now.Sub(s.last) >= s.cfg.ResetThreshold {
		s.backoff, s.attempts = s.cfg.Initial, 0
	} else {
		next := time.Duration(float64(s.backoff) * s.cfg.Multiplier)
		if next > s.cfg.Max || next < s.backoff {
			next = s.cfg.Max
		}
		s.backoff = next
	}
	s.last = now
	if s.attempts >= s.cfg.Attempts {
		return Decision{Reason: fmt.Sprintf("restarts exhausted: %d restarts without a pause of %v (%s = %d)",
			s.attempts, s.cfg.ResetThreshold, KeyExpAttempts, s.cfg.Attempts)}
	}
	s.attempts++
	delay := s.backoff
	if s.cfg.Jitter > 0 && s.rnd != nil {
		spread := float64(s.backoff) * s.cfg.Jitter
		delay += time.Duration((2*s.rnd() - 1) * spread)
	}
	return Decision{Restart: true, Delay: max(delay, 0)}
}

func (s *exponential) String() string {
	return fmt.Sprintf("%s(initial-backoff=%v, max-backoff=%v, backoff-multiplier=%g, reset-backoff-threshold=%v, jitter-factor=%g)",
		ExponentialDelay, s.cfg.Initial, s.cfg.Max, s.cfg.Multiplier, s.cfg.ResetThreshold, s.cfg.Jitter)
}

// FromConfig returns the strategy c configures; checkpointing tells
// whether the job takes checkpoints, which picks the default.
func FromConfig(c config.Config, checkpointing bool, rnd Random) (Strategy, error) {
	typ := strings.ToLower(c.String(KeyType, ""))
	switch typ {
	case "":
		if checkpointing {
			typ = ExponentialDelay
		} else {
			typ = None
		}
	case "off", "disable":
		typ = None
	case "fixeddelay":
		typ = FixedDelay
	case "failurerate":
		typ = FailureRate
	case "exponentialdelay":
		typ = ExponentialDelay
	}
	switch typ {
	case None:
		return NewNone(), nil
	case FixedDelay:
		n, err := nonNegativeInt(c, KeyFixedDelayAttempts, DefaultFixedDelayAttempts)
		if err != nil {
			return nil, err
		}
		d, err := c.Duration(KeyFixedDelayDelay, DefaultFixedDelayDelay)
		if err != nil {
			return nil, err
		}
		return NewFixedDelay(n, d), nil
	case FailureRate:
		n, err := nonNegativeInt(c, KeyFailureRateMaxFailures, DefaultFailureRateMaxFailures)
		if err != nil {
			return nil, err
		}
		iv, err := c.Duration(KeyFailureRateInterval, DefaultFailureRateInterval)
		if err != nil {
			return nil, err
		}
		d, err := c.Duration(KeyFailureRateDelay, DefaultFailureRateDelay)
		if err != nil {
			return nil, err
		}
		return NewFailureRate(n, iv, d), nil
	case ExponentialDelay:
		e := Exponential{Attempts: DefaultExpAttempts}
		var err error
		if e.Initial, err = c.Duration(KeyExpInitialBackoff, DefaultExpInitialBackoff); err != nil {
			return nil, err
		}
		if e.Max, err = c.Duration(KeyExpMaxBackoff, DefaultExpMaxBackoff); err != nil {
			return nil, err
		}
		if e.ResetThreshold, err = c.Duration(KeyExpResetThreshold, DefaultExpResetThreshold); err != nil {
			return nil, err
		}
		if e.Multiplier, err = float(c, KeyExpMultiplier, DefaultExpMultiplier, 1, math.Inf(1), "a number, 1 or more, such as 1.5"); err != nil {
			return nil, err
		}
		if e.Jitter, err = float(c, KeyExpJitter, DefaultExpJitter, 0, 1, "a number from 0 to 1, such as 0.1"); err != nil {
			return nil, err
		}
		if e.Attempts, err = nonNegativeInt(c, KeyExpAttempts, DefaultExpAttempts); err != nil {
			return nil, err
		}
		if e.Initial <= 0 || e.Max < e.Initial {
			return nil, fmt.Errorf("configuration %s = %v and %s = %v: want an initial backoff above zero and a max backoff no shorter",
				KeyExpInitialBackoff, e.Initial, KeyExpMaxBackoff, e.Max)
		}
		return NewExponential(e, rnd), nil
	}
	v, _ := c.Get(KeyType)
	return nil, &config.ValueError{Key: KeyType, Value: v, Expected: "one of none, fixed-delay, failure-rate, exponential-delay"}
}

func nonNegativeInt(c config.Config, key string, def int) (int, error) {
	n, err := c.Int(key, def)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		v, _ := c.Get(key)
		return 0, &config.ValueError{Key: key, Value: v, Expected: "an integer, 0 or more"}
	}
	return n, nil
}

func float(c config.Config, key string, def, lo, hi float64, want string) (float64, error) {
	v, ok := c.Get(key)
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < lo || f > hi || math.IsNaN(f) {
		return 0, &config.ValueError{Key: key, Value: v, Expected: want}
	}
	return f, nil
}
