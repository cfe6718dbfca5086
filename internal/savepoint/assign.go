package savepoint

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/snapshot"
)

// Assign decides what each subtask of job g restores from snap, matching
// operators by uid (g.OperatorUIDs), and returns it as the restore point
// of g's first deployment: per subtask, the handles of its operators'
// parts (kind snapshot.KindOperator or snapshot.ChainKind, Operator the
// StreamNode of g that restores it). A subtask is restored finished when
// every operator of its chain had finished. State of an operator g does
// not have is an error naming the uids, unless allowNonRestored.
func Assign(g *jobgraph.JobGraph, snap *Snapshot, allowNonRestored bool) (checkpoint.Metadata, error) {
	m := checkpoint.Metadata{ID: snap.Checkpoint, TimestampMs: snap.TimestampMs}
	byUID := map[string]*OperatorState{}
	for i := range snap.Operators {
		byUID[snap.Operators[i].UID] = &snap.Operators[i]
	}
	uids := g.OperatorUIDs()
	used := map[string]bool{}
	for vi, v := range g.Vertices {
		states := make([][]checkpoint.Handle, v.Parallelism)
		finished := make([]bool, v.Parallelism)
		for s := range finished {
			finished[s] = true
		}
		for _, op := range v.Operators {
			uid := uids[op.ID]
			st, ok := byUID[uid]
			if !ok {
				// A new operator starts empty; its chain runs again.
				clear(finished)
				continue
			}
			used[uid] = true
			parts, shared, err := Redistribute(*st, v.Parallelism, v.MaxParallelism)
			if err != nil {
				return m, fmt.Errorf("restore operator %q (uid %q) from %s: %w", op.Name, uid, snap.Path, err)
			}
			for s := range v.Parallelism {
				done := len(parts[s]) > 0
				if shared {
					// A new subtask has finished when every old one had.
					done = allFinished(*st)
				}
				for _, p := range parts[s] {
					done = done && p.Finished
					if p.HasState {
						states[s] = append(states[s], handleOf(p.Handle, int32(op.ID), shared))
					}
				}
				finished[s] = finished[s] && done
			}
		}
		for s := range v.Parallelism {
			if len(states[s]) > 0 || finished[s] {
				m.Subtasks = append(m.Subtasks, checkpoint.SubtaskState{Vertex: vi, Subtask: s, Finished: finished[s], States: states[s]})
			}
		}
	}
	var unclaimed []string
	for _, op := range snap.Operators {
		if !used[op.UID] && slices.ContainsFunc(op.Parts, func(p Part) bool { return p.HasState }) {
			unclaimed = append(unclaimed, fmt.Sprintf("%q", op.UID))
		}
	}
	if len(unclaimed) > 0 && !allowNonRestored {
		return m, fmt.Errorf("%s holds state of operators this job does not have: uid %s; the job's operators are %s: give the operator its uid back (Stream.UID), or skip that state with --allow-non-restored-state (%s=true)",
			snap.Path, strings.Join(unclaimed, ", "), quoted(uids), KeyAllowNonRestored)
	}
	return m, nil
}

func quoted(uids map[int]string) string {
	var out []string
	for _, u := range uids {
		out = append(out, fmt.Sprintf("%q", u))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// handleOf is the restore handle of a part of operator node; shared, one
// of the parts every new subtask of a rescaled operator restores its
// share of.
func handleOf(h snapshot.Handle, node int32, shared bool) checkpoint.Handle {
	kind := snapshot.KindOperator
	if h.From >= 0 {
		kind = snapshot.ChainKind(h.From)
	}
	if shared {
		kind = snapshot.SharedKind(kind)
	}
	return checkpoint.Handle{
		Operator: int(node), OperatorUID: h.UID, Kind: kind, URL: h.URL, Inline: h.Inline, Size: h.Size, SHA256: h.SHA256,
		KeyGroupStart: int(h.KeyGroups[0]), KeyGroupEnd: int(h.KeyGroups[1]),
	}
}

// Redistribute decides which parts of op's state each of parallelism
// subtasks restores: parts[i] are subtask i's. It is the one place that
// does. At op's own parallelism subtask i gets op's part i. At another
// (shared), every subtask gets every part, in the old subtasks' order,
// and restores its share of them as a checkpoint's vertex restored at
// another parallelism does (checkpoint.Assign,
// snapshot.TaskState.RestoreShared): the keyed state of the key groups it
// owns, its part of each operator state (split evenly, or unioned), so
// source splits are dealt out and a sink's pending committables each go
// to one new subtask, which commits them.
func Redistribute(op OperatorState, parallelism, maxParallelism int) (parts [][]Part, shared bool, err error) {
	if op.MaxParallelism > 0 && maxParallelism > 0 && op.MaxParallelism != maxParallelism {
		return nil, false, fmt.Errorf("the state has max parallelism %d (its key groups), the job %d: keep pipeline.max-parallelism as it was", op.MaxParallelism, maxParallelism)
	}
	shared = op.Parallelism != parallelism
	if shared && maxParallelism > 0 && parallelism > maxParallelism {
		return nil, false, fmt.Errorf("the job runs it at parallelism %d, above pipeline.max-parallelism=%d (its key groups, which cannot be spread over more subtasks than there are): lower its parallelism to at most %d; pipeline.max-parallelism cannot change across a restore of keyed state", parallelism, maxParallelism, maxParallelism)
	}
	parts = make([][]Part, parallelism)
	for _, p := range op.Parts {
		if p.Subtask < 0 || p.Subtask >= max(op.Parallelism, 1) {
			return nil, false, fmt.Errorf("a part of subtask %d, beyond the state's parallelism %d", p.Subtask, op.Parallelism)
		}
		if !shared {
			parts[p.Subtask] = append(parts[p.Subtask], p)
		}
	}
	if shared {
		all := slices.Clone(op.Parts)
		slices.SortStableFunc(all, func(a, b Part) int { return a.Subtask - b.Subtask })
		for s := range parts {
			parts[s] = all
		}
	}
	return parts, shared, nil
}

// allFinished tells whether every subtask of op had finished.
func allFinished(op OperatorState) bool {
	done := make([]bool, op.Parallelism)
	for _, p := range op.Parts {
		if p.Subtask >= 0 && p.Subtask < len(done) {
			done[p.Subtask] = p.Finished
		}
	}
	return op.Parallelism > 0 && !slices.Contains(done, false)
}

// Operators names the operators of g for a checkpoint's metadata: by
// vertex, each StreamNode with its uid (g.OperatorUIDs).
func Operators(g *jobgraph.JobGraph) []checkpoint.OperatorRef {
	uids := g.OperatorUIDs()
	var out []checkpoint.OperatorRef
	for vi, v := range g.Vertices {
		for _, op := range v.Operators {
			out = append(out, checkpoint.OperatorRef{Vertex: vi, Node: op.ID, UID: uids[op.ID], Name: op.Name, MaxParallelism: op.MaxParallelism})
		}
	}
	return out
}
