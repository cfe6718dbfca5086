package savepoint

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/keygroup"
	"github.com/spate-dev/spate/internal/snapshot"
)

// splitsPerSubtask is how many source splits each subtask of
// rescalableCheckpoint holds.
const splitsPerSubtask = 3

// rescalableCheckpoint is a checkpoint of g (graph) as a job with all
// kinds of state takes it: the source's splits (operator state), Check's
// keyed state of every key group its subtask owns, and the sink's pending
// committable (operator state), each entry's data naming it.
func rescalableCheckpoint(g *jobgraph.JobGraph) checkpoint.Metadata {
	return rescalableCheckpointWithout(g, -1)
}

// rescalableCheckpointWithout is rescalableCheckpoint but subtask empty of
// the keyed vertex holds nothing (no key of its key groups came; its sink
// wrote nothing).
func rescalableCheckpointWithout(g *jobgraph.JobGraph, empty int) checkpoint.Metadata {
	m := checkpoint.Metadata{ID: 9, Attempt: 1, TimestampMs: 9000, Operators: Operators(g)}
	for vi, v := range g.Vertices {
		for s := range v.Parallelism {
			if vi == 1 && s == empty {
				data := snapshot.Encode(nil, nil)
				start, end := keygroup.Range(s, v.MaxParallelism, v.Parallelism)
				m.Subtasks = append(m.Subtasks, checkpoint.SubtaskState{Vertex: vi, Subtask: s, Attempt: 1,
					States: []checkpoint.Handle{{Operator: -1, Kind: checkpoint.KindSubtask, Inline: data, Size: int64(len(data)), SHA256: snapshot.Sum(data),
						KeyGroupStart: start, KeyGroupEnd: end - 1}}})
				continue
			}
			start, end := keygroup.Range(s, v.MaxParallelism, v.Parallelism)
			var es []snapshot.Entry
			for _, op := range v.Operators {
				switch op.Name {
				case "Numbers":
					for i := range splitsPerSubtask {
						es = append(es, snapshot.Entry{Operator: int32(op.ID), Name: "split", KeyGroup: snapshot.NoKeyGroup, Data: fmt.Appendf(nil, "split-%d-%d", s, i)})
					}
				case "Check":
					for kg := start; kg < end; kg++ {
						es = append(es, snapshot.Entry{Operator: int32(op.ID), Name: "last", KeyGroup: int32(kg), Data: fmt.Appendf(nil, "kg-%d", kg)})
					}
				case "Files":
					es = append(es, snapshot.Entry{Operator: int32(op.ID), Name: "committable", KeyGroup: snapshot.NoKeyGroup, Data: fmt.Appendf(nil, "txn-%d", s)})
				}
			}
			data := snapshot.Encode(nil, es)
			m.Subtasks = append(m.Subtasks, checkpoint.SubtaskState{Vertex: vi, Subtask: s, Attempt: 1,
				States: []checkpoint.Handle{{Operator: -1, Kind: checkpoint.KindSubtask, Inline: data, Size: int64(len(data)), SHA256: snapshot.Sum(data),
					KeyGroupStart: start, KeyGroupEnd: end - 1}}})
		}
	}
	return m
}

