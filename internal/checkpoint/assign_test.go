package checkpoint

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// subtaskStates makes the states of a vertex's p subtasks, each with one
// state file over its key groups of maxPar (as a subtask acknowledges).
func subtaskStates(vertex, p, maxPar int, finished ...bool) []SubtaskState {
	var out []SubtaskState
	for s := range p {
		start := (s*maxPar + p - 1) / p
		end := ((s+1)*maxPar + p - 1) / p
		st := SubtaskState{Vertex: vertex, Subtask: s, Attempt: 1, States: []Handle{{Operator: -1, Kind: "subtask",
			URL: fmt.Sprintf("file:///c/%d-%d", vertex, s), Size: 10, KeyGroupStart: start, KeyGroupEnd: end - 1}}}
		if s < len(finished) {
			st.Finished = finished[s]
		}
		out = append(out, st)
	}
	return out
}

func shared(hs []SubtaskState) []Handle {
	var out []Handle
	for _, st := range hs {
		for _, h := range st.States {
			h.Kind = KindShared
			out = append(out, h)
		}
	}
	return out
}

func TestAssign(t *testing.T) {
	v0at2 := subtaskStates(0, 2, 128)
	v1at4 := subtaskStates(1, 4, 128)
	tests := []struct {
		name     string
		subtasks []SubtaskState
		vertices []Vertex
		want     []SubtaskState
		wantErr  []string // substrings of the error
	}{
		{
			name:     "same parallelism: as taken",
			subtasks: append(append([]SubtaskState{}, v0at2...), v1at4...),
			vertices: []Vertex{{Parallelism: 2, MaxParallelism: 128}, {Parallelism: 4, MaxParallelism: 128}},
			want:     append(append([]SubtaskState{}, v0at2...), v1at4...),
		},
		{
			name:     "scale down 4 to 2: every new subtask gets every old file",
			subtasks: v1at4,
			vertices: []Vertex{{Parallelism: 2, MaxParallelism: 128}, {Parallelism: 2, MaxParallelism: 128}},
			want: []SubtaskState{
				{Vertex: 1, Subtask: 0, Attempt: 1, States: shared(v1at4)},
				{Vertex: 1, Subtask: 1, Attempt: 1, States: shared(v1at4)},
			},
		},
		{
			name:     "scale up 2 to 3; the other vertex had no state",
			subtasks: v0at2,
			vertices: []Vertex{{Parallelism: 3, MaxParallelism: 128}, {Parallelism: 5, MaxParallelism: 128}},
			want: []SubtaskState{
				{Vertex: 0, Subtask: 0, Attempt: 1, States: shared(v0at2)},
				{Vertex: 0, Subtask: 1, Attempt: 1, States: shared(v0at2)},
				{Vertex: 0, Subtask: 2, Attempt: 1, States: shared(v0at2)},
			},
		},
		{
			name:     "a vertex that had finished is finished at any parallelism",
			subtasks: subtaskStates(0, 2, 128, true, true),
			vertices: []Vertex{{Parallelism: 1, MaxParallelism: 128}},
			want:     []SubtaskState{{Vertex: 0, Subtask: 0, Attempt: 1, Finished: true, States: shared(subtaskStates(0, 2, 128))}},
		},
		{
			name:     "a vertex partly finished runs again at another parallelism",
			subtasks: subtaskStates(0, 2, 128, true, false),
			vertices: []Vertex{{Parallelism: 1, MaxParallelism: 128}},
			want:     []SubtaskState{{Vertex: 0, Subtask: 0, Attempt: 1, States: shared(subtaskStates(0, 2, 128))}},
		},
		{
			name: "a finished vertex rescaled again: its shared files count once",
			subtasks: []SubtaskState{
				{Vertex: 0, Subtask: 0, Attempt: 1, Finished: true, States: shared(v0at2)},
				{Vertex: 0, Subtask: 1, Attempt: 1, Finished: true, States: shared(v0at2)},
				{Vertex: 0, Subtask: 2, Attempt: 1, Finished: true, States: shared(v0at2)},
			},
			vertices: []Vertex{{Parallelism: 1, MaxParallelism: 128}},
			want:     []SubtaskState{{Vertex: 0, Subtask: 0, Attempt: 1, Finished: true, States: shared(v0at2)}},
		},
		{
			name: "handles laid out by their maker are restored as they are",
			subtasks: []SubtaskState{
				{Vertex: 0, Subtask: 0, States: []Handle{{Operator: 3, Kind: "operator", URL: "file:///s/op-3-0"}}},
				{Vertex: 0, Subtask: 1, States: []Handle{{Operator: 3, Kind: "operator", URL: "file:///s/op-3-1"}}},
			},
			vertices: []Vertex{{Parallelism: 3, MaxParallelism: 128}},
			want: []SubtaskState{
				{Vertex: 0, Subtask: 0, States: []Handle{{Operator: 3, Kind: "operator", URL: "file:///s/op-3-0"}}},
				{Vertex: 0, Subtask: 1, States: []Handle{{Operator: 3, Kind: "operator", URL: "file:///s/op-3-1"}}},
			},
		},
		{
			name:     "stateless subtasks rescale without handles",
			subtasks: []SubtaskState{{Vertex: 0, Subtask: 0, Attempt: 2}, {Vertex: 0, Subtask: 1, Attempt: 2}},
			vertices: []Vertex{{Parallelism: 1, MaxParallelism: 16}},
			want:     []SubtaskState{{Vertex: 0, Subtask: 0, Attempt: 2, States: nil}},
		},
		{
			name:     "unknown max parallelism is not checked",
			subtasks: v0at2,
			vertices: []Vertex{{Parallelism: 2}},
			want:     v0at2,
		},
		{
			name:     "parallelism above max parallelism",
			subtasks: subtaskStates(0, 2, 8),
			vertices: []Vertex{{Parallelism: 9, MaxParallelism: 8}},
			wantErr:  []string{"vertex 0", "parallelism 9", "pipeline.max-parallelism=8"},
		},
		{
			name:     "another max parallelism",
			subtasks: v0at2,
			vertices: []Vertex{{Parallelism: 2, MaxParallelism: 256}},
			wantErr:  []string{"vertex 0", "taken with pipeline.max-parallelism=128", "the job has pipeline.max-parallelism=256"},
		},
		{
			name:     "a vertex the job does not have",
			subtasks: v1at4,
			vertices: []Vertex{{Parallelism: 4, MaxParallelism: 128}},
			wantErr:  []string{"vertex 1", "the job has 1 vertices"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Assign(Metadata{ID: 7, Subtasks: tt.subtasks}, tt.vertices)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Assign = %+v, want an error with %q", got, tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Assign =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
