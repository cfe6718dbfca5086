package scheduler

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/script"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*.txt")

// TestScripts runs every testdata/*.txt through a Scheduler and compares
// the transcript with testdata/*.golden.
func TestScripts(t *testing.T) { script.RunGolden(t, "testdata/*.txt", *update, run) }

var base = time.UnixMilli(0).UTC()

// run interprets a scheduler script. Its config line takes
// slot-request-timeout=, provided=true, slots-per-tm=, slots-max=,
// min-tms= and idle-timeout=.
func run(src string) (string, error) {
	lines, err := script.Parse(src)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	var s *Scheduler
	for _, l := range lines {
		now := base.Add(l.At)
		fmt.Fprintf(&out, "%s\n", l)
		if s == nil && l.Cmd != "config" {
			return "", fmt.Errorf("line %d: the script must start with config", l.No)
		}
		var eff []Effect
		var lerr error
		num := func(key string) int {
			n, err := l.Int(key, 0)
			if err != nil && lerr == nil {
				lerr = err
			}
			return int(n)
		}
		dur := func(key string, def time.Duration) time.Duration {
			d, err := l.Duration(key, def)
			if err != nil && lerr == nil {
				lerr = err
			}
			return d
		}
		job := func() JobID { return JobID(l.Str("job", "")) }
		tm := func() TaskManagerID { return TaskManagerID(l.Str("tm", "")) }
		switch l.Cmd {
		case "config":
			s = New(Config{
				SlotRequestTimeout:  dur("slot-request-timeout", 5*time.Minute),
				Provided:            l.Str("provided", "false") == "true",
				SlotsPerTaskManager: num("slots-per-tm"),
				SlotsMax:            num("slots-max"),
				MinTaskManagers:     num("min-tms"),
				IdleTimeout:         dur("idle-timeout", 30*time.Second),
			})
			if s.cfg.SlotsMax == 0 {
				s.cfg.SlotsMax = 32
			}
			fmt.Fprintf(&out, "  ceiling=%d\n", s.Ceiling())
		case "start":
			eff = s.Start(now)
		case "submit":
			eff = s.Submit(now, job(), num("slots"))
		case "requeue":
			eff = s.Requeue(now, job(), num("slots"))
		case "dequeue":
			eff = s.Dequeue(now, job())
		case "registered":
			eff = s.Registered(now, tm(), l.Str("resource", ""), num("slots"))
		case "lost":
			eff = s.Lost(now, tm())
		case "free":
			eff = s.Free(now, job(), tm())
		case "free-job":
			eff = s.FreeJob(now, job())
		case "resource-ended":
			eff = s.ResourceEnded(now, l.Str("resource", ""), l.Str("reason", ""))
		case "tick":
			eff = s.Tick(now)
		case "status":
			fmt.Fprintf(&out, "  %s\n", status(s))
		default:
			return "", fmt.Errorf("line %d: unknown command %q", l.No, l.Cmd)
		}
		if lerr != nil {
			return "", lerr
		}
		if err := l.Unused(); err != nil {
			return "", err
		}
		for _, e := range eff {
			fmt.Fprintf(&out, "  -> %s\n", e)
		}
	}
	return out.String(), nil
}

// status prints the scheduler's state: the TaskManagers' used and total
// slots, the queue, the jobs' slots, the pending TaskManagers and the next
// event.
func status(s *Scheduler) string {
	var tms, queue, jobs []string
	for _, id := range s.order {
		tm := s.tms[id]
		stopping := ""
		if tm.stopping {
			stopping = ",stopping"
		}
		tms = append(tms, fmt.Sprintf("%s(%s%s):%d/%d", id, tm.resource, stopping, tm.used, tm.slots))
	}
	for _, r := range s.queue {
		what := "first"
		if r.restart {
			what = "restart"
		}
		queue = append(queue, fmt.Sprintf("%s:%d(%s since %v)", r.job, r.slots, what, r.since.Sub(base)))
	}
	for _, j := range slices.Sorted(maps.Keys(s.alloc)) {
		var parts []string
		for _, id := range slices.Sorted(maps.Keys(s.alloc[j])) {
			parts = append(parts, fmt.Sprintf("%s:%d", id, s.alloc[j][id]))
		}
		jobs = append(jobs, fmt.Sprintf("%s=%s", j, strings.Join(parts, ",")))
	}
	next := "none"
	if t := s.NextEvent(); !t.IsZero() {
		next = t.Sub(base).String()
	}
	return fmt.Sprintf("free=%d total=%d tms=[%s] queue=[%s] jobs=[%s] pending=[%s] next-event=%s",
		s.FreeSlots(), s.TotalSlots(), strings.Join(tms, " "), strings.Join(queue, " "), strings.Join(jobs, " "), strings.Join(s.Pending(), " "), next)
}

func TestFitting(t *testing.T) {
	tests := []struct {
		name  string
		free  int
		needs []int
		want  []bool
	}{
		{name: "none waiting", free: 2, needs: nil, want: []bool{}},
		{name: "big first does not block", free: 2, needs: []int{3, 1, 1}, want: []bool{false, true, true}},
		{name: "in order while slots last", free: 3, needs: []int{2, 2, 1}, want: []bool{true, false, true}},
		{name: "no free slot", free: 0, needs: []int{1}, want: []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fitting(tt.free, tt.needs); !slices.Equal(got, tt.want) {
				t.Errorf("fitting(%d, %v) = %v, want %v", tt.free, tt.needs, got, tt.want)
			}
		})
	}
}

func TestTaskManagersToStart(t *testing.T) {
	tests := []struct {
		name                                      string
		demand, supply, allocated, perTM, ceiling int
		want                                      int
	}{
		{name: "enough", demand: 2, supply: 2, allocated: 2, perTM: 2, ceiling: 32, want: 0},
		{name: "scale out", demand: 5, supply: 0, allocated: 0, perTM: 2, ceiling: 32, want: 3},
		{name: "asked for already", demand: 4, supply: 2, allocated: 2, perTM: 2, ceiling: 32, want: 1},
		{name: "ceiling", demand: 40, supply: 0, allocated: 0, perTM: 2, ceiling: 32, want: 16},
		{name: "at the ceiling", demand: 4, supply: 0, allocated: 32, perTM: 2, ceiling: 32, want: 0},
		{name: "partial TaskManager over the ceiling", demand: 6, supply: 0, allocated: 0, perTM: 4, ceiling: 6, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := taskManagersToStart(tt.demand, tt.supply, tt.allocated, tt.perTM, tt.ceiling); got != tt.want {
				t.Errorf("taskManagersToStart = %d, want %d", got, tt.want)
			}
		})
	}
}
