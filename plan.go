package spate

import (
	"fmt"
	"os"
	"reflect"

	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/operator"
)

// plan is a job ready to run: the stream graph with parallelism resolved and
// the JobGraph it chains into.
type plan struct {
	name string
	// ordinal is the Execute/ExecuteAsync call that made the plan, among
	// all of the process's (executeCalls).
	ordinal int
	nodes   []*node
	byID    map[int]*node
	par     map[int]int
	maxPar  int
	graph   *jobgraph.JobGraph
	// ck, when the job takes checkpoints, collects the state of the
	// subtasks build makes (checkpointing.go).
	ck *checkpointBuild
}

func (e *Env) plan(name string, nodes []*node) (*plan, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("job %q has no operators: declare a source and a sink before Execute", name)
	}
	if err := e.conf.Validate(); err != nil {
		return nil, fmt.Errorf("job %q: %w", name, err)
	}
	p := &plan{name: name, nodes: nodes, byID: map[int]*node{}, par: map[int]int{}, maxPar: e.MaxParallelism()}
	def := e.Parallelism()
	var sns []jobgraph.StreamNode
	var ses []jobgraph.StreamEdge
	for _, n := range nodes {
		p.byID[n.id] = n
		par := n.parallelism
		if par == 0 {
			par = def
		}
		p.par[n.id] = par
		sns = append(sns, jobgraph.StreamNode{
			ID: n.id, Kind: n.kind, Name: n.name, UID: n.uid, Parallelism: par,
			MaxParallelism: p.maxPar, OutType: typeName(n.out.Type()), NoChain: n.noChain,
		})
	}
	for _, n := range nodes {
		for _, k := range n.keyTypes {
			if err := k.Check(); err != nil {
				return nil, fmt.Errorf("job %q: the key of %q must be hashable the same way in every process: %w", name, n.name, err)
			}
		}
		for _, in := range n.inputs {
			if _, ok := p.byID[in.from.id]; !ok {
				return nil, fmt.Errorf("job %q: operator %q reads from %q, which belongs to an earlier job; declare the whole dataflow before each Execute", name, n.name, in.from.name)
			}
			part := p.partitioning(in)
			k := in.from.outType(in.side)
			if part != jobgraph.Forward {
				if err := k.Check(); err != nil {
					return nil, fmt.Errorf("job %q: records from %q to %q cross a partitioning edge and need a codec: %w", name, in.from.name, n.name, err)
				}
			}
			ses = append(ses, jobgraph.StreamEdge{
				From: in.from.id, To: n.id, Gate: in.gate, Side: in.from.sideName(in.side),
				Partitioning: part, Type: typeName(k.Type()),
			})
		}
	}
	g, err := jobgraph.Build(name, sns, ses)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", name, err)
	}
	p.graph = g
	return p, nil
}

func (p *plan) partitioning(in *edge) jobgraph.Partitioning {
	switch in.part {
	case partForward:
		return jobgraph.Forward
	case partRebalance:
		return jobgraph.Rebalance
	case partBroadcast:
		return jobgraph.Broadcast
	case partHash:
		return jobgraph.Hash
	}
	if p.par[in.from.id] == p.par[in.to.id] {
		return jobgraph.Forward
	}
	return jobgraph.Rebalance
}

func (n *node) outType(side int) operator.RecordType {
	if side == 0 {
		return n.out
	}
	return n.sides[side-1].out
}

func (n *node) sideName(side int) string {
	if side == 0 {
		return ""
	}
	return n.sides[side-1].tag
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "none"
	}
	return t.String()
}

// tasks makes the subtasks of the plan, all to run in this process.
func (p *plan) tasks(e *Env) ([]*exec.Task, error) {
	byVertex, err := p.build(e, nil)
	if err != nil {
		return nil, err
	}
	var all []*exec.Task
	for _, ts := range byVertex {
		all = append(all, ts...)
	}
	return all, nil
}

