package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestInvariants drives schedulers with random events (submissions,
// restarts, registrations, losses, frees, provider exits, ticks), carrying
// out their effects as a JobManager would, and checks after every event
// that slots are never over-allocated, that each allocation gives a job
// exactly the slots it asked for, one worker per TaskManager, that a job
// is never both queued and allocated, that no job waits for slots that
// are free, and that the provider is never asked beyond the ceiling.
func TestInvariants(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed^0x5eed))
			checkRandomRun(t, r)
		})
	}
}

func checkRandomRun(t *testing.T, r *rand.Rand) {
	cfg := Config{
		SlotRequestTimeout:  time.Duration(1+r.IntN(20)) * time.Second,
		Provided:            r.IntN(2) == 0,
		SlotsPerTaskManager: 1 + r.IntN(4),
		SlotsMax:            4 + r.IntN(16),
		MinTaskManagers:     r.IntN(3),
		IdleTimeout:         time.Duration(1+r.IntN(30)) * time.Second,
	}
	s := New(cfg)
	now := base
	asked := map[JobID]int{} // what each queued or allocated job asked for
	nextTM, nextJob := 0, 0
	var log []string
	apply := func(what string, eff []Effect) {
		log = append(log, what)
		for _, e := range eff {
			log = append(log, "  "+e.String())
			switch e := e.(type) {
			case Allocate:
				n, seen := 0, map[TaskManagerID]bool{}
				for _, sl := range e.Slots {
					if seen[sl.TaskManager] || sl.Count <= 0 {
						t.Fatalf("allocation %v: a TaskManager twice or no slot\n%s", e, join(log))
					}
					seen[sl.TaskManager] = true
					n += sl.Count
				}
				if n != asked[e.Job] {
					t.Fatalf("allocation %v gives %d slots, the job asked for %d\n%s", e, n, asked[e.Job], join(log))
				}
			case StartTaskManager:
				if !cfg.Provided {
					t.Fatalf("a TaskManager asked for without a provider\n%s", join(log))
				}
			case FailJob:
				if s.Queued(e.Job) {
					t.Fatalf("job %s failed but still queued\n%s", e.Job, join(log))
				}
				delete(asked, e.Job)
			}
		}
		check(t, s, asked, log)
	}
	for range 300 {
		now = now.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
		switch k := r.IntN(10); {
		case k < 2:
			nextJob++
			j := JobID(fmt.Sprintf("j%d", nextJob))
			n := 1 + r.IntN(s.Ceiling())
			asked[j] = n
			apply("submit "+string(j), s.Submit(now, j, n))
		case k < 3 && len(s.alloc) > 0:
			// A restart: the job's slots are freed, then it waits again.
			j := anyKey(r, s.alloc)
			eff := s.FreeJob(now, j)
			apply("free-job "+string(j), eff)
			if _, failed := asked[j]; failed {
				apply("requeue "+string(j), s.Requeue(now, j, asked[j]))
			}
		case k < 4 && len(s.alloc) > 0:
			// The job ends: its workers go one by one.
			j := anyKey(r, s.alloc)
			for tm := range s.alloc[j] {
				apply(fmt.Sprintf("free %s %s", j, tm), s.Free(now, j, tm))
			}
			delete(asked, j)
		case k < 5 && len(s.queue) > 0:
			j := s.queue[r.IntN(len(s.queue))].job
			delete(asked, j)
			apply("dequeue "+string(j), s.Dequeue(now, j))
		case k < 6:
			// On a provider, the TaskManagers asked for register; without
			// one, an operator's.
			res := ""
			if ps := s.Pending(); len(ps) > 0 {
				res = ps[r.IntN(len(ps))]
			} else if cfg.Provided {
				continue
			}
			nextTM++
			id := TaskManagerID(fmt.Sprintf("tm-%d", nextTM))
			slots := cfg.SlotsPerTaskManager
			if !cfg.Provided {
				slots = 1 + r.IntN(4)
			}
			apply("registered "+string(id), s.Registered(now, id, res, slots))
		case k < 7 && len(s.order) > 0:
			id := s.order[r.IntN(len(s.order))]
			res := s.tms[id].resource
			apply("lost "+string(id), s.Lost(now, id))
			if res != "" {
				apply("resource-ended "+res, s.ResourceEnded(now, res, "killed"))
			}
		case k < 8 && len(s.pending) > 0:
			res := s.Pending()[r.IntN(len(s.pending))]
			apply("resource-ended "+res, s.ResourceEnded(now, res, "could not start"))
		default:
			apply("tick", s.Tick(now))
		}
	}
}

// check verifies the scheduler's state against the slots the jobs asked
// for.
func check(t *testing.T, s *Scheduler, asked map[JobID]int, log []string) {
	t.Helper()
	used := map[TaskManagerID]int{}
	for j, a := range s.alloc {
		if s.Queued(j) {
			t.Fatalf("job %s is queued and holds slots\n%s", j, join(log))
		}
		n := 0
		for id, c := range a {
			if _, ok := s.tms[id]; !ok {
				t.Fatalf("job %s holds slots on unknown %s\n%s", j, id, join(log))
			}
			used[id] += c
			n += c
		}
		if n > asked[j] && asked[j] > 0 {
			t.Fatalf("job %s holds %d slots, asked for %d\n%s", j, n, asked[j], join(log))
		}
	}
	for _, q := range s.queue {
		if q.slots <= s.FreeSlots() {
			t.Fatalf("job %s waits for %d slots with %d free\n%s", q.job, q.slots, s.FreeSlots(), join(log))
		}
	}
	total := 0
	for id, tm := range s.tms {
		if tm.used != used[id] || tm.used > tm.slots || tm.used < 0 {
			t.Fatalf("%s: used %d of %d, allocations say %d\n%s", id, tm.used, tm.slots, used[id], join(log))
		}
		total += tm.slots
	}
	if s.cfg.Provided {
		for _, n := range s.pending {
			total += n
		}
		if total > s.cfg.SlotsMax && total > s.cfg.MinTaskManagers*s.cfg.SlotsPerTaskManager {
			t.Fatalf("%d slots registered and asked for, above the ceiling %d\n%s", total, s.cfg.SlotsMax, join(log))
		}
	}
}

func anyKey[K comparable, V any](r *rand.Rand, m map[K]V) K {
	i := r.IntN(len(m))
	for k := range m {
		if i == 0 {
			return k
		}
		i--
	}
	panic("empty map")
}

func join(lines []string) string {
	out := ""
	start := max(0, len(lines)-40)
	for _, l := range lines[start:] {
		out += l + "\n"
	}
	return out
}
