package metrics

import (
	"slices"
	"sync"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// maxJobs bounds the jobs a Store keeps figures of: the oldest are
// forgotten first.
const maxJobs = 1000

// Reading is a subtask's latest figures, with when they were sampled and
// where the subtask runs.
type Reading struct {
	*rpcpb.SubtaskMetrics
	SampledUnixMs int64
	TaskManager   string
	Worker        string
}

// Store keeps the latest figures each TaskManager reported, and each job's
// subtasks' latest figures, which outlive the workers (a finished job keeps
// its last counts). It is safe for concurrent use.
type Store struct {
	mu   sync.Mutex
	tms  map[string]*rpcpb.TaskManagerMetrics
	jobs map[string]map[[2]int32]Reading
	// order lists the jobs' ids, oldest first.
	order []string
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{tms: map[string]*rpcpb.TaskManagerMetrics{}, jobs: map[string]map[[2]int32]Reading{}}
}

// Put records a TaskManager's report.
func (s *Store) Put(m *rpcpb.TaskManagerMetrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tms[m.TaskmanagerId] = m
	for _, w := range m.Workers {
		subs, ok := s.jobs[w.JobId]
		if !ok {
			subs = map[[2]int32]Reading{}
			s.jobs[w.JobId] = subs
			s.order = append(s.order, w.JobId)
			if len(s.order) > maxJobs {
				delete(s.jobs, s.order[0])
				s.order = s.order[1:]
			}
		}
		for _, st := range w.Subtasks {
			subs[[2]int32{st.Vertex, st.Subtask}] = Reading{SubtaskMetrics: st, SampledUnixMs: w.SampledUnixMs, TaskManager: m.TaskmanagerId, Worker: w.WorkerId}
		}
	}
}

// RemoveTaskManager forgets a TaskManager's report (it is gone); its
// jobs' subtask figures stay.
func (s *Store) RemoveTaskManager(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tms, id)
}

// TaskManager returns a TaskManager's latest report.
func (s *Store) TaskManager(id string) (*rpcpb.TaskManagerMetrics, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.tms[id]
	return m, ok
}

// Subtasks returns the latest figures of vertex (its index in the
// JobGraph) of a job, ordered by subtask.
func (s *Store) Subtasks(job string, vertex int) []Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Reading
	for k, r := range s.jobs[job] {
		if k[0] == int32(vertex) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Reading) int { return int(a.Subtask - b.Subtask) })
	return out
}

// ForgetJob drops a job's figures.
func (s *Store) ForgetJob(job string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[job]; !ok {
		return
	}
	delete(s.jobs, job)
	s.order = slices.DeleteFunc(s.order, func(id string) bool { return id == job })
}
