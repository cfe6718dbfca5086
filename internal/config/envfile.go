package config

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// TaskManagerEnvPrefix starts the keys of environment variables a job's
// workers get, as Flink's containerized.taskmanager.env.NAME: the entry
// containerized.taskmanager.env.DB_PASSWORD=s3cret sets DB_PASSWORD in
// that job's workers and in no other job's.
const TaskManagerEnvPrefix = "containerized.taskmanager.env."

// WorkerEnv returns the environment variables c gives a job's workers:
// its entries under TaskManagerEnvPrefix, by variable name. A name that is
// not a valid variable name, or that Spate itself sets, is an error naming
// the entry.
func (c Config) WorkerEnv() (map[string]string, error) {
	env := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(c.m)) {
		name, ok := strings.CutPrefix(k, TaskManagerEnvPrefix)
		if !ok {
			continue
		}
		if err := checkEnvName(name); err != nil {
			return nil, fmt.Errorf("configuration entry %s: %w", k, err)
		}
		env[name] = c.m[k]
	}
	return env, nil
}

// ClusterEntries returns a copy of c's entries without the jobs' worker
// environment (TaskManagerEnvPrefix): the configuration a cluster's
// daemons get, since those variables travel with each job's submission
// and not on any daemon's command line.
func (c Config) ClusterEntries() map[string]string {
	entries := c.Entries()
	for k := range entries {
		if strings.HasPrefix(k, TaskManagerEnvPrefix) {
			delete(entries, k)
		}
	}
	return entries
}

// checkEnvName accepts a portable environment variable name that Spate
// does not reserve.
func checkEnvName(name string) error {
	if name == "" {
		return fmt.Errorf("empty variable name")
	}
	for i, r := range name {
		letter := r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return fmt.Errorf("variable name %q: use letters, digits and _, not starting with a digit", name)
		}
	}
	if strings.HasPrefix(strings.ToUpper(name), "SPATE_") || name == "GOMEMLIMIT" || name == "TMPDIR" {
		return fmt.Errorf("variable name %q is set by Spate for its workers; choose another name", name)
	}
	return nil
}

// ParseEnvFile reads an environment file: one NAME=value per line, as
// docker's --env-file and dotenv files write them. Blank lines and lines
// starting with # are skipped, an "export " prefix is allowed, a value may
// be 'single-quoted' (taken as is) or "double-quoted" (with \n, \t, \" and
// \\ escapes), and an unquoted value ends at " #". name is used in errors.
func ParseEnvFile(r io.Reader, name string) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		text = strings.TrimSpace(strings.TrimPrefix(text, "export "))
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want NAME=value, got %q", name, line, text)
		}
		k = strings.TrimSpace(k)
		if err := checkEnvName(k); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		v, err := envValue(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", name, line, k, err)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return env, nil
}

// envValue unquotes the value part of an environment file line.
func envValue(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch q := v[0]; q {
	case '\'', '"':
		end := closingQuote(v, q)
		if end < 0 {
			return "", fmt.Errorf("value %s has no closing %c (values span one line)", v, q)
		}
		if rest := strings.TrimSpace(v[end+1:]); rest != "" && rest[0] != '#' {
			return "", fmt.Errorf("text %q after the quoted value; quote the whole value", rest)
		}
		if q == '\'' {
			return v[1:end], nil
		}
		return unescape(v[1:end]), nil
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, nil
}

// closingQuote is the index of the quote closing v's opening one, -1 if
// there is none; in double quotes a backslash escapes the next byte.
func closingQuote(v string, q byte) int {
	for i := 1; i < len(v); i++ {
		switch {
		case q == '"' && v[i] == '\\':
			i++
		case v[i] == q:
			return i
		}
	}
	return -1
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// EncodeProperties renders entries as a $SPATE_PROPERTIES value that
// FromEnvironment reads back exactly, whatever the values hold (commas,
// '=', newlines).
func EncodeProperties(entries map[string]string) string {
	b, _ := json.Marshal(entries) // a map of strings always marshals
	return string(b)
}

// decodeProperties reads $SPATE_PROPERTIES: a JSON object as
// EncodeProperties writes, or key=value entries separated by commas, as a
// person writes.
func decodeProperties(c *Config, props string) error {
	if strings.HasPrefix(strings.TrimSpace(props), "{") {
		var m map[string]string
		if err := json.Unmarshal([]byte(props), &m); err != nil {
			return fmt.Errorf("JSON object of string entries: %w", err)
		}
		for k, v := range m {
			c.Set(k, v)
		}
		return nil
	}
	for _, kv := range strings.Split(props, ",") {
		if err := c.SetDynamic(kv); err != nil {
			return err
		}
	}
	return nil
}
