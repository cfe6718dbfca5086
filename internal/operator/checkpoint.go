package operator

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/spate-dev/spate/internal/codec"
	"github.com/spate-dev/spate/internal/keygroup"
	"github.com/spate-dev/spate/internal/snapshot"
)

// Snapshots of keyed state (see package snapshot for the flow). At a
// barrier each state handle freezes its map (cowMap: O(1), the task's
// writes go to an overlay until the snapshot is encoded; values are not to
// be changed in place once stored, as with Flink's heap state backend;
// list state only ever appends, and the per-key maps of map state are
// copied on their first write after the freeze), and the frozen map is
// encoded afterwards, off the task's goroutine, one entry per state and
// key group:
//
//	entry "s/<state name>", key group g: record*
//	record = key:bytes window.start:varint window.end:varint value:bytes
//
// in the codecs of the key and value types (internal/codec). Timers are
// entries "t/event" and "t/proc" with records key, window, ts, own. A
// restore hands a state its entries when the function declares it (in
// Open), and re-registers the timers at once.

// keyCoder encodes the keys of one keyed operator and tells their key
// groups.
type keyCoder[K comparable] struct {
	c      codec.Codec[K]
	err    error
	hash   func(K) uint32
	maxPar int
}

func newKeyCoder[K comparable](maxPar int) *keyCoder[K] {
	if maxPar <= 0 {
		maxPar = keygroup.DefaultMaxParallelism
	}
	c, err := codec.For[K]()
	kc := &keyCoder[K]{c: c, err: err, maxPar: maxPar}
	if err == nil {
		kc.hash = keygroup.Hasher[K](c.Append)
	}
	return kc
}

// groups collects the records of one state, per key group.
type groups[K comparable] struct {
	kc      *keyCoder[K]
	bufs    map[int32]*snapshot.Buffer
	scratch []byte
}

func (kc *keyCoder[K]) groups() *groups[K] {
	return &groups[K]{kc: kc, bufs: map[int32]*snapshot.Buffer{}}
}

// record starts the record of key k and window ns, returning the buffer to
// append the value to.
func (g *groups[K]) record(k K, ns Window) *snapshot.Buffer {
	kg := int32(keygroup.Of(g.kc.hash(k), g.kc.maxPar))
	b := g.bufs[kg]
	if b == nil {
		b = &snapshot.Buffer{}
		g.bufs[kg] = b
	}
	g.scratch = g.kc.c.Append(g.scratch[:0], k)
	b.Bytes(g.scratch)
	b.Int(ns.Start)
	b.Int(ns.End)
	return b
}

// entries returns the collected records as entries called name, by key
// group.
func (g *groups[K]) entries(name string) []snapshot.Entry {
	kgs := slices.Sorted(maps.Keys(g.bufs))
	es := make([]snapshot.Entry, 0, len(kgs))
	for _, kg := range kgs {
		es = append(es, snapshot.Entry{Name: name, KeyGroup: kg, Data: g.bufs[kg].B})
	}
	return es
}

// records calls f for each record of an entry written by groups.
func (kc *keyCoder[K]) records(e snapshot.Entry, f func(k K, ns Window, r *snapshot.Reader) error) error {
	if kc.err != nil {
		return fmt.Errorf("restore state %q: key type %T has no codec: %w", e.Name, *new(K), kc.err)
	}
	r := snapshot.NewReader(e.Data)
	for !r.AtEnd() {
		kb := r.Bytes()
		ns := Window{Start: r.Int(), End: r.Int()}
		if r.Err != nil {
			return fmt.Errorf("restore state %q: %w", e.Name, r.Err)
		}
		k, rest, err := kc.c.Decode(kb)
		if err != nil || len(rest) != 0 {
			return fmt.Errorf("restore state %q: decode key: %v (%d bytes left)", e.Name, err, len(rest))
		}
		if err := f(k, ns, r); err != nil {
			return fmt.Errorf("restore state %q: %w", e.Name, err)
		}
		if r.Err != nil {
			return fmt.Errorf("restore state %q: %w", e.Name, r.Err)
		}
	}
	return nil
}

// valueCoder encodes values of one type in state.
type valueCoder[V any] struct {
	c       codec.Codec[V]
	err     error
	scratch []byte
}

func newValueCoder[V any]() *valueCoder[V] {
	c, err := codec.For[V]()
	return &valueCoder[V]{c: c, err: err}
}

func (vc *valueCoder[V]) put(b *snapshot.Buffer, v V) {
	vc.scratch = vc.c.Append(vc.scratch[:0], v)
	b.Bytes(vc.scratch)
}

func (vc *valueCoder[V]) get(r *snapshot.Reader) (V, error) {
	b := r.Bytes()
	if r.Err != nil {
		var zero V
		return zero, r.Err
	}
	v, rest, err := vc.c.Decode(b)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%d bytes left after a value", len(rest))
	}
	return v, err
}

