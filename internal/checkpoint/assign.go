package checkpoint

import (
	"fmt"
	"slices"
)

// Rescaling: a checkpoint restored into a job whose vertices have another
// parallelism than when it was taken. A vertex whose parallelism is the
// checkpoint's restores as it was, subtask by subtask. A vertex restored
// at another parallelism p2 hands each of its p2 new subtasks every state
// file of its p1 old ones (handles of Kind KindShared, in the old
// subtasks' order); the new subtask reads them and takes its share
// (snapshot.Redistribute): the keyed state of the key groups it owns,
// [keygroup.Range(i, maxParallelism, p2)), as Flink's
// KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex, and its
// part of each operator (non-keyed) state: split evenly over the new
// subtasks, or unioned, as Flink's round-robin and union redistribution of
// list state (source splits and a sink's pending committables are split).
//
//	p1 = 4: [0..31] [32..63] [64..95] [96..127]   one state file each
//	          \        |   \       |   /    /
//	p2 = 2: [0..63]  ◄── every file ──►  [64..127]
//
// A new subtask reads every old file of its vertex, for the operator state
// in each, and skips the keyed entries of other key groups; one whose
// operators hold keyed state only reads just the files whose key groups
// (Handle.KeyGroupStart, KeyGroupEnd) overlap its own.

// KindShared is the Kind of the state handles Assign gives every new
// subtask of a vertex restored at another parallelism: each is the state
// file of one old subtask, of which the new subtask restores its share.
const KindShared = "shared"

// Assign returns the state each subtask of a job restores from checkpoint
// m: the job's vertices (by index, as in m) are vertices. A vertex at the
// parallelism the checkpoint was taken at gets its subtask states as they
// are; one at another parallelism gets, for every new subtask, the handles
// of all its old subtasks, of Kind KindShared. A new subtask of a rescaled
// vertex is finished when every old one was (the vertex had finished).
//
// A parallelism above the vertex's pipeline.max-parallelism, or keyed
// state taken with another max parallelism (key groups cannot move), is an
// error that says which vertex and what to change.
func Assign(m Metadata, vertices []Vertex) ([]SubtaskState, error) {
	byVertex := make([][]SubtaskState, len(vertices))
	for _, st := range m.Subtasks {
		if st.Vertex < 0 || st.Vertex >= len(vertices) {
			return nil, fmt.Errorf("restore checkpoint %d: it holds state of vertex %d, the job has %d vertices (a changed job is restored from a savepoint, its operators matched by uid)", m.ID, st.Vertex, len(vertices))
		}
		byVertex[st.Vertex] = append(byVertex[st.Vertex], st)
	}
	var out []SubtaskState
	for vi, v := range vertices {
		olds := byVertex[vi]
		if err := checkMaxParallelism(m.ID, vi, v, olds); err != nil {
			return nil, err
		}
		if len(olds) == 0 {
			continue
		}
		slices.SortFunc(olds, func(a, b SubtaskState) int { return a.Subtask - b.Subtask })
		p1 := olds[len(olds)-1].Subtask + 1
		if p1 == v.Parallelism && len(olds) == p1 || !subtaskFiles(olds) {
			out = append(out, olds...)
			continue
		}
		finished := true
		var attempt int64
		var shared []Handle
		// A vertex rescaled when it had finished keeps, in every subtask's
		// final state, the same shared files: they count once.
		seen := map[[3]string]bool{}
		for _, st := range olds {
			finished = finished && st.Finished
			attempt = max(attempt, st.Attempt)
			for _, h := range st.States {
				k := [3]string{h.URL, h.SHA256, fmt.Sprint(h.Size)}
				if h.Kind == KindShared && seen[k] {
					continue
				}
				seen[k] = true
				h.Kind = KindShared
				shared = append(shared, h)
			}
		}
		for s := range v.Parallelism {
			out = append(out, SubtaskState{Vertex: vi, Subtask: s, Attempt: attempt, Finished: finished, States: slices.Clone(shared)})
		}
	}
	return out, nil
}

// KindSubtask is the Kind of the state handle of a subtask's state file,
// as the runtime acknowledges it: the entries of every operator of its
// chain.
const KindSubtask = "subtask"

// subtaskFiles tells whether olds hold subtasks' state files as taken
// (or shared by an earlier rescale): what Assign redistributes. Handles
// of other kinds were laid out for the job by their maker (a savepoint's
// operators matched by uid, shared already when rescaled: see
// savepoint.Redistribute), and are restored as they are.
func subtaskFiles(olds []SubtaskState) bool {
	for _, st := range olds {
		for _, h := range st.States {
			if h.Kind != "" && h.Kind != KindSubtask && h.Kind != KindShared {
				return false
			}
		}
	}
	return true
}

// checkMaxParallelism refuses to restore olds, the old subtask states of
// vertex vi, into v when the key groups do not fit.
func checkMaxParallelism(id ID, vi int, v Vertex, olds []SubtaskState) error {
	if v.MaxParallelism <= 0 {
		return nil
	}
	if v.Parallelism > v.MaxParallelism {
		return fmt.Errorf("restore checkpoint %d: %s has parallelism %d, above pipeline.max-parallelism=%d: its key groups cannot be spread over more subtasks than there are; lower its parallelism to at most %d (pipeline.max-parallelism cannot change across a restore of keyed state)", id, v.describe(vi), v.Parallelism, v.MaxParallelism, v.MaxParallelism)
	}
	if !subtaskFiles(olds) {
		// A savepoint's operator states: their maker checked their max
		// parallelism (savepoint.Redistribute), which the key groups of
		// the parts cannot tell (the last subtask may have had no state).
		return nil
	}
	// The last old subtask's key groups end at the max parallelism the
	// state was taken with (a handle without key groups tells nothing).
	taken := 0
	for _, st := range olds {
		for _, h := range st.States {
			if h.KeyGroupEnd > 0 {
				taken = max(taken, h.KeyGroupEnd+1)
			}
		}
	}
	if taken > 0 && taken != v.MaxParallelism {
		return fmt.Errorf("restore checkpoint %d: the state of %s was taken with pipeline.max-parallelism=%d, the job has pipeline.max-parallelism=%d: keyed state cannot move to other key groups; set pipeline.max-parallelism=%d", id, v.describe(vi), taken, v.MaxParallelism, taken)
	}
	return nil
}

// describe names vertex vi, v, in errors.
func (v Vertex) describe(vi int) string {
	if v.Name == "" {
		return fmt.Sprintf("vertex %d", vi)
	}
	return fmt.Sprintf("vertex %d (%s)", vi, v.Name)
}
