package snapshot

import (
	"context"
	"fmt"
	"slices"

	"github.com/spate-dev/spate/internal/keygroup"
)

// Restoring at another parallelism (see checkpoint.Assign for who gets
// which state file): a new subtask reads the state files of every old
// subtask of its vertex and keeps its share, as Flink's
// StateAssignmentOperation does: the keyed entries of the key groups it
// owns, and of each operator state (non-keyed entries, by operator and
// name) the part its Distribution gives it.

// Distribution is how one operator (non-keyed) state is spread over the
// subtasks of a vertex restored at another parallelism, as Flink's
// operator list state.
type Distribution int

// The distributions.
const (
	// Split cuts the state's elements (the entries of every old subtask,
	// in the old subtasks' order) into as many runs as there are new
	// subtasks, as even as can be, the first ones one longer: Flink's
	// round-robin redistribution of list state. A source's splits and a
	// sink's pending committables are split.
	Split Distribution = iota
	// Union gives every new subtask every element: Flink's union list
	// state.
	Union
	// Dropped is for an entry that describes its old subtask as a whole
	// (a source's mark that it had read every split) and means nothing at
	// another parallelism.
	Dropped
)

// Distributor is an Operator that says how its operator states are
// redistributed; the states of an Operator that is not one are Split.
type Distributor interface {
	Distribution(name string) Distribution
}

// KeyedOnly is an Operator all of whose state is keyed (no entry of
// NoKeyGroup): a new subtask whose operators are all KeyedOnly reads, on
// a rescale, only the old state files that hold key groups it owns.
type KeyedOnly interface {
	KeyedOnly()
}

// Share is one new subtask's part of a vertex restored at another
// parallelism.
type Share struct {
	// Subtask is the new subtask's index among Parallelism.
	Subtask, Parallelism int
	// MaxParallelism is the vertex's number of key groups.
	MaxParallelism int
}

// KeyGroups returns the key groups [start, end) the subtask owns.
func (s Share) KeyGroups() (start, end int) {
	return keygroup.Range(s.Subtask, s.MaxParallelism, s.Parallelism)
}

func (s Share) check() error {
	if s.Parallelism < 1 || s.Subtask < 0 || s.Subtask >= s.Parallelism || s.MaxParallelism < s.Parallelism {
		return fmt.Errorf("subtask %d of parallelism %d with max parallelism %d cannot take a share of state", s.Subtask, s.Parallelism, s.MaxParallelism)
	}
	return nil
}

// opState names one operator state: an operator's entries of one name.
type opState struct {
	op   int32
	name string
}

// Redistribute returns the entries new subtask s restores of olds, the
// entries of every old subtask's state file of its vertex, in the old
// subtasks' order: the keyed entries of the key groups it owns, then its
// part of each operator state (by operator and name, in the order they
// first appear) as dist says. A keyed entry of a key group beyond
// s.MaxParallelism is an error: the state was taken with another max
// parallelism.
func Redistribute(olds [][]Entry, s Share, dist func(op int32, name string) Distribution) ([]Entry, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	start, end := s.KeyGroups()
	var out []Entry
	var order []opState
	elems := map[opState][]Entry{}
	for _, es := range olds {
		for _, e := range es {
			if e.KeyGroup != NoKeyGroup {
				if int(e.KeyGroup) >= s.MaxParallelism {
					return nil, fmt.Errorf("state %q of operator %d is in key group %d, beyond the %d key groups of the job (pipeline.max-parallelism): it was taken with another max parallelism", e.Name, e.Operator, e.KeyGroup, s.MaxParallelism)
				}
				if int(e.KeyGroup) >= start && int(e.KeyGroup) < end {
					out = append(out, e)
				}
				continue
			}
			k := opState{e.Operator, e.Name}
			if _, ok := elems[k]; !ok {
				order = append(order, k)
			}
			elems[k] = append(elems[k], e)
		}
	}
	for _, k := range order {
		es := elems[k]
		switch dist(k.op, k.name) {
		case Union:
			out = append(out, es...)
		case Split:
			n, p := len(es), s.Parallelism
			from := s.Subtask*(n/p) + min(s.Subtask, n%p)
			to := from + n/p
			if s.Subtask < n%p {
				to++
			}
			out = append(out, es[from:to]...)
		case Dropped:
		}
	}
	return out, nil
}

// distribution returns how operator id's state name is redistributed.
func (t *TaskState) distribution(id int32, name string) Distribution {
	for _, o := range t.ops {
		if o.id == id {
			if d, ok := o.op.(Distributor); ok {
				return d.Distribution(name)
			}
			break
		}
	}
	return Split
}

// RestoreShared restores the task's share of hs, the state files of every
// old subtask of its vertex restored at another parallelism (handles of
// kind checkpoint.KindShared), or of every old subtask of one of its
// operators (a savepoint's, handles of a SharedKind with Remap set, whose
// entries are taken as that operator's), as Redistribute takes it. The
// task must have been made by KeyedTask, which tells its parallelism. The
// handles of one operator state must come in the old subtasks' order, for
// a Split to deal its elements out as Flink does. Every file is
// read, for the operator state in each, unless all the task's operators
// are KeyedOnly: then only those whose key groups (Handle.KeyGroups)
// overlap the task's.
func (t *TaskState) RestoreShared(ctx context.Context, store Store, hs []Handle) error {
	s := Share{Subtask: t.Subtask, Parallelism: t.parallelism, MaxParallelism: t.maxParallelism}
	if err := s.check(); err != nil {
		return fmt.Errorf("restore subtask %d of vertex %d at another parallelism: %w", t.Subtask, t.Vertex, err)
	}
	start, end := s.KeyGroups()
	keyedOnly := true
	for _, o := range t.ops {
		_, ok := o.op.(KeyedOnly)
		keyedOnly = keyedOnly && ok
	}
	olds := make([][]Entry, 0, len(hs))
	for _, h := range hs {
		if keyedOnly && (int(h.KeyGroups[0]) >= end || int(h.KeyGroups[1]) < start) {
			continue // none of our key groups, and no operator state
		}
		data, err := store.Get(ctx, h)
		if err != nil {
			return fmt.Errorf("restore subtask %d of vertex %d: %w", t.Subtask, t.Vertex, err)
		}
		entries, err := Decode(data)
		if err != nil {
			return fmt.Errorf("restore subtask %d of vertex %d from %s: %w", t.Subtask, t.Vertex, h.name(), err)
		}
		if h.Remap {
			entries = h.remap(entries)
		}
		// Keep only what may be ours, copied, so that the other key
		// groups' bytes are not held while the next file is read.
		keep := entries[:0]
		for _, e := range entries {
			kg := int(e.KeyGroup)
			if e.KeyGroup == NoKeyGroup || kg >= start && kg < end || kg >= s.MaxParallelism {
				e.Data = slices.Clone(e.Data)
				keep = append(keep, e)
			}
		}
		olds = append(olds, slices.Clip(keep))
	}
	entries, err := Redistribute(olds, s, t.distribution)
	if err != nil {
		return fmt.Errorf("restore subtask %d of vertex %d at parallelism %d: %w", t.Subtask, t.Vertex, s.Parallelism, err)
	}
	return t.restoreEntries(entries, "the state files of its vertex's old subtasks")
}