// build makes every subtask of the plan, indexed by vertex and subtask.
// local, if not nil, tells which subtasks run in this process: edges to the
// others encode their batches, and the others' inboxes are where records
// for them queue before the data plane takes them.
func (p *plan) build(e *Env, local func(vertex, subtask int) bool) ([][]*exec.Task, error) {
	g := p.graph
	encode, err := e.conf.Bool(config.EncodeExchanges, false)
	if err != nil {
		return nil, err
	}
	batch, err := e.conf.Int(config.BufferRecords, 0)
	if err != nil {
		return nil, err
	}
	queue, err := e.conf.Int(config.QueueBatches, 4)
	if err != nil {
		return nil, err
	}
	countOps, err := e.conf.Bool(config.OperatorMetrics, false)
	if err != nil {
		return nil, err
	}
	vertexOf := map[int]int{}
	for vi, v := range g.Vertices {
		for _, op := range v.Operators {
			vertexOf[op.ID] = vi
		}
	}
	// Inboxes and channel numbering: the channels of a vertex are its
	// incoming edges in order, each with one channel per producer subtask.
	type inChannels struct {
		base map[int]int // edge index in g.Edges -> first channel
		n    int
	}
	ins := make([]inChannels, len(g.Vertices))
	for i := range ins {
		ins[i].base = map[int]int{}
	}
	for ei, ed := range g.Edges {
		vi := vertexOf[ed.ToNode]
		ins[vi].base[ei] = ins[vi].n
		ins[vi].n += channelsOf(ed, g.Vertices[vertexOf[ed.FromNode]].Parallelism)
	}
	tasks := make([][]*exec.Task, len(g.Vertices))
	for vi, v := range g.Vertices {
		tasks[vi] = make([]*exec.Task, v.Parallelism)
		for s := range tasks[vi] {
			t := &exec.Task{Name: v.Name, Subtask: s, Parallelism: v.Parallelism, Clock: e.clock}
			if ins[vi].n > 0 {
				t.Inbox = make(chan exec.Msg, queue*ins[vi].n)
				t.ChannelGates = make([]int, ins[vi].n)
			}
			tasks[vi][s] = t
		}
	}
	edgesFrom := map[int][]int{} // node id -> indexes into g.Edges
	for ei, ed := range g.Edges {
		edgesFrom[ed.FromNode] = append(edgesFrom[ed.FromNode], ei)
	}
	for vi, v := range g.Vertices {
		for s, t := range tasks[vi] {
			specs := map[int]*operator.Spec{}
			opMetrics := make([]*exec.OperatorMetrics, len(v.Operators))
			for oi := len(v.Operators) - 1; oi >= 0; oi-- {
				op := v.Operators[oi]
				n := p.byID[op.ID]
				outs := make([][]any, 1+len(n.sides))
				// Chained consumers.
				for _, c := range v.Operators[oi+1:] {
					if c.ChainedFrom != op.ID {
						continue
					}
					cn := p.byID[c.ID]
					in := cn.inputs[0]
					outs[in.side] = append(outs[in.side], specs[c.ID].Inputs[in.gate])
				}
				// Consumers in other vertices.
				for _, ei := range edgesFrom[op.ID] {
					ed := g.Edges[ei]
					in := p.edgeOf(ed)
					tv := vertexOf[ed.ToNode]
					targets := make([]chan exec.Msg, len(tasks[tv]))
					for j, tt := range tasks[tv] {
						targets[j] = tt.Inbox
					}
					channel := ins[tv].base[ei] + s
					if ed.Partitioning == jobgraph.Forward {
						// One channel per consumer: only its twin sends to it.
						targets = targets[s : s+1]
						channel = ins[tv].base[ei]
					}
					var remote []bool
					if local != nil && ed.Partitioning != jobgraph.Forward {
						remote = make([]bool, len(targets))
						for j := range targets {
							remote[j] = !local(tv, j)
						}
					} else if local != nil && local(vi, s) && !local(tv, s) {
						// A forward edge between processes: only a placement
						// other than slot sharing makes one.
						remote = []bool{true}
					}
					w, err := n.outType(in.side).NewWriter(operator.WriterSpec{
						Task: t, Producer: in.from.name, Consumer: p.byID[ed.ToNode].name,
						Part: execPart(ed.Partitioning), Hash: in.hash, Targets: targets,
						Channel: int32(channel), MaxParallelism: p.maxPar, BatchSize: batch,
						Encode: encode, Remote: remote,
					})
					if err != nil {
						return nil, fmt.Errorf("job %q: %w", p.name, err)
					}
					outs[in.side] = append(outs[in.side], w)
				}
				inst := &operator.Instance{
					Task: t, Name: n.name, Subtask: s, Parallelism: v.Parallelism,
					MaxParallelism: p.maxPar, JobName: p.name, Outs: make([]any, len(outs)), Sides: operator.SideOutputs{},
					AutoWatermarkInterval: e.autoWatermarkInterval,
				}
				p.ck.instance(inst, vi, s, v.Parallelism)
				var sideCtl []exec.Control
				for i, o := range outs {
					k := n.outType(i)
					inst.Outs[i] = k.Combine(o)
					if i > 0 {
						inst.Sides[n.sides[i-1].tag] = inst.Outs[i]
						sideCtl = append(sideCtl, inst.Outs[i].(exec.Control))
					}
				}
				if len(sideCtl) > 0 {
					// Side outputs follow the main output's watermarks and end.
					inst.Outs[0] = n.out.WithSides(inst.Outs[0], sideCtl)
				}
				if countOps {
					// The operator's numRecordsOut and currentOutputWatermark.
					om := &exec.OperatorMetrics{ID: op.ID, Name: n.name, From: op.ChainedFrom}
					inst.Outs[0] = n.out.Counted(inst.Outs[0], om)
					opMetrics[oi] = om
				}
				spec, err := n.build(inst)
				if err != nil {
					return nil, fmt.Errorf("job %q: operator %q: %w", p.name, n.name, err)
				}
				specs[op.ID] = spec
				p.ck.add(vi, s, op.ID, spec.State)
				if spec.Open != nil {
					t.Opens = append(t.Opens, spec.Open)
				}
				if spec.Close != nil {
					t.Closes = append([]func() error{spec.Close}, t.Closes...)
				}
			}
			for _, om := range opMetrics {
				if om != nil {
					t.AddOperator(om)
				}
			}
			head := v.Operators[0]
			hs := specs[head.ID]
			if hs.Source != nil {
				t.Source = hs.Source
			} else {
				t.Head = hs.Control
				if t.Head == nil {
					t.Head = hs.Inputs[0].(exec.Control)
				}
				hn := p.byID[head.ID]
				t.Gates = make([]func(any) (int, error), len(hs.Inputs))
				for gate := range hs.Inputs {
					var k operator.RecordType
					// Batches from other processes arrive encoded.
					decode := encode
					for _, in := range hn.inputs {
						if in.gate == gate {
							k = in.from.outType(in.side)
							if local != nil && (p.partitioning(in) != jobgraph.Forward || !local(vertexOf[in.from.id], s)) {
								decode = true
							}
						}
					}
					d, err := k.Deliverer(hs.Inputs[gate], decode)
					if err != nil {
						return nil, fmt.Errorf("job %q: input %d of %q: %w", p.name, gate, hn.name, err)
					}
					t.Gates[gate] = d
				}
			}
		}
	}
	// Channel gates of every consumer.
	for ei, ed := range g.Edges {
		tv := vertexOf[ed.ToNode]
		in := p.edgeOf(ed)
		for _, t := range tasks[tv] {
			for s := 0; s < channelsOf(ed, g.Vertices[vertexOf[ed.FromNode]].Parallelism); s++ {
				t.ChannelGates[ins[tv].base[ei]+s] = in.gate
			}
		}
	}
	return tasks, nil
}