// check tells why the state cannot be snapshotted, nil if it can.
func check[K comparable, V any](kc *keyCoder[K], vc *valueCoder[V]) error {
	if kc.err != nil {
		return fmt.Errorf("key type %T has no codec: %w", *new(K), kc.err)
	}
	if vc.err != nil {
		return fmt.Errorf("value type %T has no codec: %w", *new(V), vc.err)
	}
	return nil
}

// keyedState is a keyed state handle's part in checkpoints.
type keyedState[K comparable] interface {
	// capture copies the state on the task's goroutine and returns what
	// encodes the copy as entries called name.
	capture(kc *keyCoder[K], name string) (func() ([]snapshot.Entry, error), error)
	// restore adds the records of the state's entries.
	restore(kc *keyCoder[K], es []snapshot.Entry) error
}

func (v *ValueState[K, V]) capture(kc *keyCoder[K], name string) (func() ([]snapshot.Entry, error), error) {
	vc := newValueCoder[V]()
	if err := check(kc, vc); err != nil {
		return nil, err
	}
	m, release := v.m.freeze()
	return func() ([]snapshot.Entry, error) {
		defer release()
		g := kc.groups()
		for sc, x := range m {
			vc.put(g.record(sc.key, sc.ns), x)
		}
		return g.entries(name), nil
	}, nil
}

