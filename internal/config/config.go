// Package config holds Spate's configuration: string entries under keys
// named as Flink names them where the concept is the same
// (parallelism.default, pipeline.max-parallelism, ...), read from a flat YAML
// file, the environment and -D style overrides.
package config

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
)

// ConfDirEnv names the directory holding config.yaml.
const ConfDirEnv = "SPATE_CONF_DIR"

// PropertiesEnv holds comma-separated key=value overrides.
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

// Int returns the integer value of key; ok is false if it is unset or not a
// number.
func (c Config) Int(key string) (int, bool) {
	v, ok := c.m[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return n, err == nil
}

// Bool returns the boolean value of key, false if unset or malformed.
func (c Config) Bool(key string) bool {
	v, ok := c.m[key]
	if !ok {
		return false
	}
	b, _ := strconv.ParseBool(strings.TrimSpace(v))
	return b
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
// then applies $SPATE_PROPERTIES.
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
		for _, kv := range strings.Split(props, ",") {
			if err := c.SetDynamic(kv); err != nil {
				return c, fmt.Errorf("%s: %w", PropertiesEnv, err)
			}
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

// ParseYAML reads flat "key: value" lines (Flink's configuration file
// format); comments start with #. name is used in errors.
func (c *Config) ParseYAML(f *os.File, name string) error {
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, v, ok := strings.Cut(text, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("%s:%d: want \"key: value\", got %q", name, line, text)
		}
		v = strings.TrimSpace(v)
		v = strings.Trim(v, `"'`)
		c.Set(strings.TrimSpace(k), v)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}
