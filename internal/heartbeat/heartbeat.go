// Package heartbeat decides one side of a heartbeat link: when to send the
// next heartbeat, and which peers have been silent past the timeout and
// count as lost. It is the pure core of the JobManager's watch over its
// TaskManagers and of a TaskManager's watch over its JobManager, as Flink's
// HeartbeatManager is: events in (a peer added, a message heard from it,
// the clock's tick), effects out (send, lost). It has no sockets, no
// goroutines and no clock of its own; its drivers pass the time in.
//
// Flink's keys set the two durations: heartbeat.interval (how often both
// sides send) and heartbeat.timeout (how long a peer may stay silent).
// Any message from a peer counts as a sign of life, not only heartbeats.
package heartbeat

import (
	"fmt"
	"time"
)

// Config holds a link's durations. Timeout must be longer than Interval.
type Config struct {
	// Interval is how often heartbeats are sent.
	Interval time.Duration
	// Timeout is how long a peer may stay silent before it is lost.
	Timeout time.Duration
}

// Validate tells whether c can drive a Monitor, naming Flink's keys.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("heartbeat.interval (%v) must be positive", c.Interval)
	case c.Timeout <= c.Interval:
		return fmt.Errorf("heartbeat.timeout (%v) must be longer than heartbeat.interval (%v)", c.Timeout, c.Interval)
	}
	return nil
}

// Monitor watches the peers of one side of a link, each identified by a
// K. Its methods take the current time; it must be used from one
// goroutine (or under its owner's lock).
type Monitor[K comparable] struct {
	cfg Config
	// sent is when heartbeats were last sent; zero before the first.
	sent time.Time
	// heard is when each peer was last heard from.
	heard map[K]time.Time
	// order lists the peers as added, so that losses come out in a
	// stable order.
	order []K
}

// Effects is what a Tick asks its driver to do.
type Effects[K comparable] struct {
	// Send asks for a heartbeat to every peer.
	Send bool
	// Lost are the peers silent past the timeout, in the order they were
	// added. The Monitor has already forgotten them.
	Lost []Loss[K]
}

// Loss is a peer lost for its silence.
type Loss[K comparable] struct {
	Peer K
	// Silent is how long nothing was heard from the peer.
	Silent time.Duration
}

// Cause describes the loss for a log line or a failure, naming the key
// that set the limit.
func (l Loss[K]) Cause(timeout time.Duration) string {
	return fmt.Sprintf("no heartbeat for %v (heartbeat.timeout is %v)", l.Silent.Round(time.Millisecond), timeout)
}

// New returns a Monitor with no peers. It panics if cfg is not valid
// (Config.Validate): the configuration is checked where it is read.
func New[K comparable](cfg Config) *Monitor[K] {
	if err := cfg.Validate(); err != nil {
		panic("heartbeat.New: " + err.Error())
	}
	return &Monitor[K]{cfg: cfg, heard: make(map[K]time.Time)}
}

// Config returns the Monitor's durations.
func (m *Monitor[K]) Config() Config { return m.cfg }

// Add starts watching peer, as heard from at now (it has just
// registered). Adding a watched peer only counts as hearing from it.
func (m *Monitor[K]) Add(now time.Time, peer K) {
	if _, ok := m.heard[peer]; !ok {
		m.order = append(m.order, peer)
	}
	m.heard[peer] = now
}

// Heard records a sign of life of peer at now. It reports false, and does
// nothing, for a peer not watched (never added, removed, or lost): a late
// message does not bring a lost peer back.
func (m *Monitor[K]) Heard(now time.Time, peer K) bool {
	last, ok := m.heard[peer]
	if !ok {
		return false
	}
	if now.After(last) {
		m.heard[peer] = now
	}
	return true
}

// Remove stops watching peer (it left, or was lost for another reason).
func (m *Monitor[K]) Remove(peer K) {
	if _, ok := m.heard[peer]; !ok {
		return
	}
	delete(m.heard, peer)
	for i, p := range m.order {
		if p == peer {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
}

// Silent returns how long peer has been silent at now, and whether it is
// watched.
func (m *Monitor[K]) Silent(now time.Time, peer K) (time.Duration, bool) {
	last, ok := m.heard[peer]
	if !ok {
		return 0, false
	}
	return max(now.Sub(last), 0), true
}

// Deadline returns when peer will count as lost if nothing is heard from
// it before, and whether it is watched.
func (m *Monitor[K]) Deadline(peer K) (time.Time, bool) {
	last, ok := m.heard[peer]
	if !ok {
		return time.Time{}, false
	}
	return last.Add(m.cfg.Timeout), true
}

// Len returns the number of peers watched.
func (m *Monitor[K]) Len() int { return len(m.order) }

// Tick does what is due at now: heartbeats when an interval has passed
// since the last were sent (at the first Tick too), and the peers silent
// for longer than the timeout, which it forgets.
func (m *Monitor[K]) Tick(now time.Time) Effects[K] {
	var e Effects[K]
	if m.sent.IsZero() || now.Sub(m.sent) >= m.cfg.Interval {
		m.sent, e.Send = now, true
	}
	kept := m.order[:0]
	for _, p := range m.order {
		if silent := now.Sub(m.heard[p]); silent > m.cfg.Timeout {
			e.Lost = append(e.Lost, Loss[K]{Peer: p, Silent: silent})
			delete(m.heard, p)
			continue
		}
		kept = append(kept, p)
	}
	clear(m.order[len(kept):])
	m.order = kept
	return e
}

// Next returns when Tick will next have something to do: the next
// heartbeat, or the earliest deadline of a peer (which is lost once
// strictly past it). Before the first Tick it returns the zero time: tick
// now.
func (m *Monitor[K]) Next() time.Time {
	if m.sent.IsZero() {
		return time.Time{}
	}
	next := m.sent.Add(m.cfg.Interval)
	for _, p := range m.order {
		if d := m.heard[p].Add(m.cfg.Timeout); d.Before(next) {
			next = d
		}
	}
	return next
}
