// Package script reads the event scripts that drive Spate's pure protocol
// packages in their tests (internal/checkpoint, internal/restart,
// internal/jobmaster), one small text format for all:
//
//	# a comment; blank lines are skipped
//	config interval=1s timeout=10s        (a command without a time)
//	at 1200ms ack vertex=0 subtask=1 attempt=1 chk=1
//	at 2s fail vertex=1 subtask=0 attempt=1 error="disk full"
//
// A line is an optional "at <duration>" (Go's or Flink's duration syntax:
// 1200ms, 2s, 1 min is not allowed, the duration is one word), a command
// word, then key=value arguments. A value is one word, or a Go-quoted
// string ("a b\n"). Times must not go backwards.
//
// Each package's test runs the lines through its state machine and prints
// the effects; the printout is compared with a golden file, rewritten with
// the test's -update flag.
package script

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Line is one parsed line of a script.
type Line struct {
	// No is the line's number in the script, from 1.
	No int
	// At is the line's time, since the script's start; HasAt tells
	// whether the line gave one (otherwise At is the previous line's).
	At    time.Duration
	HasAt bool
	Cmd   string
	// Args are the key=value arguments in their order.
	Args []Arg
	used map[string]bool
}

// Arg is one key=value argument.
type Arg struct{ Key, Value string }

// Parse reads a script.
func Parse(text string) ([]*Line, error) {
	var out []*Line
	var now time.Duration
	for i, raw := range strings.Split(text, "\n") {
		no := i + 1
		s := strings.TrimSpace(raw)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		words, err := split(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", no, err)
		}
		l := &Line{No: no, At: now}
		if words[0] == "at" {
			if len(words) < 3 {
				return nil, fmt.Errorf("line %d: want \"at <time> <command> ...\"", no)
			}
			d, err := time.ParseDuration(words[1])
			if err != nil || d < 0 {
				return nil, fmt.Errorf("line %d: time %q: want a duration such as 1200ms or 2s", no, words[1])
			}
			if d < now {
				return nil, fmt.Errorf("line %d: time %v is before the previous line's %v", no, d, now)
			}
			now, l.At, l.HasAt = d, d, true
			words = words[2:]
		}
		if strings.Contains(words[0], "=") {
			return nil, fmt.Errorf("line %d: %q: want a command before the arguments", no, words[0])
		}
		if !isName(words[0]) {
			return nil, fmt.Errorf("line %d: command %q: want letters, digits, '-', '_' or '.'", no, words[0])
		}
		l.Cmd = words[0]
		for _, w := range words[1:] {
			k, v, ok := strings.Cut(w, "=")
			if !ok || !isName(k) {
				return nil, fmt.Errorf("line %d: argument %q: want key=value", no, w)
			}
			if strings.HasPrefix(v, `"`) {
				if v, err = strconv.Unquote(v); err != nil {
					return nil, fmt.Errorf("line %d: argument %s: bad quoted value: %w", no, k, err)
				}
			}
			for _, a := range l.Args {
				if a.Key == k {
					return nil, fmt.Errorf("line %d: argument %s given twice", no, k)
				}
			}
			l.Args = append(l.Args, Arg{k, v})
		}
		out = append(out, l)
	}
	return out, nil
}

// split cuts s into words at spaces outside quotes; a quote starts after
// "=" and ends at the next unescaped quote.
func split(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inQuote, esc := false, false
	prev := rune(0)
	for _, r := range s {
		last := prev
		prev = r
		switch {
		case inQuote:
			cur.WriteRune(r)
			switch {
			case esc:
				esc = false
			case r == '\\':
				esc = true
			case r == '"':
				inQuote = false
			}
		case r == '"' && last == '=':
			inQuote = true
			cur.WriteRune(r)
		case unicode.IsSpace(r):
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words, nil
}

// String renders the line as a script line (its canonical form).
func (l *Line) String() string {
	var b strings.Builder
	if l.HasAt {
		fmt.Fprintf(&b, "at %v ", l.At)
	}
	b.WriteString(l.Cmd)
	for _, a := range l.Args {
		v := a.Value
		if v == "" || strings.IndexFunc(v, func(r rune) bool {
			return unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune("\"\\=#", r)
		}) >= 0 {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %s=%s", a.Key, v)
	}
	return b.String()
}

// Has tells whether the line has argument key.
func (l *Line) Has(key string) bool {
	for _, a := range l.Args {
		if a.Key == key {
			return true
		}
	}
	return false
}

// Str returns argument key, def if absent.
func (l *Line) Str(key, def string) string {
	for _, a := range l.Args {
		if a.Key == key {
			l.mark(key)
			return a.Value
		}
	}
	return def
}

func (l *Line) mark(key string) {
	if l.used == nil {
		l.used = map[string]bool{}
	}
	l.used[key] = true
}

// Int returns argument key as an integer, def if absent.
func (l *Line) Int(key string, def int64) (int64, error) {
	v := l.Str(key, "")
	if !l.Has(key) {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("line %d: %s=%q: want an integer", l.No, key, v)
	}
	return n, nil
}

// Duration returns argument key as a duration, def if absent.
func (l *Line) Duration(key string, def time.Duration) (time.Duration, error) {
	v := l.Str(key, "")
	if !l.Has(key) {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("line %d: %s=%q: want a duration such as 200ms", l.No, key, v)
	}
	return d, nil
}

// Unused returns an error naming the arguments no accessor read: a typo
// in a script must not pass silently.
func (l *Line) Unused() error {
	var bad []string
	for _, a := range l.Args {
		if !l.used[a.Key] {
			bad = append(bad, a.Key)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("line %d: %s: unknown argument(s) %s", l.No, l.Cmd, strings.Join(bad, ", "))
	}
	return nil
}

// isName tells whether s is a command or key: letters, digits, '-', '_'
// and '.'.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
