package savepoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/snapshot"
)

// graph builds source(1) -> keyed "Check"(2) -> sink "Files"(3), with extra
// nodes inserted after the source when given.
func graph(t testing.TB, par int, extra ...jobgraph.StreamNode) *jobgraph.JobGraph {
	t.Helper()
	nodes := []jobgraph.StreamNode{{ID: 1, Kind: "source", Name: "Numbers", Parallelism: par, MaxParallelism: 128}}
	edges := []jobgraph.StreamEdge{}
	prev := 1
	for _, n := range extra {
		n.Parallelism, n.MaxParallelism = par, 128
		nodes = append(nodes, n)
		edges = append(edges, jobgraph.StreamEdge{From: prev, To: n.ID, Partitioning: jobgraph.Forward})
		prev = n.ID
	}
	nodes = append(nodes,
		jobgraph.StreamNode{ID: 10, Kind: "keyedProcess", Name: "Check", UID: "check", Parallelism: par, MaxParallelism: 128},
		jobgraph.StreamNode{ID: 11, Kind: "sink", Name: "Files", Parallelism: par, MaxParallelism: 128})
	edges = append(edges, jobgraph.StreamEdge{From: prev, To: 10, Partitioning: jobgraph.Hash}, jobgraph.StreamEdge{From: 10, To: 11, Partitioning: jobgraph.Forward})
	g, err := jobgraph.Build("job", nodes, edges)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// checkpointOf is a checkpoint of g as the coordinator and the JobManager
// make it: each subtask's chain state inline, entries under node ids.
func checkpointOf(g *jobgraph.JobGraph) checkpoint.Metadata {
	m := checkpoint.Metadata{ID: 7, Attempt: 1, TimestampMs: 7000, Operators: Operators(g)}
	for vi, v := range g.Vertices {
		for s := range v.Parallelism {
			var es []snapshot.Entry
			for _, op := range v.Operators {
				es = append(es, snapshot.Entry{Operator: int32(op.ID), Name: "state-of-" + op.Name, KeyGroup: snapshot.NoKeyGroup, Data: []byte{byte(s), byte(op.ID)}})
			}
			data := snapshot.Encode(nil, es)
			m.Subtasks = append(m.Subtasks, checkpoint.SubtaskState{Vertex: vi, Subtask: s, Attempt: 1,
				States: []checkpoint.Handle{{Operator: -1, Kind: "subtask", Inline: data, Size: int64(len(data)), SHA256: snapshot.Sum(data)}}})
		}
	}
	return m
}

func readInline(h checkpoint.Handle) ([]byte, error) { return h.Inline, nil }

// recorder is an operator with state that records what it restores.
type recorder struct{ got []snapshot.Entry }

func (r *recorder) SnapshotState(int64) (func() ([]snapshot.Entry, error), error) { return nil, nil }
func (r *recorder) RestoreState(es []snapshot.Entry) error                        { r.got = es; return nil }

// restored returns what each operator (by node) of g restores from m, by
// subtask, as names with their data's first byte.
func restored(t *testing.T, g *jobgraph.JobGraph, m checkpoint.Metadata) map[[2]int][]string {
	t.Helper()
	out := map[[2]int][]string{}
	for k, es := range restoredEntries(t, g, m) {
		for _, e := range es {
			name := e.Name
			if len(e.Data) > 0 {
				name += string(rune('0' + e.Data[0]))
			}
			out[k] = append(out[k], name)
		}
	}
	return out
}

// restoredEntries returns what each operator (by node) of g restores
// from m, by subtask, restored as a worker does: every handle of a
// subtask read, the shared ones (an operator at another parallelism) for
// its share.
func restoredEntries(t *testing.T, g *jobgraph.JobGraph, m checkpoint.Metadata) map[[2]int][]snapshot.Entry {
	t.Helper()
	ctx := context.Background()
	out := map[[2]int][]snapshot.Entry{}
	r := snapshot.NewRunner(ctx, snapshot.LocalStore{}, nil, nil)
	for _, st := range m.Subtasks {
		v := g.Vertices[st.Vertex]
		ts := r.KeyedTask(st.Vertex, st.Subtask, v.Parallelism, v.MaxParallelism)
		ops := map[int]*recorder{}
		for _, op := range v.Operators {
			ops[op.ID] = &recorder{}
			ts.Add(int32(op.ID), ops[op.ID])
		}
		var shared []snapshot.Handle
		for _, h := range st.States {
			k, err := snapshot.ParseKind(h.Kind)
			if err != nil || !k.Remap {
				t.Fatalf("handle kind %q: %+v %v, want an operator's state", h.Kind, k, err)
			}
			sh := k.Apply(snapshot.Handle{URL: h.URL, Inline: h.Inline, Size: h.Size, SHA256: h.SHA256,
				KeyGroups: [2]int32{int32(h.KeyGroupStart), int32(h.KeyGroupEnd)}}, int32(h.Operator), h.OperatorUID)
			if k.Shared {
				shared = append(shared, sh)
			} else if err := ts.Restore(ctx, snapshot.LocalStore{}, sh); err != nil {
				t.Fatal(err)
			}
		}
		if len(shared) > 0 {
			if err := ts.RestoreShared(ctx, snapshot.LocalStore{}, shared); err != nil {
				t.Fatal(err)
			}
		}
		for id, rec := range ops {
			if len(rec.got) > 0 {
				out[[2]int{id, st.Subtask}] = rec.got
			}
		}
	}
	return out
}

func TestSavepointRoundTripRelocatedAndChanged(t *testing.T) {
	ctx := context.Background()
	g := graph(t, 2)
	m := checkpointOf(g)
	dir := t.TempDir()
	path, err := Write(ctx, dir, storage.Options{}, Job{ID: "0123456789abcdef", Name: "job", Parallelism: []int{2, 2}}, m, readInline)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(path), "savepoint-012345-") {
		t.Errorf("savepoint directory %s: want savepoint-<job prefix>-<random>", path)
	}
	// Moved elsewhere, it still restores: its paths are relative.
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	snap, err := Load(ctx, moved, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Checkpoint != 7 || len(snap.Operators) != 3 {
		t.Fatalf("loaded checkpoint %d with %d operators, want 7 with 3", snap.Checkpoint, len(snap.Operators))
	}
	tests := []struct {
		name      string
		g         *jobgraph.JobGraph
		allow     bool
		wantErr   string
		wantState map[[2]int][]string
	}{
		{name: "same job", g: g, wantState: map[[2]int][]string{
			{1, 0}: {"state-of-Numbers0"}, {1, 1}: {"state-of-Numbers1"},
			{10, 0}: {"state-of-Check0"}, {10, 1}: {"state-of-Check1"},
			{11, 0}: {"state-of-Files0"}, {11, 1}: {"state-of-Files1"},
		}},
		// An added operator shifts the node ids: state follows the uids.
		{name: "operator added", g: graph(t, 2, jobgraph.StreamNode{ID: 2, Kind: "map", Name: "Double"}), wantState: map[[2]int][]string{
			{1, 0}: {"state-of-Numbers0"}, {1, 1}: {"state-of-Numbers1"},
			{10, 0}: {"state-of-Check0"}, {10, 1}: {"state-of-Check1"},
			{11, 0}: {"state-of-Files0"}, {11, 1}: {"state-of-Files1"},
		}},
		// At another parallelism the operator (non-keyed) states are
		// split in the old subtasks' order (TestSavepointRescale checks
		// keyed state too).
		{name: "other parallelism", g: graph(t, 3), wantState: map[[2]int][]string{
			{1, 0}: {"state-of-Numbers0"}, {1, 1}: {"state-of-Numbers1"},
			{10, 0}: {"state-of-Check0"}, {10, 1}: {"state-of-Check1"},
			{11, 0}: {"state-of-Files0"}, {11, 1}: {"state-of-Files1"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Assign(tc.g, snap, tc.allow)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Assign: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			state := restored(t, tc.g, got)
			if len(state) != len(tc.wantState) {
				t.Errorf("restored %v, want %v", state, tc.wantState)
			}
			for k, want := range tc.wantState {
				if strings.Join(state[k], ",") != strings.Join(want, ",") {
					t.Errorf("operator %d subtask %d restores %v, want %v", k[0], k[1], state[k], want)
				}
			}
		})
	}
}

func TestAssignUnclaimedState(t *testing.T) {
	ctx := context.Background()
	withCount := graph(t, 1, jobgraph.StreamNode{ID: 2, Kind: "reduce", Name: "Count", UID: "count"})
	path, err := Write(ctx, t.TempDir(), storage.Options{}, Job{ID: "job", Parallelism: []int{1, 1}}, checkpointOf(withCount), readInline)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Load(ctx, filepath.Join(path, storage.MetadataName), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	without := graph(t, 1)
	_, err = Assign(without, snap, false)
	if err == nil || !strings.Contains(err.Error(), `uid "count"`) || !strings.Contains(err.Error(), "--allow-non-restored-state") {
		t.Fatalf("Assign of a job without operator count: %v, want an error naming uid \"count\" and the flag", err)
	}
	got, err := Assign(without, snap, true)
	if err != nil {
		t.Fatalf("Assign allowing non-restored state: %v", err)
	}
	if state := restored(t, without, got); len(state[[2]int{10, 0}]) != 1 {
		t.Errorf("the remaining operators restore %v, want Check's state", state)
	}
}

func TestRetainedCheckpointRestoresChangedJob(t *testing.T) {
	ctx := context.Background()
	g := graph(t, 1)
	store, err := storage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const job = "00112233445566778899aabbccddeeff"
	if _, err := storage.WriteMetadata(ctx, store, job, checkpointOf(g)); err != nil {
		t.Fatal(err)
	}
	snap, err := Load(ctx, localPath(store.URL(storage.Dir(job, 7))), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	changed := graph(t, 1, jobgraph.StreamNode{ID: 2, Kind: "map", Name: "Double"})
	m, err := Assign(changed, snap, false)
	if err != nil {
		t.Fatal(err)
	}
	state := restored(t, changed, m)
	if got := state[[2]int{10, 0}]; len(got) != 1 || got[0] != "state-of-Check0" {
		t.Errorf("Check restores %v from the retained checkpoint, want its own state", got)
	}
}

func TestLoadRefusesDamage(t *testing.T) {
	ctx := context.Background()
	path, err := Write(ctx, t.TempDir(), storage.Options{}, Job{ID: "job", Parallelism: []int{1, 1}}, checkpointOf(graph(t, 1)), readInline)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, t.TempDir(), storage.Options{}); !errors.Is(err, ErrNotSavepoint) {
		t.Errorf("Load of an empty directory: %v, want ErrNotSavepoint", err)
	}
	files, _ := filepath.Glob(filepath.Join(path, partPrefix+"*"))
	if len(files) == 0 {
		t.Fatal("no state files")
	}
	if err := os.Truncate(files[0], 1); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, path, storage.Options{}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Load of a savepoint with a truncated file: %v, want it damaged", err)
	}
}

func FuzzDecodeMetadata(f *testing.F) {
	path, err := Write(context.Background(), f.TempDir(), storage.Options{}, Job{ID: "job", Parallelism: []int{1, 1}}, checkpointOf(graphF(f)), readInline)
	if err != nil {
		f.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(path, storage.MetadataName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"format":"spate-savepoint","version":1,"operators":[{"uid":"a","parts":[{"file":"../x"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := DecodeMetadata(b)
		if err != nil {
			return
		}
		for _, op := range md.Operators {
			for _, p := range op.Parts {
				if strings.ContainsAny(p.File, `/\`) {
					t.Fatalf("accepted file %q outside the savepoint", p.File)
				}
			}
		}
	})
}

func graphF(f *testing.F) *jobgraph.JobGraph {
	g, err := jobgraph.Build("job", []jobgraph.StreamNode{
		{ID: 1, Kind: "source", Name: "Numbers", Parallelism: 1, MaxParallelism: 128},
		{ID: 10, Kind: "keyedProcess", Name: "Check", UID: "check", Parallelism: 1, MaxParallelism: 128},
	}, []jobgraph.StreamEdge{{From: 1, To: 10, Partitioning: jobgraph.Hash}})
	if err != nil {
		f.Fatal(err)
	}
	return g
}
