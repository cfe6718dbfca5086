package network

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/spate-dev/spate/internal/exec"
)

// sendStream is an outbound stream: a forwarder goroutine moves messages
// from src to the peer's outgoing queue, one credit each.
type sendStream struct {
	id   uint32
	src  <-chan exec.Msg
	ends int

	mu     sync.Mutex
	credit uint64        // messages the receiver lets us send now
	wake   chan struct{} // cap 1: credit arrived

	pushedLast bool // the last frame is queued; under the peer's outq.mu
}

// grant adds n credits; the connection reader calls it for a CREDIT frame.
func (s *sendStream) grant(n uint32) error {
	s.mu.Lock()
	if s.credit+uint64(n) > math.MaxUint32 {
		s.mu.Unlock()
		return protoErr("stream %d: peer granted more than %d credits", s.id, uint32(math.MaxUint32))
	}
	s.credit += uint64(n)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// tryAcquire takes one credit if there is one.
func (s *sendStream) tryAcquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.credit > 0 {
		s.credit--
		return true
	}
	return false
}

// acquire takes one credit, waiting for it; false when ctx ends first.
func (s *sendStream) acquire(ctx context.Context) bool {
	for {
		s.mu.Lock()
		if s.credit > 0 {
			s.credit--
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return false
		}
	}
}

// forward is the goroutine of a send stream.
func (r *run) forward(p *peer, s *sendStream) {
	defer r.wg.Done()
	maxBatch := r.e.cfg.MaxFrame - streamBodyLen
	left := s.ends
	// The forwarder wakes the connection's writer for the frames it
	// queued only before it blocks (and when it ends): the writer is then
	// the goroutine readied last, which runs first, before the producer
	// that taking from src may have readied.
	defer p.q.signal()
	for left > 0 {
		// Credit first, then the message: without credit the forwarder
		// stops reading src, which fills and blocks the producer.
		if !s.tryAcquire() {
			p.q.signal()
			if !s.acquire(r.ctx) {
				return
			}
		}
		var m exec.Msg
		var ok bool
		select {
		case m, ok = <-s.src:
		default:
			p.q.signal()
			select {
			case m, ok = <-s.src:
			case <-r.ctx.Done():
				return
			}
		}
		if !ok {
			r.fail(fmt.Errorf("network: send stream %d to worker %q: source channel closed after %d of %d ends", s.id, p.id, s.ends-left, s.ends))
			return
		}
		f := frame{stream: s.id, channel: m.Channel}
		switch m.Kind {
		case exec.MsgData:
			f.typ = frameData
			switch b := m.Batch.(type) {
			case []byte:
				f.batch = b
			case nil:
			default:
				r.fail(fmt.Errorf("network: send stream %d to worker %q: batch of type %T, want []byte", s.id, p.id, m.Batch))
				return
			}
			if len(f.batch) > maxBatch {
				r.fail(fmt.Errorf("network: send stream %d to worker %q: batch of %d bytes exceeds the frame limit of %d bytes", s.id, p.id, len(f.batch), maxBatch))
				return
			}
		case exec.MsgWatermark:
			f.typ = frameWatermark
			f.wm = m.WM
		case exec.MsgIdle:
			f.typ = frameIdle
		case exec.MsgBarrier:
			f.typ = frameBarrier
			f.id = m.WM
		case exec.MsgEnd:
			f.typ = frameEnd
			left--
		default:
			r.fail(fmt.Errorf("network: send stream %d to worker %q: unknown message kind %d", s.id, p.id, m.Kind))
			return
		}
		p.q.push(s, f, left == 0)
	}
}

// recvStream is an inbound stream. The connection reader never blocks on
// it: it appends to q, which holds at most Credits messages because the
// sender may have no more in flight; a deliverer goroutine moves them into
// dst and grants a credit for each.
type recvStream struct {
	id   uint32
	dst  chan<- exec.Msg
	ends int
	q    chan exec.Msg // cap Credits

	// avail is how many more messages the sender may send: Credits at
	// connection, -1 per message received, +1 per message delivered.
	avail atomic.Int64
	// held counts messages received and not yet delivered into dst.
	held atomic.Int64
	// endsSeen counts END frames received; only the reader touches it.
	endsSeen int
}

// deliver is the goroutine of a receive stream.
func (r *run) deliver(s *recvStream, p *peer) {
	defer r.wg.Done()
	left := s.ends
	for {
		var m exec.Msg
		select {
		case m = <-s.q:
		case <-r.ctx.Done():
			return
		}
		select {
		case s.dst <- m:
		case <-r.ctx.Done():
			return
		}
		s.held.Add(-1)
		if m.Kind == exec.MsgEnd {
			if left--; left == 0 {
				return
			}
		}
		s.avail.Add(1)
		p.q.credit(s.id)
	}
}