func (v *ValueState[K, V]) restore(kc *keyCoder[K], es []snapshot.Entry) error {
	vc := newValueCoder[V]()
	for _, e := range es {
		if err := kc.records(e, func(k K, ns Window, r *snapshot.Reader) error {
			x, err := vc.get(r)
			v.m.set(scope[K]{key: k, ns: ns}, x)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

func (l *ListState[K, V]) capture(kc *keyCoder[K], name string) (func() ([]snapshot.Entry, error), error) {
	vc := newValueCoder[V]()
	if err := check(kc, vc); err != nil {
		return nil, err
	}
	// Add only appends: the frozen slice headers keep their contents.
	m, release := l.m.freeze()
	return func() ([]snapshot.Entry, error) {
		defer release()
		g := kc.groups()
		for sc, xs := range m {
			b := g.record(sc.key, sc.ns)
			b.Uint(uint64(len(xs)))
			for _, x := range xs {
				vc.put(b, x)
			}
		}
		return g.entries(name), nil
	}, nil
}

func (l *ListState[K, V]) restore(kc *keyCoder[K], es []snapshot.Entry) error {
	vc := newValueCoder[V]()
	for _, e := range es {
		if err := kc.records(e, func(k K, ns Window, r *snapshot.Reader) error {
			xs := make([]V, r.Len())
			for i := range xs {
				x, err := vc.get(r)
				if err != nil {
					return err
				}
				xs[i] = x
			}
			l.m.set(scope[K]{key: k, ns: ns}, xs)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func (m *MapState[K, MK, MV]) capture(kc *keyCoder[K], name string) (func() ([]snapshot.Entry, error), error) {
	mkc, mvc := newValueCoder[MK](), newValueCoder[MV]()
	if err := check(kc, mkc); err != nil {
		return nil, err
	}
	if mvc.err != nil {
		return nil, fmt.Errorf("value type %T has no codec: %w", *new(MV), mvc.err)
	}
	// Put and Remove copy a key's map that the freeze may share.
	cp, release := m.m.freeze()
	return func() ([]snapshot.Entry, error) {
		defer release()
		g := kc.groups()
		for sc, km := range cp {
			mm := km.m
			b := g.record(sc.key, sc.ns)
			b.Uint(uint64(len(mm)))
			for k, v := range mm {
				mkc.put(b, k)
				mvc.put(b, v)
			}
		}
		return g.entries(name), nil
	}, nil
}

func (m *MapState[K, MK, MV]) restore(kc *keyCoder[K], es []snapshot.Entry) error {
	mkc, mvc := newValueCoder[MK](), newValueCoder[MV]()
	for _, e := range es {
		if err := kc.records(e, func(k K, ns Window, r *snapshot.Reader) error {
			n := r.Len()
			mm := make(map[MK]MV, n)
			for range n {
				mk, err := mkc.get(r)
				if err != nil {
					return err
				}
				mv, err := mvc.get(r)
				if err != nil {
					return err
				}
				mm[mk] = mv
			}
			m.m.set(scope[K]{key: k, ns: ns}, keyMap[MK, MV]{m: mm, gen: m.m.gen})
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func (r *ReducingState[K, V]) capture(kc *keyCoder[K], name string) (func() ([]snapshot.Entry, error), error) {
	return r.v.capture(kc, name)
}

func (r *ReducingState[K, V]) restore(kc *keyCoder[K], es []snapshot.Entry) error {
	return r.v.restore(kc, es)
}

func (a *AggregatingState[K, T, A, O]) capture(kc *keyCoder[K], name string) (func() ([]snapshot.Entry, error), error) {
	return a.v.capture(kc, name)
}

func (a *AggregatingState[K, T, A, O]) restore(kc *keyCoder[K], es []snapshot.Entry) error {
	return a.v.restore(kc, es)
}

// stateEntryPrefix starts the entry names of keyed state handles.
const stateEntryPrefix = "s/"

// captureStates captures every state handle of the runtime.
func (rt *keyedRuntime[K]) captureStates() ([]func() ([]snapshot.Entry, error), error) {
	var encs []func() ([]snapshot.Entry, error)
	for _, name := range slices.Sorted(maps.Keys(rt.states)) {
		ks, ok := rt.states[name].(keyedState[K])
		if !ok {
			return nil, fmt.Errorf("state %q of type %T cannot be checkpointed", name, rt.states[name])
		}
		enc, err := ks.capture(rt.kc, stateEntryPrefix+name)
		if err != nil {
			return nil, fmt.Errorf("state %q: %w", name, err)
		}
		encs = append(encs, enc)
	}
	// States restored but not declared again (yet) are kept as they were.
	for _, name := range slices.Sorted(maps.Keys(rt.restored)) {
		es := rt.restored[name]
		encs = append(encs, func() ([]snapshot.Entry, error) { return es, nil })
	}
	return encs, nil
}

// restoreState hands a newly declared state its restored entries.
func (rt *keyedRuntime[K]) restoreState(name string, st any) {
	es, ok := rt.restored[name]
	if !ok {
		return
	}
	delete(rt.restored, name)
	ks, ok := st.(keyedState[K])
	if !ok {
		panic(fmt.Sprintf("spate: state %q of type %T cannot be restored", name, st))
	}
	if err := ks.restore(rt.kc, es); err != nil {
		panic(fmt.Sprintf("spate: restore state %q: the restored state does not decode as %T (did its type change since the savepoint or checkpoint? give the new type a new state name): %v", name, st, err))
	}
}

// captureTimers copies the pending timers of s.
func (s *timerService[K]) capture(kc *keyCoder[K]) (func() ([]snapshot.Entry, error), error) {
	event := slices.Collect(maps.Keys(s.event.pos))
	proc := slices.Collect(maps.Keys(s.proc))
	if len(event)+len(proc) > 0 && kc.err != nil {
		return nil, fmt.Errorf("timers: key type %T has no codec: %w", *new(K), kc.err)
	}
	return func() ([]snapshot.Entry, error) {
		var es []snapshot.Entry
		for _, part := range []struct {
			name string
			ts   []timerKey[K]
		}{{"t/event", event}, {"t/proc", proc}} {
			// By time, so that a restore registers them in firing order.
			slices.SortFunc(part.ts, func(a, b timerKey[K]) int { return cmp.Compare(a.ts, b.ts) })
			g := kc.groups()
			for _, t := range part.ts {
				b := g.record(t.key, t.ns)
				b.Int(t.ts)
				own := uint64(0)
				if t.own {
					own = 1
				}
				b.Uint(own)
			}
			es = append(es, g.entries(part.name)...)
		}
		return es, nil
	}, nil
}

// restore re-registers the timers of entries "t/event" and "t/proc".
func (s *timerService[K]) restore(kc *keyCoder[K], e snapshot.Entry) error {
	return kc.records(e, func(k K, ns Window, r *snapshot.Reader) error {
		t := timerKey[K]{key: k, ns: ns, ts: r.Int(), own: r.Uint() == 1}
		if e.Name == "t/event" {
			s.registerEvent(t)
		} else {
			s.registerProc(t)
		}
		return r.Err
	})
}

// snapshotKeyed captures the keyed state and timers of a keyed context,
// plus what extra captures (operator-specific state).
func (c *KeyedContext[K, O]) snapshotKeyed(extra ...func() ([]snapshot.Entry, error)) (func() ([]snapshot.Entry, error), error) {
	encs, err := c.rt.captureStates()
	if err != nil {
		return nil, err
	}
	tenc, err := c.timers.capture(c.rt.kc)
	if err != nil {
		return nil, err
	}
	encs = append(encs, tenc)
	encs = append(encs, extra...)
	return func() ([]snapshot.Entry, error) {
		var all []snapshot.Entry
		for _, enc := range encs {
			es, err := enc()
			if err != nil {
				return nil, err
			}
			all = append(all, es...)
		}
		return all, nil
	}, nil
}

// restoreKeyed restores timers at once and keeps the states' entries for
// when the function declares them; it returns the entries it does not
// know, for the operator.
func (c *KeyedContext[K, O]) restoreKeyed(es []snapshot.Entry) ([]snapshot.Entry, error) {
	var rest []snapshot.Entry
	for _, e := range es {
		switch {
		case e.Name == "t/event" || e.Name == "t/proc":
			if err := c.timers.restore(c.rt.kc, e); err != nil {
				return nil, err
			}
		case len(e.Name) > len(stateEntryPrefix) && e.Name[:len(stateEntryPrefix)] == stateEntryPrefix:
			name := e.Name[len(stateEntryPrefix):]
			if c.rt.restored == nil {
				c.rt.restored = map[string][]snapshot.Entry{}
			}
			c.rt.restored[name] = append(c.rt.restored[name], e)
		default:
			rest = append(rest, e)
		}
	}
	return rest, nil
}