// TestSavepointRescale writes a savepoint of a job at parallelism p1 and
// restores it, as a worker does, into the job at every p2 (and into a
// changed job with an operator added): every key group's state reaches
// the one subtask that owns it at p2, and every source split and every
// pending committable reaches exactly one subtask, the shares as even as
// can be. The same holds from the job's retained checkpoint.
func TestSavepointRescale(t *testing.T) {
	ctx := context.Background()
	for _, p1 := range []int{1, 2, 3, 4, 7} {
		g1 := graph(t, p1)
		m := rescalableCheckpoint(g1)
		path, err := Write(ctx, t.TempDir(), storage.Options{}, Job{ID: "job", Parallelism: []int{p1, p1}}, m, readInline)
		if err != nil {
			t.Fatal(err)
		}
		sp, err := Load(ctx, path, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p2 := range []int{1, 2, 3, 4, 5, 8, 16} {
			for _, changed := range []bool{false, true} {
				t.Run(fmt.Sprintf("p1=%d/p2=%d/changed=%v", p1, p2, changed), func(t *testing.T) {
					var g2 *jobgraph.JobGraph
					if changed {
						g2 = graph(t, p2, jobgraph.StreamNode{ID: 2, Kind: "map", Name: "Stamp"})
					} else {
						g2 = graph(t, p2)
					}
					got, err := Assign(g2, sp, false)
					if err != nil {
						t.Fatal(err)
					}
					// What a job restores goes through checkpoint.Assign
					// (restore points of every kind do): it must leave a
					// savepoint's layout as it is.
					vs := make([]checkpoint.Vertex, len(g2.Vertices))
					for i, v := range g2.Vertices {
						vs[i] = checkpoint.Vertex{Name: v.Name, Parallelism: v.Parallelism, MaxParallelism: v.MaxParallelism}
					}
					if got.Subtasks, err = checkpoint.Assign(got, vs); err != nil {
						t.Fatal(err)
					}
					checkRescaled(t, g2, restoredEntries(t, g2, got), p1, p2)
				})
			}
		}
	}
}

// checkRescaled checks what the operators of g2 (at p2) restored of
// rescalableCheckpoint at p1.
func checkRescaled(t *testing.T, g2 *jobgraph.JobGraph, state map[[2]int][]snapshot.Entry, p1, p2 int) {
	t.Helper()
	node := map[string]int{}
	for _, v := range g2.Vertices {
		for _, op := range v.Operators {
			node[op.Name] = op.ID
		}
	}
	var splits, txns []string
	for s := range p2 {
		start, end := keygroup.Range(s, 128, p2)
		var want, kgs []string
		for kg := start; kg < end; kg++ {
			want = append(want, fmt.Sprintf("kg-%d", kg))
		}
		for _, e := range state[[2]int{node["Check"], s}] {
			if e.Name != "last" || int(e.KeyGroup) < start || int(e.KeyGroup) >= end {
				t.Errorf("subtask %d of %d restores Check's %q of key group %d, want its key groups [%d, %d) only", s, p2, e.Name, e.KeyGroup, start, end)
			}
			kgs = append(kgs, string(e.Data))
		}
		if !slices.Equal(kgs, want) {
			t.Errorf("subtask %d of %d restores Check's key groups %v, want %v", s, p2, kgs, want)
		}
		n := len(splits)
		for _, e := range state[[2]int{node["Numbers"], s}] {
			splits = append(splits, string(e.Data))
		}
		if got, lo := len(splits)-n, p1*splitsPerSubtask/p2; got != lo && got != lo+1 {
			t.Errorf("subtask %d of %d restores %d splits, want %d or %d", s, p2, got, lo, lo+1)
		}
		for _, e := range state[[2]int{node["Files"], s}] {
			txns = append(txns, string(e.Data))
		}
		if _, ok := state[[2]int{node["Stamp"], s}]; ok && node["Stamp"] != 0 {
			t.Errorf("the added operator restores state")
		}
	}
	var wantSplits, wantTxns []string
	for s := range p1 {
		for i := range splitsPerSubtask {
			wantSplits = append(wantSplits, fmt.Sprintf("split-%d-%d", s, i))
		}
		wantTxns = append(wantTxns, fmt.Sprintf("txn-%d", s))
	}
	slices.Sort(splits)
	slices.Sort(txns)
	if !slices.Equal(splits, wantSplits) {
		t.Errorf("%d -> %d: the subtasks restore splits %v, want each of %v once", p1, p2, splits, wantSplits)
	}
	if !slices.Equal(txns, wantTxns) {
		t.Errorf("%d -> %d: the subtasks restore committables %v, want each of %v once (each commits its own)", p1, p2, txns, wantTxns)
	}
}

// TestRetainedCheckpointRescale: a retained checkpoint (chain state files,
// each operator's entries taken by StreamNode) restores at another
// parallelism as a savepoint does.
func TestRetainedCheckpointRescale(t *testing.T) {
	ctx := context.Background()
	store, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const p1, p2 = 3, 2
	const job = "00112233445566778899aabbccddeeff"
	if _, err := storage.WriteMetadata(ctx, store, job, rescalableCheckpoint(graph(t, p1))); err != nil {
		t.Fatal(err)
	}
	snap, err := Load(ctx, localPath(store.URL(storage.Dir(job, 9))), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g2 := graph(t, p2, jobgraph.StreamNode{ID: 2, Kind: "map", Name: "Stamp"})
	m, err := Assign(g2, snap, false)
	if err != nil {
		t.Fatal(err)
	}
	checkRescaled(t, g2, restoredEntries(t, g2, m), p1, p2)
}

// TestRescaleFinished: a vertex whose subtasks had all finished is
// restored finished at another parallelism; one whose subtasks had not all
// finished runs again.
func TestRescaleFinished(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		finished     []int
		wantFinished bool
	}{
		{name: "all finished", finished: []int{0, 1}, wantFinished: true},
		{name: "one finished", finished: []int{1}, wantFinished: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := graph(t, 2)
			m := rescalableCheckpoint(g)
			for i, st := range m.Subtasks {
				m.Subtasks[i].Finished = st.Vertex == 0 && slices.Contains(tc.finished, st.Subtask)
			}
			path, err := Write(ctx, t.TempDir(), storage.Options{}, Job{ID: "job", Parallelism: []int{2, 2}}, m, readInline)
			if err != nil {
				t.Fatal(err)
			}
			sp, err := Load(ctx, path, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := Assign(graph(t, 3), sp, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range got.Subtasks {
				if want := st.Vertex == 0 && tc.wantFinished; st.Finished != want {
					t.Errorf("subtask %d/%d restored finished=%v, want %v", st.Vertex, st.Subtask, st.Finished, want)
				}
			}
		})
	}
}

// TestRedistributeRefuses: a parallelism above the max parallelism, and
// state of another max parallelism, are errors naming the fix.
func TestRedistributeRefuses(t *testing.T) {
	op := OperatorState{UID: "check", Parallelism: 2, MaxParallelism: 8, Parts: []Part{{Subtask: 0}, {Subtask: 1}}}
	for _, tc := range []struct {
		name            string
		par, maxPar     int
		wantErrContains string
	}{
		{name: "above max parallelism", par: 9, maxPar: 8, wantErrContains: "above pipeline.max-parallelism=8"},
		{name: "other max parallelism", par: 2, maxPar: 16, wantErrContains: "keep pipeline.max-parallelism as it was"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Redistribute(op, tc.par, tc.maxPar); err == nil || !strings.Contains(err.Error(), tc.wantErrContains) {
				t.Errorf("Redistribute at %d of %d: %v, want an error saying %q", tc.par, tc.maxPar, err, tc.wantErrContains)
			}
		})
	}
}

// TestSavepointRescaleLastSubtaskEmpty: a savepoint whose last keyed
// subtask had no state (none of its key groups' keys came) has no part of
// it, so the parts' key groups end before the max parallelism; it still
// restores at another parallelism (its max parallelism is recorded).
func TestSavepointRescaleLastSubtaskEmpty(t *testing.T) {
	ctx := context.Background()
	const p1, p2 = 4, 3
	path, err := Write(ctx, t.TempDir(), storage.Options{}, Job{ID: "job", Parallelism: []int{p1, p1}}, rescalableCheckpointWithout(graph(t, p1), p1-1), readInline)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := Load(ctx, path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g2 := graph(t, p2)
	got, err := Assign(g2, sp, false)
	if err != nil {
		t.Fatal(err)
	}
	vs := make([]checkpoint.Vertex, len(g2.Vertices))
	for i, v := range g2.Vertices {
		vs[i] = checkpoint.Vertex{Name: v.Name, Parallelism: v.Parallelism, MaxParallelism: v.MaxParallelism}
	}
	if _, err := checkpoint.Assign(got, vs); err != nil {
		t.Fatalf("checkpoint.Assign of the savepoint's layout: %v", err)
	}
}
