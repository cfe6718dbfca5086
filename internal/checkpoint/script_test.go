package checkpoint

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/script"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*.txt")

// TestScripts runs every testdata/*.txt through a coordinator and compares
// what it does with testdata/*.golden.
func TestScripts(t *testing.T) { script.RunGolden(t, "testdata/*.txt", *update, run) }

// base is the script's time 0.
var base = time.UnixMilli(0).UTC()

// run interprets a coordinator script: setup lines (config, vertex), then
// events; it returns the transcript of events and their effects.
func run(src string) (string, error) {
	lines, err := script.Parse(src)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	cfg := Config{Timeout: 10 * time.Minute, MaxConcurrent: 1, Retained: 1}
	var vertices []Vertex
	var c *Coordinator
	for _, l := range lines {
		now := base.Add(l.At)
		fmt.Fprintf(&out, "%s\n", l)
		var eff []Effect
		res := ""
		if c == nil && l.Cmd != "config" && l.Cmd != "vertex" {
			c = New(cfg, vertices)
		}
		switch l.Cmd {
		case "config":
			if cfg.Interval, err = l.Duration("interval", cfg.Interval); err != nil {
				return "", err
			}
			if cfg.Timeout, err = l.Duration("timeout", cfg.Timeout); err != nil {
				return "", err
			}
			if cfg.MinPause, err = l.Duration("min-pause", cfg.MinPause); err != nil {
				return "", err
			}
			n, err := l.Int("max-concurrent", int64(cfg.MaxConcurrent))
			if err != nil {
				return "", err
			}
			cfg.MaxConcurrent = int(n)
			if n, err = l.Int("tolerable", int64(cfg.TolerableFailures)); err != nil {
				return "", err
			}
			cfg.TolerableFailures = int(n)
			if n, err = l.Int("retained", int64(cfg.Retained)); err != nil {
				return "", err
			}
			cfg.Retained = int(n)
			if l.Str("mode", "EXACTLY_ONCE") == "AT_LEAST_ONCE" {
				cfg.Mode = AtLeastOnce
			}
		case "vertex":
			n, err := l.Int("parallelism", 1)
			if err != nil {
				return "", err
			}
			v := Vertex{Parallelism: int(n)}
			if in := l.Str("inputs", ""); in != "" {
				for _, w := range strings.Split(in, ",") {
					fwd := strings.HasSuffix(w, "f")
					from, err := strconv.Atoi(strings.TrimSuffix(w, "f"))
					if err != nil {
						return "", fmt.Errorf("line %d: inputs %q: want vertex numbers, f for forward (0f,1)", l.No, in)
					}
					v.Inputs = append(v.Inputs, Input{From: from, Forward: fwd})
				}
			}
			vertices = append(vertices, v)
		case "deployed":
			a, err := l.Int("attempt", 1)
			if err != nil {
				return "", err
			}
			fin, err := subtasks(l, "finished", nil)
			if err != nil {
				return "", err
			}
			var states []SubtaskState
			for _, st := range fin {
				states = append(states, SubtaskState{Vertex: st.Vertex, Subtask: st.Index, Finished: true, Attempt: a - 1,
					States: []Handle{{Kind: "sink", URL: fmt.Sprintf("file:///chk/final-%d-%d", st.Vertex, st.Index), Size: 1}}})
			}
			eff = c.Deployed(now, a, states)
		case "restored":
			id, err := l.Int("chk", 0)
			if err != nil {
				return "", err
			}
			c.Restored(now, ID(id), l.Str("path", ""))
		case "running", "finished", "failed", "canceled":
			a, err := l.Int("attempt", c.Attempt())
			if err != nil {
				return "", err
			}
			sts, err := subtasks(l, "subtasks", vertices)
			if err != nil {
				return "", err
			}
			var rs []string
			for _, st := range sts {
				r, e := c.TaskState(now, a, st, strings.ToUpper(l.Cmd))
				rs = append(rs, r.String())
				eff = append(eff, e...)
			}
			res = strings.Join(rs, ",")
		case "tick":
			eff = c.Tick(now)
		case "savepoint":
			kind := Savepoint
			if l.Str("stop", "false") == "true" {
				kind = StopSavepoint
			}
			id, e, err := c.TriggerSavepoint(now, kind)
			if err != nil {
				res = "refused: " + err.Error()
			} else {
				res = fmt.Sprintf("chk=%d", id)
			}
			eff = e
		case "ack", "final":
			a, err := ack(l)
			if err != nil {
				return "", err
			}
			if l.Cmd == "final" {
				// A finished subtask's final state (checkpoint id 0).
				after, err := l.Int("after", 0)
				if err != nil {
					return "", err
				}
				a.ID, a.After = FinalID, ID(after)
			}
			var r AckResult
			r, eff = c.Acknowledge(now, a)
			res = r.String()
		case "decline":
			a, err := ack(l)
			if err != nil {
				return "", err
			}
			reason, ok := ParseReason(l.Str("reason", "declined"))
			if !ok {
				return "", fmt.Errorf("line %d: unknown reason", l.No)
			}
			var r AckResult
			r, eff = c.Decline(now, Decline{Subtask: a.Subtask, Attempt: a.Attempt, ID: a.ID, Reason: reason, Message: l.Str("message", "")})
			res = r.String()
		case "metadata-written":
			id, err := l.Int("chk", 0)
			if err != nil {
				return "", err
			}
			a, err := l.Int("attempt", c.Attempt())
			if err != nil {
				return "", err
			}
			var werr error
			if e := l.Str("error", ""); e != "" {
				werr = errors.New(e)
			}
			var r AckResult
			r, eff = c.MetadataWritten(now, ID(id), a, l.Str("path", fmt.Sprintf("file:///chk/chk-%d/_metadata", id)), werr)
			res = r.String()
		case "commit-confirmed":
			id, err := l.Int("chk", 0)
			if err != nil {
				return "", err
			}
			a, err := l.Int("attempt", c.Attempt())
			if err != nil {
				return "", err
			}
			sts, err := subtasks(l, "subtasks", vertices)
			if err != nil {
				return "", err
			}
			var r AckResult
			r, eff = c.CommitConfirmed(now, a, ID(id), sts)
			res = r.String()
		case "suspend":
			eff = c.Suspend(now, l.Str("why", "failover"))
		case "stats":
			s := c.Stats()
			fmt.Fprintf(&out, "  counts: total=%d in_progress=%d completed=%d failed=%d restored=%d\n",
				s.Counts.Total, s.Counts.InProgress, s.Counts.Completed, s.Counts.Failed, s.Counts.Restored)
			if l := s.Latest.Completed; l != nil {
				fmt.Fprintf(&out, "  latest completed: chk=%d size=%d duration=%v path=%s\n", l.ID, l.StateSize, l.EndTime.Sub(l.TriggerTime), l.Path)
			}
			if l := s.Latest.Savepoint; l != nil {
				fmt.Fprintf(&out, "  latest savepoint: chk=%d kind=%s path=%s\n", l.ID, l.Kind, l.Path)
			}
			if l := s.Latest.Failed; l != nil {
				fmt.Fprintf(&out, "  latest failed: chk=%d message=%q\n", l.ID, l.FailureMessage)
			}
			if l := s.Latest.Restored; l != nil {
				fmt.Fprintf(&out, "  latest restored: chk=%d path=%s\n", l.ID, l.Path)
			}
			for _, h := range s.History {
				fmt.Fprintf(&out, "  history: chk=%d %s acked=%d/%d discarded=%v\n", h.ID, h.Status, h.NumAcknowledged, h.NumSubtasks, h.Discarded)
			}
			var ids []string
			for _, d := range c.CompletedCheckpoints() {
				ids = append(ids, strconv.FormatInt(int64(d.ID), 10))
			}
			fmt.Fprintf(&out, "  retained: [%s] next-event=%s\n", strings.Join(ids, " "), at(c.NextEvent()))
		default:
			return "", fmt.Errorf("line %d: unknown command %q", l.No, l.Cmd)
		}
		if err := l.Unused(); err != nil {
			return "", err
		}
		if res != "" {
			fmt.Fprintf(&out, "  = %s\n", res)
		}
		for _, e := range eff {
			fmt.Fprintf(&out, "  -> %s\n", e)
		}
	}
	return out.String(), nil
}