// channelsOf returns how many channels an edge has at each consumer subtask:
// one per producer subtask, or one for a forward edge.
func channelsOf(ed jobgraph.Edge, producers int) int {
	if ed.Partitioning == jobgraph.Forward {
		return 1
	}
	return producers
}

// edgeOf finds the stream edge behind a JobGraph edge.
func (p *plan) edgeOf(ed jobgraph.Edge) *edge {
	for _, in := range p.byID[ed.ToNode].inputs {
		if in.from.id == ed.FromNode && in.gate == ed.Gate && in.from.sideName(in.side) == ed.Side {
			return in
		}
	}
	panic(fmt.Sprintf("spate: no stream edge for job graph edge %d->%d", ed.FromNode, ed.ToNode))
}

func execPart(p jobgraph.Partitioning) exec.Partitioning {
	switch p {
	case jobgraph.Hash:
		return exec.Hash
	case jobgraph.Rebalance:
		return exec.Rebalance
	case jobgraph.Broadcast:
		return exec.Broadcast
	}
	return exec.Forward
}

// InfoEnv, when set to "json" or "dot" in a program's environment, makes
// Execute print the job's plan in that format instead of running it.
const InfoEnv = "SPATE_INFO"

func (e *Env) printInfo(mode string, p *plan) error {
	switch mode {
	case "dot":
		_, err := os.Stdout.WriteString(p.graph.DOT())
		return err
	case "json", "1":
		data, err := p.graph.Marshal()
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(append(data, '\n'))
		return err
	}
	return fmt.Errorf("%s=%q: want json or dot", InfoEnv, mode)
}

// Plan returns the JobGraph of the dataflow declared so far as JSON, without
// running it or consuming the declarations.
func (e *Env) Plan(name string) ([]byte, error) {
	p, err := e.plan(name, e.nodes)
	if err != nil {
		return nil, err
	}
	return p.graph.Marshal()
}
