package jobgraph

import (
	"strings"
	"testing"
)

func node(id, par int, name string) StreamNode {
	return StreamNode{ID: id, Kind: "map", Name: name, Parallelism: par, MaxParallelism: 128, OutType: "int"}
}

func TestChaining(t *testing.T) {
	for _, tc := range []struct {
		name         string
		nodes        []StreamNode
		edges        []StreamEdge
		wantVertices []string
	}{
		{
			name:         "forward equal parallelism chains",
			nodes:        []StreamNode{node(1, 2, "src"), node(2, 2, "map"), node(3, 2, "sink")},
			edges:        []StreamEdge{{From: 1, To: 2, Partitioning: Forward}, {From: 2, To: 3, Partitioning: Forward}},
			wantVertices: []string{"src -> map -> sink"},
		},
		{
			name:         "hash edge breaks the chain",
			nodes:        []StreamNode{node(1, 2, "src"), node(2, 2, "reduce")},
			edges:        []StreamEdge{{From: 1, To: 2, Partitioning: Hash}},
			wantVertices: []string{"src", "reduce"},
		},
		{
			name:         "two inputs break the chain",
			nodes:        []StreamNode{node(1, 1, "a"), node(2, 1, "b"), node(3, 1, "union")},
			edges:        []StreamEdge{{From: 1, To: 3, Partitioning: Forward}, {From: 2, To: 3, Partitioning: Forward}},
			wantVertices: []string{"a", "b", "union"},
		},
		{
			name:         "side output is not chained",
			nodes:        []StreamNode{node(1, 1, "win"), node(2, 1, "late")},
			edges:        []StreamEdge{{From: 1, To: 2, Partitioning: Forward, Side: "late"}},
			wantVertices: []string{"win", "late"},
		},
		{
			name:         "disabled chaining",
			nodes:        []StreamNode{node(1, 1, "src"), {ID: 2, Name: "map", Parallelism: 1, MaxParallelism: 128, NoChain: true}},
			edges:        []StreamEdge{{From: 1, To: 2, Partitioning: Forward}},
			wantVertices: []string{"src", "map"},
		},
		{
			name:         "fan-out chains both consumers",
			nodes:        []StreamNode{node(1, 1, "src"), node(2, 1, "a"), node(3, 1, "b")},
			edges:        []StreamEdge{{From: 1, To: 2, Partitioning: Forward}, {From: 1, To: 3, Partitioning: Forward}},
			wantVertices: []string{"src -> a -> b"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Build("job", tc.nodes, tc.edges)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range g.Vertices {
				got = append(got, v.Name)
			}
			if strings.Join(got, "|") != strings.Join(tc.wantVertices, "|") {
				t.Errorf("vertices %q, want %q", got, tc.wantVertices)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nodes   []StreamNode
		edges   []StreamEdge
		wantErr string
	}{
		{"forward with unequal parallelism", []StreamNode{node(1, 1, "a"), node(2, 2, "b")}, []StreamEdge{{From: 1, To: 2, Partitioning: Forward}}, "needs equal parallelism"},
		{"parallelism above max", []StreamNode{{ID: 1, Name: "a", Parallelism: 300, MaxParallelism: 128}}, nil, "above its max parallelism"},
		{"zero parallelism", []StreamNode{{ID: 1, Name: "a", MaxParallelism: 128}}, nil, "at least 1"},
		{"unknown node", []StreamNode{node(1, 1, "a")}, []StreamEdge{{From: 1, To: 9}}, "unknown node"},
		{"uid twice", []StreamNode{{ID: 1, Name: "a", UID: "x", Parallelism: 1, MaxParallelism: 128}, {ID: 2, Name: "b", UID: "x", Parallelism: 1, MaxParallelism: 128}},
			[]StreamEdge{{From: 1, To: 2, Partitioning: Forward}}, `the same uid "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build("job", tc.nodes, tc.edges)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestOperatorUIDs(t *testing.T) {
	g, err := Build("job", []StreamNode{
		{ID: 1, Kind: "source", Name: "in", Parallelism: 1, MaxParallelism: 128},
		{ID: 2, Kind: "map", Name: "f", Parallelism: 1, MaxParallelism: 128},
		{ID: 3, Kind: "map", Name: "f", Parallelism: 1, MaxParallelism: 128},
		{ID: 4, Kind: "sink", Name: "out", UID: "files", Parallelism: 1, MaxParallelism: 128},
	}, []StreamEdge{{From: 1, To: 2, Partitioning: Forward}, {From: 2, To: 3, Partitioning: Forward}, {From: 3, To: 4, Partitioning: Forward}})
	if err != nil {
		t.Fatal(err)
	}
	got := g.OperatorUIDs()
	want := map[int]string{1: "source:in", 2: "map:f", 3: "map:f#1", 4: "files"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("operator %d has uid %q, want %q", id, got[id], w)
		}
	}
}

func TestFingerprint(t *testing.T) {
	base := func() ([]StreamNode, []StreamEdge) {
		return []StreamNode{node(1, 2, "src"), node(2, 2, "reduce")}, []StreamEdge{{From: 1, To: 2, Partitioning: Hash, Type: "int"}}
	}
	n, e := base()
	g, _ := Build("job", n, e)
	same, _ := Build("job", n, e)
	if g.Fingerprint != same.Fingerprint {
		t.Fatal("same graph, different fingerprints")
	}
	for name, change := range map[string]func(n []StreamNode, e []StreamEdge){
		"parallelism": func(n []StreamNode, e []StreamEdge) { n[1].Parallelism = 3 },
		"name":        func(n []StreamNode, e []StreamEdge) { n[1].Name = "other" },
		"uid":         func(n []StreamNode, e []StreamEdge) { n[0].UID = "u" },
		"partitioning": func(n []StreamNode, e []StreamEdge) {
			e[0].Partitioning = Rebalance
		},
		"type": func(n []StreamNode, e []StreamEdge) { n[0].OutType = "string" },
	} {
		n, e := base()
		change(n, e)
		g2, err := Build("job", n, e)
		if err != nil {
			t.Fatal(err)
		}
		if g2.Fingerprint == g.Fingerprint {
			t.Errorf("changing the %s left the fingerprint unchanged", name)
		}
	}
	data, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(data)
	if err != nil || back.Fingerprint != g.Fingerprint {
		t.Fatalf("round trip: %v", err)
	}
	tampered := strings.Replace(string(data), `"parallelism": 2`, `"parallelism": 5`, 1)
	if _, err := Unmarshal([]byte(tampered)); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("tampered plan accepted: %v", err)
	}
	if dot := g.DOT(); !strings.Contains(dot, "HASH") || !strings.HasPrefix(dot, "digraph") {
		t.Errorf("DOT output:\n%s", dot)
	}
}

func FuzzUnmarshal(f *testing.F) {
	g, _ := Build("job", []StreamNode{node(1, 1, "a"), node(2, 1, "b")}, []StreamEdge{{From: 1, To: 2, Partitioning: Forward}})
	data, _ := g.Marshal()
	f.Add(data)
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Unmarshal(data)
		if err == nil && g.ComputeFingerprint() != g.Fingerprint {
			t.Fatal("accepted a plan whose fingerprint does not match")
		}
	})
}
