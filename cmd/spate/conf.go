package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/spate-dev/spate/internal/config"
)

// confFlags are the configuration flags every cluster command takes: a
// YAML file and -D key=value entries, applied over $SPATE_CONF_DIR and
// $SPATE_PROPERTIES in that order.
type confFlags struct {
	file     string
	dynamic  dynamicFlags
	envFiles repeated
}

func (c *confFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "config", "", "configuration file (YAML as Flink's config.yaml, flat or nested keys)")
	fs.Var(&c.dynamic, "D", "configuration entry key=value (repeatable)")
}

// registerEnvFile adds --env-file, for the commands that submit jobs.
func (c *confFlags) registerEnvFile(fs *flag.FlagSet) {
	fs.Var(&c.envFiles, "env-file", "file of NAME=value lines: environment variables for this job's workers only (repeatable; -D "+config.TaskManagerEnvPrefix+"NAME=value sets one)")
}

// load returns the effective configuration; an environment file's
// variables become containerized.taskmanager.env entries, which -D
// entries override. A malformed value of a known key is an error naming
// the key, the value and the expected form, so that a daemon fails at its
// start and a job at its submission; an unknown -D key (a typo, or a
// Flink option Spate lacks) is warned about.
func (c *confFlags) load() (config.Config, error) {
	conf, err := config.FromEnvironment()
	if err != nil {
		return conf, err
	}
	if c.file != "" {
		f, err := os.Open(c.file)
		if err != nil {
			return conf, fmt.Errorf("--config: %w", err)
		}
		defer f.Close()
		if err := conf.ParseYAML(f, c.file); err != nil {
			return conf, err
		}
	}
	for _, path := range c.envFiles {
		f, err := os.Open(path)
		if err != nil {
			return conf, fmt.Errorf("--env-file: %w", err)
		}
		env, err := config.ParseEnvFile(f, path)
		f.Close()
		if err != nil {
			return conf, fmt.Errorf("--env-file: %w", err)
		}
		for k, v := range env {
			conf.Set(config.TaskManagerEnvPrefix+k, v)
		}
	}
	for _, kv := range c.dynamic.repeated {
		if err := conf.SetDynamic(kv); err != nil {
			return conf, fmt.Errorf("-D: %w", err)
		}
		k, _, _ := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if s, unknown := config.Unknown(k); unknown && s != "" {
			slog.Warn(fmt.Sprintf("-D %s: configuration key %q is not one Spate knows (did you mean %s?)", kv, k, s), "key", k, "suggestion", s)
		} else if unknown {
			slog.Warn(fmt.Sprintf("-D %s: configuration key %q is not one Spate knows; it has no effect unless a job reads it", kv, k), "key", k)
		}
	}
	if err := conf.Validate(); err != nil {
		return conf, err
	}
	return conf, nil
}

// dynamicFlags is -D: repeated key=value entries.
type dynamicFlags struct{ repeated }

func (d *dynamicFlags) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want key=value, got %q", v)
	}
	return d.repeated.Set(v)
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// restAddress is the JobManager REST address a client command talks to:
// the flag if given, else rest.address and rest.port from the
// configuration, else localhost:8081 as Flink's.
func restAddress(flagValue string, conf config.Config) string {
	if flagValue != "" {
		return flagValue
	}
	host, ok := conf.Get("rest.address")
	if !ok || host == "" {
		host = "localhost"
	}
	port, ok := conf.Get("rest.port")
	if !ok || port == "" {
		port = "8081"
	}
	return net.JoinHostPort(host, port)
}
