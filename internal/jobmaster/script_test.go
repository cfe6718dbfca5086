package jobmaster

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/restart"
	"github.com/spate-dev/spate/internal/script"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*.txt")

// TestScripts runs every testdata/*.txt through a Master and compares the
// transcript with testdata/*.golden.
func TestScripts(t *testing.T) { runScripts(t, "testdata/*.txt", run) }

// TestRootCauseScripts runs every testdata/rootcause/*.txt through a
// Triage.
func TestRootCauseScripts(t *testing.T) { runScripts(t, "testdata/rootcause/*.txt", runTriage) }

// runScripts runs the scripts matching glob through run against their
// golden files (script.RunGolden, rewritten with -update).
func runScripts(t *testing.T, glob string, run func(string) (string, error)) {
	script.RunGolden(t, glob, *update, run)
}

var base = time.UnixMilli(0).UTC()

// run interprets a job-master script. Its config line takes Flink's
// restart-strategy.* keys as they are, plus vertices= (parallelisms),
// provided=true, checkpointing=true (the default strategy) and random=
// (the jitter's random numbers, in turn).
func run(src string) (string, error) {
	lines, err := script.Parse(src)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	var m *Master
	for _, l := range lines {
		now := base.Add(l.At)
		fmt.Fprintf(&out, "%s\n", l)
		var eff []Effect
		res := ""
		if m == nil && l.Cmd != "config" {
			return "", fmt.Errorf("line %d: the script must start with config", l.No)
		}
		attempt := func() int64 {
			a, err2 := l.Int("attempt", m.Attempt())
			if err2 != nil && err == nil {
				err = err2
			}
			return a
		}
		var r Result
		switch l.Cmd {
		case "config":
			var c config.Config
			cfg := Config{}
			var rnd []float64
			checkpointing := false
			for _, a := range l.Args {
				switch a.Key {
				case "vertices":
					for _, p := range strings.Split(l.Str("vertices", ""), ",") {
						n, err := strconv.Atoi(p)
						if err != nil {
							return "", fmt.Errorf("line %d: vertices: %v", l.No, err)
						}
						cfg.Parallelism = append(cfg.Parallelism, n)
					}
				case "provided":
					cfg.Provided = l.Str("provided", "") == "true"
				case "deployment-timeout":
					d, err := l.Duration("deployment-timeout", 0)
					if err != nil {
						return "", err
					}
					cfg.DeploymentTimeout = d
				case "checkpointing":
					checkpointing = l.Str("checkpointing", "") == "true"
				case "random":
					for _, p := range strings.Split(l.Str("random", ""), ",") {
						f, err := strconv.ParseFloat(p, 64)
						if err != nil {
							return "", fmt.Errorf("line %d: random: %v", l.No, err)
						}
						rnd = append(rnd, f)
					}
				default:
					c.Set(a.Key, l.Str(a.Key, ""))
				}
			}
			i := 0
			next := func() float64 {
				if len(rnd) == 0 {
					return 0.5
				}
				f := rnd[i%len(rnd)]
				i++
				return f
			}
			s, err := restart.FromConfig(c, checkpointing, next)
			if err != nil {
				return "", fmt.Errorf("line %d: %v", l.No, err)
			}
			cfg.Strategy = s
			m = New(cfg)
			fmt.Fprintf(&out, "  strategy %s\n", m.Strategy())
		case "schedule":
			eff = m.Schedule(now)
		case "deployed":
			r, eff = m.Deployed(now, attempt())
			res = r.String()
		case "task":
			v, _ := l.Int("vertex", 0)
			s, _ := l.Int("subtask", 0)
			r, eff = m.TaskState(now, attempt(), int(v), int(s), l.Str("state", ""), l.Str("error", ""), l.Str("location", ""))
			res = r.String()
		case "restored-finished":
			// The deployment restores a checkpoint that recorded the
			// subtask finished.
			v, _ := l.Int("vertex", 0)
			s, _ := l.Int("subtask", 0)
			m.RestoredFinished(int(v), int(s))
		case "finished-all":
			// Every subtask of the attempt reports FINISHED.
			a := attempt()
			for v, p := range m.parallelism {
				for s := range p {
					var e []Effect
					r, e = m.TaskState(now, a, v, s, "FINISHED", "", "")
					eff = append(eff, e...)
				}
			}
			res = r.String()
		case "fail":
			r, eff = m.Fail(now, Failure{Attempt: attempt(), Name: l.Str("name", "JobFailure"), Message: l.Str("message", ""), Location: l.Str("location", "")})
			res = r.String()
		case "tm-lost":
			r, eff = m.TaskManagerLost(now, attempt(), l.Str("tm", ""), l.Str("cause", ""))
			res = r.String()
		case "ready":
			res = m.Ready(now, attempt()).String()
		case "released":
			r, eff = m.Released(now, attempt())
			res = r.String()
		case "tick":
			eff = m.Tick(now)
		case "cancel":
			eff = m.Cancel(now)
		case "checkpoint-completed":
			id, _ := l.Int("chk", 0)
			m.CheckpointCompleted(checkpoint.ID(id))
		case "status":
			fmt.Fprintf(&out, "  status=%s attempt=%d restarts=%d next-event=%s\n", m.Status(), m.Attempt(), m.Restarts(), at(m.NextEvent()))
			for _, x := range m.History() {
				what := fmt.Sprintf("restarted after %v", x.Delay)
				if !x.Restarted {
					what = "not restarted: " + x.Reason
				}
				fmt.Fprintf(&out, "  history: at %v attempt=%d %s %q: %s\n", x.Time.Sub(base), x.Attempt, x.Name, x.Message, what)
			}
		default:
			return "", fmt.Errorf("line %d: unknown command %q", l.No, l.Cmd)
		}
		if err != nil {
			return "", err
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

// runTriage interprets a root-cause script. Its config line takes
// window= and history=; report takes the job's status= and the failure's
// name=, message=, location=, attempt=, secondary=true and death=true.
func runTriage(src string) (string, error) {
	lines, err := script.Parse(src)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	var tr *Triage
	for _, l := range lines {
		now := base.Add(l.At)
		fmt.Fprintf(&out, "%s\n", l)
		if tr == nil && l.Cmd != "config" {
			return "", fmt.Errorf("line %d: the script must start with config", l.No)
		}
		report := func() (Report, error) {
			a, err := l.Int("attempt", 1)
			return Report{Name: l.Str("name", "JobFailure"), Message: l.Str("message", ""), Location: l.Str("location", ""),
				Secondary: l.Str("secondary", "") == "true", Death: l.Str("death", "") == "true", Attempt: a}, err
		}
		switch l.Cmd {
		case "config":
			w, err := l.Duration("window", 2*time.Second)
			if err != nil {
				return "", err
			}
			n, err := l.Int("history", 16)
			if err != nil {
				return "", err
			}
			tr = NewTriage(w, int(n))
		case "report":
			r, err := report()
			if err != nil {
				return "", err
			}
			v, idx := tr.Report(now, l.Str("status", Running), r)
			fmt.Fprintf(&out, "  = %s index=%d", v, idx)
			if d, ok := tr.Deadline(); ok && v == AwaitCause {
				fmt.Fprintf(&out, " until=%v", d.Sub(base))
			}
			fmt.Fprintln(&out)
		case "record":
			r, err := report()
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&out, "  = index=%d\n", tr.Record(now, r))
		case "tick":
			if r, idx, ok := tr.Tick(now); ok {
				fmt.Fprintf(&out, "  -> fail-now index=%d %s\n", idx, r)
			}
		case "set-root":
			idx, err := l.Int("index", 0)
			if err != nil {
				return "", err
			}
			tr.SetRoot(int(idx), l.Str("secondary", "") == "true")
		case "clear":
			tr.Clear()
		case "history":
			root := "none"
			if e, ok := tr.Root(); ok {
				root = fmt.Sprintf("%s %q", e.Name, e.Message)
			}
			fmt.Fprintf(&out, "  root=%s truncated=%v entries=%d\n", root, tr.Truncated(), len(tr.Entries()))
			for i, e := range tr.Entries() {
				fmt.Fprintf(&out, "  %d: at %v %s %q location=%q\n", i, e.Time.Sub(base), e.Name, e.Message, e.Location)
			}
		default:
			return "", fmt.Errorf("line %d: unknown command %q", l.No, l.Cmd)
		}
		if err := l.Unused(); err != nil {
			return "", err
		}
	}
	return out.String(), nil
}
