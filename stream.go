package spate

import (
	"fmt"
	"reflect"

	"github.com/spate-dev/spate/internal/operator"
)

// Stream is a stream of records of type T. It is a handle on the operator that
// produces it; methods like Name and Parallelism configure that operator and
// return the stream for chaining.
type Stream[T any] struct {
	env  *Env
	refs []ref // producers: one, or several for a union
}

// ref is one producer of a stream: a node's main output (side == 0) or one of
// its side outputs (side == i+1), optionally with an explicit partitioning
// for the next operator.
type ref struct {
	n    *node
	side int
	part partitioning
}

type partitioning uint8

const (
	partAuto partitioning = iota // forward if parallelism is equal, else rebalance
	partForward
	partRebalance
	partBroadcast
	partHash
)

// node is one operator of the stream graph.
type node struct {
	id          int
	kind        string
	name        string
	uid         string
	parallelism int // 0: the Env's default
	noChain     bool
	inputs      []*edge
	out         operator.RecordType
	sides       []side
	// keyTypes holds the key types of keyed inputs; keys cross partitions.
	keyTypes []operator.RecordType
	build    func(in *operator.Instance) (*operator.Spec, error)
	// collect is set on a Collect sink, whose records a cluster sends
	// back to the client.
	collect collectTarget
}

// side is a side output of a node.
type side struct {
	tag string
	out operator.RecordType
}

// edge connects a producer ref to an input gate of a node.
type edge struct {
	from *node
	side int
	to   *node
	gate int
	part partitioning
	// hash is func(T) uint32 for partHash, T being the producer's type.
	hash any
}

func (e *Env) addNode(kind, name string, out operator.RecordType, build func(*operator.Instance) (*operator.Spec, error)) *node {
	e.nextID++
	n := &node{id: e.nextID, kind: kind, name: name, out: out, build: build}
	e.nodes = append(e.nodes, n)
	return n
}

// connect adds edges from every producer of s to gate of n. A keyed
// connection passes hash, which overrides the partitioning.
func connect[T any](s Stream[T], n *node, gate int, hash func(T) uint32) {
	for _, r := range s.refs {
		e := &edge{from: r.n, side: r.side, to: n, gate: gate, part: r.part}
		if hash != nil {
			e.part = partHash
			e.hash = hash
		}
		n.inputs = append(n.inputs, e)
	}
}

func newStream[T any](env *Env, n *node) Stream[T] {
	return Stream[T]{env: env, refs: []ref{{n: n}}}
}

// node returns the single operator producing s; configuring a union is an
// error.
func (s Stream[T]) node(what string) *node {
	if len(s.refs) != 1 || s.refs[0].side != 0 {
		panic(fmt.Sprintf("spate: %s applies to an operator; a union or side output has none of its own — apply it to the operator before the union", what))
	}
	return s.refs[0].n
}

// Env returns the environment the stream belongs to.
func (s Stream[T]) Env() *Env { return s.env }

// Name sets the name of the operator producing s, shown in plans, errors and
// metrics.
func (s Stream[T]) Name(name string) Stream[T] {
	s.node("Name").name = name
	return s
}

// UID sets the stable identity of the operator producing s; state is matched
// to operators by it across job versions.
func (s Stream[T]) UID(uid string) Stream[T] {
	s.node("UID").uid = uid
	return s
}

// Parallelism sets the number of parallel subtasks of the operator producing s.
func (s Stream[T]) Parallelism(n int) Stream[T] {
	if n < 1 {
		panic(fmt.Sprintf("spate: parallelism %d of %q must be at least 1", n, s.node("Parallelism").name))
	}
	s.node("Parallelism").parallelism = n
	return s
}

// DisableChaining keeps the operator producing s out of its neighbours'
// chains: it runs in its own subtasks.
func (s Stream[T]) DisableChaining() Stream[T] {
	s.node("DisableChaining").noChain = true
	return s
}

func (s Stream[T]) withPart(p partitioning) Stream[T] {
	refs := make([]ref, len(s.refs))
	for i, r := range s.refs {
		r.part = p
		refs[i] = r
	}
	return Stream[T]{env: s.env, refs: refs}
}

// Rebalance distributes s's records round-robin over the next operator's
// subtasks.
func (s Stream[T]) Rebalance() Stream[T] { return s.withPart(partRebalance) }

// Broadcast sends every record of s to every subtask of the next operator.
func (s Stream[T]) Broadcast() Stream[T] { return s.withPart(partBroadcast) }

// Forward sends subtask i's records to subtask i of the next operator, which
// must have the same parallelism.
func (s Stream[T]) Forward() Stream[T] { return s.withPart(partForward) }

// Union merges streams of the same type into one. Records keep their order
// per producer subtask; watermarks are min-combined.
func Union[T any](s Stream[T], others ...Stream[T]) Stream[T] {
	out := Stream[T]{env: s.env, refs: append([]ref(nil), s.refs...)}
	for _, o := range others {
		if o.env != s.env {
			panic("spate: Union of streams from different environments")
		}
		out.refs = append(out.refs, o.refs...)
	}
	return out
}

// OutputTag names a side output of type T. Operators emit to it with Emit;
// SideOutput returns the stream of what was emitted.
type OutputTag[T any] struct {
	ID string
}

// NewOutputTag returns a tag for a side output named id.
func NewOutputTag[T any](id string) OutputTag[T] {
	return OutputTag[T]{ID: id}
}

// SideOutput returns the stream of records that the operator producing s
// emitted to tag.
func SideOutput[T, O any](s Stream[O], tag OutputTag[T]) Stream[T] {
	n := s.node("SideOutput")
	for i, sd := range n.sides {
		if sd.tag == tag.ID {
			if sd.out.Type() != reflect.TypeFor[T]() {
				panic(fmt.Sprintf("spate: side output %q of %q has type %v, not %v", tag.ID, n.name, sd.out.Type(), reflect.TypeFor[T]()))
			}
			return Stream[T]{env: s.env, refs: []ref{{n: n, side: i + 1}}}
		}
	}
	n.sides = append(n.sides, side{tag: tag.ID, out: operator.TypeOf[T]()})
	return Stream[T]{env: s.env, refs: []ref{{n: n, side: len(n.sides)}}}
}

// Emit sends v to the side output tag of the operator whose context ctx is.
// Records for a tag nobody consumes are dropped.
func (tag OutputTag[T]) Emit(ctx SideEmitter, v T) {
	operator.EmitSide(ctx, tag.ID, v)
}

// SideEmitter is a context that can emit to side outputs: the contexts of
// process, window and co-process functions.
type SideEmitter = operator.SideEmitter
