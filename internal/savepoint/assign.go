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
			parts, err := Redistribute(*st, v.Parallelism, v.MaxParallelism)
			if err != nil {
				return m, fmt.Errorf("restore operator %q (uid %q) from %s: %w", op.Name, uid, snap.Path, err)
			}
			for s := range v.Parallelism {
				done := len(parts[s]) > 0
				for _, p := range parts[s] {
					done = done && p.Finished
					if p.HasState {
						states[s] = append(states[s], handleOf(p.Handle, int32(op.ID)))
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

// handleOf is the restore handle of a part of operator node.
func handleOf(h snapshot.Handle, node int32) checkpoint.Handle {
	kind := snapshot.KindOperator
	if h.From >= 0 {
		kind = snapshot.ChainKind(h.From)
	}
	return checkpoint.Handle{
		Operator: int(node), OperatorUID: h.UID, Kind: kind, URL: h.URL, Inline: h.Inline, Size: h.Size, SHA256: h.SHA256,
		KeyGroupStart: int(h.KeyGroups[0]), KeyGroupEnd: int(h.KeyGroups[1]),
	}
}

// Redistribute decides which parts of op's state each of parallelism
// subtasks restores: parts[i] are subtask i's. It is the one place that
// does; at op's own parallelism subtask i gets op's part i.
func Redistribute(op OperatorState, parallelism, maxParallelism int) ([][]Part, error) {
	if op.MaxParallelism > 0 && maxParallelism > 0 && op.MaxParallelism != maxParallelism {
		return nil, fmt.Errorf("the state has max parallelism %d (its key groups), the job %d: keep pipeline.max-parallelism as it was", op.MaxParallelism, maxParallelism)
	}
	if op.Parallelism != parallelism {
		return nil, fmt.Errorf("the state was taken at parallelism %d and the job runs it at %d: restoring at another parallelism is not supported yet; run the job at parallelism %d", op.Parallelism, parallelism, op.Parallelism)
	}
	parts := make([][]Part, parallelism)
	for _, p := range op.Parts {
		if p.Subtask < 0 || p.Subtask >= parallelism {
			return nil, fmt.Errorf("a part of subtask %d, beyond parallelism %d", p.Subtask, parallelism)
		}
		parts[p.Subtask] = append(parts[p.Subtask], p)
	}
	return parts, nil
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