func at(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.Sub(base).String()
}

func ack(l *script.Line) (Ack, error) {
	var a Ack
	id, err := l.Int("chk", 0)
	if err != nil {
		return a, err
	}
	a.ID = ID(id)
	if a.Attempt, err = l.Int("attempt", 1); err != nil {
		return a, err
	}
	sts, err := subtasks(l, "subtask", nil)
	if err != nil || len(sts) != 1 {
		return a, fmt.Errorf("line %d: want subtask=V/S", l.No)
	}
	a.Subtask = sts[0]
	size, err := l.Int("size", 0)
	if err != nil {
		return a, err
	}
	if size > 0 {
		a.States = []Handle{{Kind: "keyed", URL: fmt.Sprintf("file:///chk/chk-%d/%d-%d", id, a.Vertex, a.Index), Size: size}}
	}
	if a.Sync, err = l.Duration("sync", 0); err != nil {
		return a, err
	}
	if a.Async, err = l.Duration("async", 0); err != nil {
		return a, err
	}
	return a, nil
}

// subtasks reads a list of V/S subtasks; "all" is every subtask of vertices.
func subtasks(l *script.Line, key string, vertices []Vertex) ([]Subtask, error) {
	v := l.Str(key, "")
	if v == "" {
		return nil, nil
	}
	var out []Subtask
	if v == "all" {
		for vi, vx := range vertices {
			for s := range vx.Parallelism {
				out = append(out, Subtask{vi, s})
			}
		}
		return out, nil
	}
	for _, w := range strings.Split(v, ",") {
		a, b, ok := strings.Cut(w, "/")
		vi, err1 := strconv.Atoi(a)
		si, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("line %d: %s=%q: want V/S[,V/S...]", l.No, key, v)
		}
		out = append(out, Subtask{vi, si})
	}
	return out, nil
}
