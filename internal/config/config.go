// Package config holds Spate's configuration: string entries under keys
// named as Flink names them where the concept is the same
// (parallelism.default, pipeline.max-parallelism, ...), read from a YAML
// file (Flink's flat or nested config.yaml), the environment and -D style
// overrides.
//
// Every key Spate reads is registered in keys.go with the form of its
// value; Validate checks a whole Config against the registry, so that a
// malformed value fails where the configuration is loaded (a daemon's
// start, a job's submission), naming the key, the value and the expected
// form. The typed getters (Int, Bool, Duration, Bytes) return the same
// errors and never replace a malformed value by a default.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Keys of the entries Spate reads.
const (
	ParallelismDefault = "parallelism.default"
	MaxParallelism     = "pipeline.max-parallelism"
	// EncodeExchanges forces local exchanges through the codecs.
	EncodeExchanges = "execution.exchange.encode"
	// BufferRecords is the number of records per exchanged batch.
	BufferRecords = "execution.buffer.records"
	// QueueBatches is the capacity of a subtask's inbox in batches per
	// input channel.
	QueueBatches = "execution.queue.batches"
	// NetworkCredits is how many batches a receiving worker lets each
	// channel from another worker have in flight (the credit of
	// credit-based flow control), Flink's buffers per channel.
	NetworkCredits = "taskmanager.network.memory.buffers-per-channel"
)

// ConfDirEnv names the directory holding config.yaml.
const ConfDirEnv = "SPATE_CONF_DIR"

// PropertiesEnv holds configuration overrides: comma-separated key=value
// entries, or a JSON object as EncodeProperties writes.
const PropertiesEnv = "SPATE_PROPERTIES"

// Config is a set of configuration entries.
type Config struct {
	m map[string]string
}

// Set sets key to value.
func (c *Config) Set(key, value string) {
	if c.m == nil {
		c.m = make(map[string]string)
	}
	c.m[key] = value
}

// Get returns the value of key and whether it is set.
func (c Config) Get(key string) (string, bool) {
	v, ok := c.m[key]
	return v, ok
}

// Int returns the integer under key, def if it is unset or empty. A value
// that is not an integer, or is outside a registered key's range, is an
// error naming the key, the value and the expected form.
func (c Config) Int(key string, def int) (int, error) {
	v, ok := c.m[key]
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	if k, ok := registry[key]; ok && k.Kind == KindInt {
		if err := k.Check(v); err != nil {
			return 0, err
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, &ValueError{Key: key, Value: v, Expected: "an integer"}
	}
	return n, nil
}

// Bool returns the boolean under key, def if it is unset or empty. A value
// other than true or false (in any case) is an error naming the key.
func (c Config) Bool(key string, def bool) (bool, error) {
	v, ok := c.m[key]
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	b, ok := parseBool(strings.TrimSpace(v))
	if !ok {
		return false, &ValueError{Key: key, Value: v, Expected: "true or false"}
	}
	return b, nil
}

// String returns the text under key, def if it is unset or empty.
func (c Config) String(key, def string) string {
	if v, ok := c.m[key]; ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// Entries returns a copy of all entries.
func (c Config) Entries() map[string]string {
	out := make(map[string]string, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// FromEnvironment reads $SPATE_CONF_DIR/config.yaml, if the variable is set,
// then applies $SPATE_PROPERTIES. It does not check the values: the caller
// calls Validate once every source is applied.
func FromEnvironment() (Config, error) {
	var c Config
	if dir := os.Getenv(ConfDirEnv); dir != "" {
		path := filepath.Join(dir, "config.yaml")
		f, err := os.Open(path)
		if err != nil {
			return c, fmt.Errorf("read configuration: %w (unset %s or create the file)", err, ConfDirEnv)
		}
		defer f.Close()
		if err := c.ParseYAML(f, path); err != nil {
			return c, err
		}
	}
	if props := os.Getenv(PropertiesEnv); props != "" {
		if err := decodeProperties(&c, props); err != nil {
			return c, fmt.Errorf("%s: %w", PropertiesEnv, err)
		}
	}
	return c, nil
}

// SetDynamic applies one "key=value" entry, as given to -D.
func (c *Config) SetDynamic(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("configuration entry %q: want key=value", kv)
	}
	c.Set(k, strings.TrimSpace(v))
	return nil
}

// Duration returns the duration under key, def if unset. A bare number is
// milliseconds (as Flink's older keys), or seconds for the keys registered
// so (jobstore.expiration-time); otherwise a number and a unit, as Flink
// writes them ("10 s", "5 min", "100ms") or as Go does ("1m30s").
func (c Config) Duration(key string, def time.Duration) (time.Duration, error) {
	v, ok := c.m[key]
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	k, registered := registry[key]
	d, err := k.parseDuration(v)
	if registered && k.Kind == KindDuration {
		if cerr := k.Check(v); cerr != nil {
			return 0, cerr
		}
	}
	if err != nil {
		return 0, &ValueError{Key: key, Value: v, Expected: Key{Kind: KindDuration}.Expected()}
	}
	return d, nil
}

// ParseDuration parses a duration as Duration reads it.
func ParseDuration(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("duration %q is negative", v)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	num, unit := splitUnit(s)
	mult, ok := map[string]time.Duration{
		"ms": time.Millisecond, "milli": time.Millisecond, "millis": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
		"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
		"min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute, "m": time.Minute,
		"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
		"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	}[strings.ToLower(unit)]
	if n, err := strconv.ParseFloat(num, 64); err == nil && ok && n >= 0 {
		return time.Duration(n * float64(mult)), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("duration %q: want milliseconds, or a number and a unit such as \"10 s\", \"5 min\" or \"1m30s\"", v)
}

// Bytes returns the size in bytes under key, def if unset: a bare number is
// bytes; units are k, m, g, t (or kb, mb, gb, tb, kib, ..., kibibytes, ...),
// powers of 1024 as in Flink's MemorySize.
func (c Config) Bytes(key string, def int64) (int64, error) {
	v, ok := c.m[key]
	if !ok || strings.TrimSpace(v) == "" {
		return def, nil
	}
	n, err := ParseBytes(v)
	if k, ok := registry[key]; ok && k.Kind == KindMemory {
		if cerr := k.Check(v); cerr != nil {
			return 0, cerr
		}
	}
	if err != nil {
		return 0, &ValueError{Key: key, Value: v, Expected: Key{Kind: KindMemory}.Expected()}
	}
	return n, nil
}

// ParseBytes parses a size as Bytes reads it.
func ParseBytes(v string) (int64, error) {
	num, unit := splitUnit(strings.TrimSpace(v))
	mult, ok := map[string]int64{
		"": 1, "b": 1, "bytes": 1,
		"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "kibibytes": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "mebibytes": 1 << 20,
		"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "gibibytes": 1 << 30,
		"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40, "tebibytes": 1 << 40,
	}[strings.ToLower(unit)]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || !ok || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want bytes, or a number and a unit such as \"512 mb\" or \"1g\"", v)
	}
	return n * mult, nil
}

func splitUnit(s string) (num, unit string) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	return s[:i], strings.TrimSpace(s[i:])
}
