package operator

import (
	"maps"
	"sync/atomic"
)

// cowMap is the map of a keyed state that a snapshot reads on another
// goroutine while the task goes on writing it, without copying it at the
// barrier (copy-on-write, as Flink's heap backend's CopyOnWriteStateMap).
//
// freeze hands the snapshot the map as it is (base) and, until the
// snapshot releases it, the task's writes go to an overlay (over) that
// reads consult first; deletions are tombstones there. The first write
// after the release folds the overlay into base, so the barrier's cost is
// O(1) and the fold's O(keys written during the snapshot). While no
// snapshot is being read, reads and writes go straight to base: the
// record path pays a nil check.
//
//	        freeze              release (async writer done)
//	direct ────────► overlaid ─────────────────────────────► direct
//	   ▲                │ first write after the release folds   │
//	   └────────────────┴────────────────────────────────────────┘
//
// A freeze while the previous snapshot still holds base (it was never
// encoded, or is still being written) gives the new snapshot a copy of the
// merged view instead, O(keys): the old base is never written again.
//
// Values are shallow-copied: as with every keyed state, a value must not be
// changed in place once stored, except where its owner knows it was made
// after the latest freeze (gen).
type cowMap[K comparable, V any] struct {
	base   map[K]V
	frozen *frozenMap[K, V] // the snapshot reading base; nil when none
	over   map[K]cowEntry[V]
	// gen counts the freezes: a value made at the current gen was stored
	// after the latest freeze and no snapshot can see it.
	gen uint64
}

type cowEntry[V any] struct {
	v       V
	deleted bool
}

// frozenMap is a snapshot's read-only view of a cowMap.
type frozenMap[K comparable, V any] struct {
	m    map[K]V
	done atomic.Bool // set by the snapshot's goroutine when it is done reading m
}

func makeCOWMap[K comparable, V any]() cowMap[K, V] {
	return cowMap[K, V]{base: map[K]V{}}
}

// get returns the value of k.
func (c *cowMap[K, V]) get(k K) (V, bool) {
	if c.frozen != nil {
		if e, ok := c.over[k]; ok {
			return e.v, !e.deleted
		}
	}
	v, ok := c.base[k]
	return v, ok
}

// empty reports whether the map has no keys; it may say false for a map
// whose keys were all deleted during a snapshot.
func (c *cowMap[K, V]) empty() bool { return len(c.base) == 0 && len(c.over) == 0 }

// set sets the value of k.
func (c *cowMap[K, V]) set(k K, v V) {
	if c.frozen == nil {
		c.base[k] = v
		return
	}
	c.setFrozen(k, cowEntry[V]{v: v})
}

// remove deletes k.
func (c *cowMap[K, V]) remove(k K) {
	if c.frozen == nil {
		delete(c.base, k)
		return
	}
	c.setFrozen(k, cowEntry[V]{deleted: true})
}

// setFrozen is set and remove while a snapshot may read base: out of line,
// so that the direct path inlines.
func (c *cowMap[K, V]) setFrozen(k K, e cowEntry[V]) {
	if !c.thaw() {
		c.over[k] = e
		return
	}
	if e.deleted {
		delete(c.base, k)
	} else {
		c.base[k] = e.v
	}
}

// thaw folds the overlay into base if the snapshot has released it, and
// reports whether base can be written.
func (c *cowMap[K, V]) thaw() bool {
	if !c.frozen.done.Load() {
		return false
	}
	c.fold(c.base)
	c.frozen = nil
	return true
}

// fold applies the overlay to m and empties it.
func (c *cowMap[K, V]) fold(m map[K]V) {
	for k, e := range c.over {
		if e.deleted {
			delete(m, k)
		} else {
			m[k] = e.v
		}
	}
	clear(c.over)
}

// freeze returns the map as it is now, for another goroutine to read until
// it calls release (once, also if it gives up); the task goes on using c
// meanwhile.
func (c *cowMap[K, V]) freeze() (m map[K]V, release func()) {
	if c.frozen != nil && !c.thaw() {
		// The previous snapshot still holds base: this one gets a
		// copy.
		nb := maps.Clone(c.base)
		c.fold(nb)
		c.base = nb
	}
	if c.over == nil {
		c.over = map[K]cowEntry[V]{}
	}
	f := &frozenMap[K, V]{m: c.base}
	c.frozen = f
	c.gen++
	return f.m, func() { f.done.Store(true) }
}
