// Package jobgraph is the plan of a job: the operators a program declared,
// chained into vertices where records can pass by direct call, with the
// edges between vertices and how they partition records.
//
// The plan is built from a stream graph (one node per operator, one edge per
// connection) by Build, which decides chaining. It has a stable JSON encoding
// and a fingerprint, a SHA-256 over everything that identifies the job's
// topology: vertices, operators (kind, name, uid, types), parallelism and
// edges. The fingerprint changes whenever one of those does and only then, so
// a worker that rebuilds the graph from the same program can check that it
// rebuilt the same job.
package jobgraph

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Partitioning names how an edge distributes records; the strings are
// Flink's ship strategy names.
type Partitioning string

// The partitionings.
const (
	Forward   Partitioning = "FORWARD"
	Hash      Partitioning = "HASH"
	Rebalance Partitioning = "REBALANCE"
	Broadcast Partitioning = "BROADCAST"
)

// StreamNode is one operator as the program declared it.
type StreamNode struct {
	ID             int    `json:"id"`
	Kind           string `json:"kind"`
	Name           string `json:"name"`
	UID            string `json:"uid,omitempty"`
	Parallelism    int    `json:"parallelism"`
	MaxParallelism int    `json:"maxParallelism"`
	OutType        string `json:"outType"`
	// NoChain keeps the node at the head of its own vertex.
	NoChain bool `json:"noChain,omitempty"`
}

// StreamEdge connects the output of one node (its main output, or a side
// output) to one input gate of another.
type StreamEdge struct {
	From         int          `json:"from"`
	To           int          `json:"to"`
	Gate         int          `json:"gate"`
	Side         string       `json:"side,omitempty"`
	Partitioning Partitioning `json:"partitioning"`
	Type         string       `json:"type"`
}

// Operator is a node inside a vertex.
type Operator struct {
	StreamNode
	// ChainedFrom is the node this operator is chained to within the
	// vertex, -1 for the vertex's head.
	ChainedFrom int `json:"chainedFrom"`
}

// Vertex is a chain of operators run by one goroutine per subtask.
type Vertex struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Parallelism    int        `json:"parallelism"`
	MaxParallelism int        `json:"maxParallelism"`
	Operators      []Operator `json:"operators"`
}

// Edge connects two vertices; it carries one StreamEdge that crosses a
// chain boundary.
type Edge struct {
	Source       string       `json:"source"`
	Target       string       `json:"target"`
	FromNode     int          `json:"fromNode"`
	ToNode       int          `json:"toNode"`
	Gate         int          `json:"gate"`
	Side         string       `json:"side,omitempty"`
	Partitioning Partitioning `json:"partitioning"`
	Type         string       `json:"type"`
}

// JobGraph is the plan of one job.
type JobGraph struct {
	Name        string   `json:"name"`
	Fingerprint string   `json:"fingerprint"`
	Vertices    []Vertex `json:"vertices"`
	Edges       []Edge   `json:"edges"`
}

// Build chains nodes into vertices. A node joins its input's vertex when it
// has exactly one input edge, that edge is forward, the parallelism is equal
// and neither side disabled chaining. Nodes must be given in an order where
// every edge goes from an earlier node to a later one.
func Build(name string, nodes []StreamNode, edges []StreamEdge) (*JobGraph, error) {
	index := make(map[int]int, len(nodes))
	uids := map[string]string{}
	for i, n := range nodes {
		if _, dup := index[n.ID]; dup {
			return nil, fmt.Errorf("build job graph: node id %d used twice", n.ID)
		}
		if n.UID != "" {
			if other, dup := uids[n.UID]; dup {
				return nil, fmt.Errorf("build job graph: operators %q and %q have the same uid %q; a uid names one operator's state in savepoints: give each its own", other, n.Name, n.UID)
			}
			uids[n.UID] = n.Name
		}
		if n.Parallelism <= 0 {
			return nil, fmt.Errorf("build job graph: operator %q has parallelism %d; it must be at least 1", n.Name, n.Parallelism)
		}
		if n.MaxParallelism < n.Parallelism {
			return nil, fmt.Errorf("build job graph: operator %q has parallelism %d above its max parallelism %d; raise pipeline.max-parallelism", n.Name, n.Parallelism, n.MaxParallelism)
		}
		index[n.ID] = i
	}
	inputs := make(map[int][]StreamEdge)
	for _, e := range edges {
		fi, ok1 := index[e.From]
		ti, ok2 := index[e.To]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("build job graph: edge %d->%d names an unknown node", e.From, e.To)
		}
		if fi >= ti {
			return nil, fmt.Errorf("build job graph: edge %d->%d goes backwards", e.From, e.To)
		}
		if e.Partitioning == Forward && nodes[fi].Parallelism != nodes[ti].Parallelism {
			return nil, fmt.Errorf("build job graph: forward edge from %q (parallelism %d) to %q (parallelism %d) needs equal parallelism; use Rebalance or KeyBy between them",
				nodes[fi].Name, nodes[fi].Parallelism, nodes[ti].Name, nodes[ti].Parallelism)
		}
		inputs[e.To] = append(inputs[e.To], e)
	}
	vertexOf := make(map[int]int, len(nodes)) // node id -> vertex index
	g := &JobGraph{Name: name}
	for _, n := range nodes {
		in := inputs[n.ID]
		if len(in) == 1 && chainable(nodes[index[in[0].From]], n, in[0]) {
			vi := vertexOf[in[0].From]
			g.Vertices[vi].Operators = append(g.Vertices[vi].Operators, Operator{StreamNode: n, ChainedFrom: in[0].From})
			vertexOf[n.ID] = vi
			continue
		}
		vertexOf[n.ID] = len(g.Vertices)
		g.Vertices = append(g.Vertices, Vertex{
			Parallelism: n.Parallelism, MaxParallelism: n.MaxParallelism,
			Operators: []Operator{{StreamNode: n, ChainedFrom: -1}},
		})
	}
	for i := range g.Vertices {
		v := &g.Vertices[i]
		names := make([]string, len(v.Operators))
		for j, op := range v.Operators {
			names[j] = op.Name
		}
		v.Name = strings.Join(names, " -> ")
		v.ID = vertexID(v)
	}
	for _, e := range edges {
		src, dst := vertexOf[e.From], vertexOf[e.To]
		if src == dst {
			continue
		}
		g.Edges = append(g.Edges, Edge{
			Source: g.Vertices[src].ID, Target: g.Vertices[dst].ID,
			FromNode: e.From, ToNode: e.To, Gate: e.Gate, Side: e.Side,
			Partitioning: e.Partitioning, Type: e.Type,
		})
	}
	g.Fingerprint = g.ComputeFingerprint()
	return g, nil
}

func chainable(up, down StreamNode, e StreamEdge) bool {
	return e.Partitioning == Forward && e.Side == "" && !down.NoChain && !up.NoChain &&
		up.Parallelism == down.Parallelism && up.MaxParallelism == down.MaxParallelism
}

// vertexID derives a vertex's id from the identity of its head operator
// (uid if set, else kind, name and id), so ids are stable across rebuilds.
func vertexID(v *Vertex) string {
	head := v.Operators[0]
	var key string
	if head.UID != "" {
		key = "uid:" + head.UID
	} else {
		key = fmt.Sprintf("node:%d:%s:%s", head.ID, head.Kind, head.Name)
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// ComputeFingerprint returns the SHA-256 of the graph's canonical encoding
// without its fingerprint field.
func (g *JobGraph) ComputeFingerprint() string {
	c := *g
	c.Fingerprint = ""
	c.Edges = append([]Edge(nil), g.Edges...)
	sort.SliceStable(c.Edges, func(i, j int) bool {
		a, b := c.Edges[i], c.Edges[j]
		if a.FromNode != b.FromNode {
			return a.FromNode < b.FromNode
		}
		if a.ToNode != b.ToNode {
			return a.ToNode < b.ToNode
		}
		return a.Gate < b.Gate
	})
	data, err := json.Marshal(&c)
	if err != nil {
		panic(fmt.Sprintf("jobgraph: marshal for fingerprint: %v", err)) // plain structs: cannot fail
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Marshal returns the graph's JSON encoding, indented for people.
func (g *JobGraph) Marshal() ([]byte, error) {
	return json.MarshalIndent(g, "", "  ")
}

// Unmarshal decodes a graph and checks that its fingerprint matches its
// content.
func Unmarshal(data []byte) (*JobGraph, error) {
	var g JobGraph
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("decode job graph: %w", err)
	}
	if got := g.ComputeFingerprint(); got != g.Fingerprint {
		return nil, fmt.Errorf("decode job graph: fingerprint %s does not match its content (%s); the plan was altered or truncated", g.Fingerprint, got)
	}
	return &g, nil
}

// DOT renders the graph in Graphviz's DOT language: one box per vertex
// listing its chained operators, one arrow per edge labelled with its
// partitioning.
func (g *JobGraph) DOT() string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %q {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n", g.Name)
	for _, v := range g.Vertices {
		ops := make([]string, len(v.Operators))
		for i, op := range v.Operators {
			ops[i] = op.Name
		}
		label := fmt.Sprintf("%s\\nparallelism %d", strings.Join(ops, "\\n→ "), v.Parallelism)
		fmt.Fprintf(&b, "  %q [label=%q];\n", v.ID[:8], label)
	}
	for _, e := range g.Edges {
		label := string(e.Partitioning)
		if e.Side != "" {
			label += " (" + e.Side + ")"
		}
		fmt.Fprintf(&b, "  %q -> %q [label=%q];\n", e.Source[:8], e.Target[:8], label)
	}
	b.WriteString("}\n")
	return strings.ReplaceAll(b.String(), `\\n`, `\n`)
}

// OperatorUIDs returns the identity of every operator of g by StreamNode
// id, which matches its state in a savepoint or a retained checkpoint
// taken by another build of the program: the uid the program set
// (Stream.UID), else one generated from the operator's kind and name
// ("kind:name", with "#n" for the n-th further one of the same kind and
// name, in the order the program declared them). Generated ids survive
// operators added or removed elsewhere, as long as the names stay; set
// uids on stateful operators for upgrades that rename them.
func (g *JobGraph) OperatorUIDs() map[int]string {
	var nodes []StreamNode
	for _, v := range g.Vertices {
		for _, op := range v.Operators {
			nodes = append(nodes, op.StreamNode)
		}
	}
	sort.Slice(nodes, func(a, b int) bool { return nodes[a].ID < nodes[b].ID })
	out := make(map[int]string, len(nodes))
	seen := map[string]int{}
	for _, n := range nodes {
		if n.UID != "" {
			out[n.ID] = n.UID
			continue
		}
		key := n.Kind + ":" + n.Name
		if k := seen[key]; k > 0 {
			out[n.ID] = fmt.Sprintf("%s#%d", key, k)
		} else {
			out[n.ID] = key
		}
		seen[key]++
	}
	return out
}
