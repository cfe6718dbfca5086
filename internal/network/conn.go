package network

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// Buffer sizes. The read buffer is smaller than a typical batch on purpose:
// bufio.Reader reads a request at least as big as its buffer straight into
// the caller's slice, so most of a large DATA frame skips the extra copy.
const (
	readBufSize  = 16 << 10
	writeBufSize = 64 << 10
)

// outq is the outgoing queue of one peer connection: frames pushed by the
// forwarders and credit grants added by the deliverers, drained by the
// connection's writer goroutine. It holds at most the credits the peer
// granted, so it needs no bound of its own.
type outq struct {
	mu      sync.Mutex
	frames  []frame
	credits map[uint32]uint32 // pending grants by stream
	corder  []uint32          // streams with pending grants, in order
	// sendsLeft counts send streams that still have frames to push;
	// recvsLeft counts receive streams still waiting for END frames. When
	// both are zero and the queue is empty, the writer half-closes.
	sendsLeft, recvsLeft int
	closed               bool          // half-closed: later pushes are dropped
	wake                 chan struct{} // cap 1
	// unsignaled tells that grantLater queued credits the writer was not
	// woken for; only the connection reader uses it.
	unsignaled bool
}

func newOutq(p *peer) *outq {
	q := &outq{credits: make(map[uint32]uint32), wake: make(chan struct{}, 1)}
	for _, s := range p.sends {
		if s.ends > 0 {
			q.sendsLeft++
		}
	}
	for _, s := range p.recvs {
		if s.ends > 0 {
			q.recvsLeft++
		}
	}
	return q
}

func (q *outq) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push queues f for s; last tells that it is the stream's last frame. It
// does not wake the writer: the forwarder signals when it is about to
// block.
func (q *outq) push(s *sendStream, f frame, last bool) {
	q.mu.Lock()
	if !q.closed {
		q.frames = append(q.frames, f)
	}
	if last {
		s.pushedLast = true
		q.sendsLeft--
	}
	q.mu.Unlock()
}

// grant queues n credits for stream.
func (q *outq) grant(stream uint32, n uint32) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	if _, ok := q.credits[stream]; !ok {
		q.corder = append(q.corder, stream)
	}
	q.credits[stream] += n
	q.mu.Unlock()
	q.signal()
}

func (q *outq) credit(stream uint32) { q.grant(stream, 1) }

// grantLater queues n credits for stream without waking the writer: the
// connection reader calls it and signals once it has no more buffered
// input (see serve).
func (q *outq) grantLater(stream uint32, n uint32) {
	q.mu.Lock()
	if !q.closed {
		if _, ok := q.credits[stream]; !ok {
			q.corder = append(q.corder, stream)
		}
		q.credits[stream] += n
	}
	q.mu.Unlock()
	q.unsignaled = true
}

// recvDone tells that a receive stream has received its last END.
func (q *outq) recvDone() {
	q.mu.Lock()
	q.recvsLeft--
	q.mu.Unlock()
	q.signal()
}

// sendsPending lists the send streams of p that have frames still to push.
func (q *outq) sendsPending(p *peer) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ids []string
	for _, s := range p.sends {
		if s.ends > 0 && !s.pushedLast {
			ids = append(ids, fmt.Sprint(s.id))
		}
	}
	return ids
}

type queueState uint8

const (
	queueItems queueState = iota
	queueEmpty
	queueFinished
)

// take moves the queued frames into frames and the pending grants into
// credits (as CREDIT frames).
func (q *outq) take(frames []frame, credits []frame) ([]frame, []frame, queueState) {
	q.mu.Lock()
	defer q.mu.Unlock()
	frames = append(frames, q.frames...)
	clear(q.frames)
	q.frames = q.frames[:0]
	for _, s := range q.corder {
		credits = append(credits, frame{typ: frameCredit, stream: s, n: q.credits[s]})
		delete(q.credits, s)
	}
	q.corder = q.corder[:0]
	switch {
	case len(frames) > 0 || len(credits) > 0:
		return frames, credits, queueItems
	case q.sendsLeft == 0 && q.recvsLeft == 0:
		q.closed = true
		return frames, credits, queueFinished
	}
	return frames, credits, queueEmpty
}

// ErrPeerLost is wrapped by the error of a data connection that broke
// (the peer's process ended, the network failed): the consequence of a
// failure elsewhere rather than a cause, which the JobManager tells apart
// when it picks a job's root exception.
var ErrPeerLost = errors.New("data connection lost")

// lostError is a broken connection's error; it matches ErrPeerLost.
type lostError struct{ error }

func (e lostError) Unwrap() error        { return e.error }
func (e lostError) Is(target error) bool { return target == ErrPeerLost }

// connErr describes a failure of the connection to p.
func connErr(p *peer, err error) error {
	if errors.Is(err, errProtocol) {
		return fmt.Errorf("data connection to worker %q (%s): %w", p.id, p.remote, err)
	}
	return lostError{fmt.Errorf("data connection to worker %q (%s) lost: %w", p.id, p.remote, err)}
}

// dialPeer connects to p, retrying refused connections until DialTimeout, and
// serves the connection.
func (r *run) dialPeer(p *peer) {
	defer r.wg.Done()
	e := r.e
	deadline := time.Now().Add(e.cfg.DialTimeout)
	backoff := 10 * time.Millisecond
	var c net.Conn
	for {
		d := net.Dialer{Deadline: deadline}
		var err error
		c, err = d.DialContext(r.ctx, "tcp", p.addr)
		if err == nil {
			break
		}
		if r.ctx.Err() != nil {
			return
		}
		e.dialRetries.Add(1)
		if time.Now().Add(backoff).After(deadline) {
			r.fail(fmt.Errorf("network: worker %q: connect to worker %q (%s) within %v: %w", e.cfg.ID, p.id, p.addr, e.cfg.DialTimeout, err))
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
	if e.cfg.TLS != nil {
		tc, err := r.secureOut(p, c, deadline)
		if err != nil {
			if r.ctx.Err() == nil {
				r.fail(err)
			}
			return
		}
		c = tc
	}
	if !e.track(c) {
		c.Close()
		return
	}
	br, err := r.handshakeOut(p, c, deadline)
	if err != nil {
		e.untrack(c)
		if r.ctx.Err() == nil {
			r.fail(err)
		}
		return
	}
	e.mu.Lock()
	p.connected = true
	p.remote = p.addr
	e.mu.Unlock()
	e.dialed.Add(1)
	r.serve(p, c, br)
}

// handshakeOut sends our HELLO and checks the peer's answer.
func (r *run) handshakeOut(p *peer, c net.Conn, deadline time.Time) (*bufio.Reader, error) {
	e := r.e
	fail := func(format string, args ...any) error {
		return fmt.Errorf("network: handshake of worker %q with worker %q (%s): %s", e.cfg.ID, p.id, p.addr, fmt.Sprintf(format, args...))
	}
	c.SetDeadline(deadline)
	hello := frame{typ: frameHello, version: protocolVersion, from: e.cfg.ID, to: p.id, attempt: e.cfg.Attempt}
	if _, err := c.Write(appendFrame(nil, &hello)); err != nil {
		return nil, fail("%v", err)
	}
	br := bufio.NewReaderSize(c, readBufSize)
	var scratch []byte
	f, err := readFrame(br, helloLimit, &scratch)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, fail("no HELLO within %v", e.cfg.DialTimeout)
	case e.cfg.TLS != nil && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		// Past TLS, the peer is the job's worker: it died.
		return nil, lostError{fail("the peer's connection ended before its HELLO: %v", err)}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fail("the peer closed the connection (it rejected the handshake; see its error)")
	case err != nil:
		return nil, fail("%v (is a spate data endpoint listening there?)", err)
	case f.typ != frameHello:
		return nil, fail("expected a HELLO frame, got %v", f.typ)
	case f.version != protocolVersion:
		return nil, fail("the peer speaks data protocol version %d, this worker speaks version %d", f.version, protocolVersion)
	case f.from != p.id:
		return nil, fail("reached worker %q instead", f.from)
	case f.to != e.cfg.ID:
		return nil, fail("the peer answered worker %q", f.to)
	case f.attempt != e.cfg.Attempt:
		return nil, fail("%s", attemptMismatch(f.attempt, e.cfg.Attempt))
	}
	c.SetDeadline(time.Time{})
	return br, nil
}

// accept accepts the connections of the peers that dial this endpoint until
// all are connected.
func (r *run) accept() {
	defer r.wg.Done()
	e := r.e
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if r.ctx.Err() != nil || r.acceptDone.Load() {
				return
			}
			r.fail(fmt.Errorf("network: worker %q: accept on %s: %w", e.cfg.ID, e.addr, err))
			return
		}
		c = e.secureIn(c)
		if !e.track(c) {
			c.Close()
			return
		}
		r.wg.Add(1)
		go r.handshakeIn(c)
	}
}

// handshakeIn reads the HELLO of an accepted connection, answers it, and
// serves the connection if it comes from an expected peer.
func (r *run) handshakeIn(c net.Conn) {
	defer r.wg.Done()
	e := r.e
	remote := c.RemoteAddr().String()
	certID, err := r.handshakeTLSIn(c)
	if err != nil {
		// A stranger (or a worker of another job): drop it, the run goes on.
		e.untrack(c)
		e.log.Warn("data connection refused: TLS handshake failed", "remote", remote, "err", err)
		return
	}
	p, br, err := r.handshakeInErr(c, remote, certID)
	if err != nil {
		e.untrack(c)
		if r.ctx.Err() == nil {
			r.fail(err)
		}
		return
	}
	e.accepted.Add(1)
	r.serve(p, c, br)
}

func (r *run) handshakeInErr(c net.Conn, remote, certID string) (*peer, *bufio.Reader, error) {
	e := r.e
	fail := func(who, format string, args ...any) error {
		return fmt.Errorf("network: worker %q: handshake of connection from %s%s: %s", e.cfg.ID, who, remote, fmt.Sprintf(format, args...))
	}
	c.SetDeadline(time.Now().Add(e.cfg.DialTimeout))
	br := bufio.NewReaderSize(c, readBufSize)
	var scratch []byte
	f, err := readFrame(br, helloLimit, &scratch)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, nil, fail("", "no HELLO within %v", e.cfg.DialTimeout)
	case e.cfg.TLS != nil && err != nil && !errors.Is(err, errProtocol):
		// A worker of the job (its certificate says so) whose connection
		// broke before its HELLO: it died, a consequence.
		return nil, nil, lostError{fail("", "connection lost before a complete HELLO: %v", err)}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, nil, fail("", "closed before a complete HELLO")
	case err != nil:
		return nil, nil, fail("", "%v (not a spate data connection?)", err)
	case f.typ != frameHello:
		return nil, nil, fail("", "expected a HELLO frame, got %v", f.typ)
	}
	who := fmt.Sprintf("worker %q at ", f.from)
	// Answer first, so that the dialer can tell a version mismatch itself.
	hello := frame{typ: frameHello, version: protocolVersion, from: e.cfg.ID, to: f.from, attempt: e.cfg.Attempt}
	if _, err := c.Write(appendFrame(nil, &hello)); err != nil {
		return nil, nil, fail(who, "%v", err)
	}
	if f.version != protocolVersion {
		return nil, nil, fail(who, "it speaks data protocol version %d, this worker speaks version %d", f.version, protocolVersion)
	}
	if f.to != e.cfg.ID {
		return nil, nil, fail(who, "it meant to reach worker %q", f.to)
	}
	if f.attempt != e.cfg.Attempt {
		return nil, nil, fail(who, "%s", attemptMismatch(f.attempt, e.cfg.Attempt))
	}
	if e.cfg.TLS != nil && f.from != certID {
		return nil, nil, fail(who, "its certificate names worker %q", certID)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.peers[f.from]
	switch {
	case p == nil:
		return nil, nil, fail(who, "unknown worker; expected one of %q", r.expected())
	case p.dial:
		return nil, nil, fail(who, "this worker dials worker %q (the smaller ID dials), not the other way round", f.from)
	case p.connected:
		return nil, nil, fail(who, "a second data connection from the same worker")
	}
	p.connected = true
	p.remote = p.addr
	if p.remote == "" {
		p.remote = remote
	}
	if r.nconnectedM++; r.nconnectedM == r.inbound {
		r.acceptDone.Store(true)
		e.ln.SetDeadline(time.Unix(1, 0)) // stop accepting; the listener stays open
	}
	c.SetDeadline(time.Time{})
	return p, br, nil
}

// attemptMismatch explains a peer of another job attempt: the older of
// the two is a zombie left over from before a restart, whose data must not
// reach the restored run.
func attemptMismatch(peer, mine uint64) string {
	if peer < mine {
		return fmt.Sprintf("it runs attempt %d of the job, this worker attempt %d: refused, a stale attempt's data must not reach the restored job", peer, mine)
	}
	return fmt.Sprintf("it runs attempt %d of the job, this worker the stale attempt %d: this worker is left over from before a restart and must stop", peer, mine)
}

// serve runs the connection to p: it grants the initial credits, starts the
// writer and reads until the peer half-closes or the run ends.
func (r *run) serve(p *peer, c net.Conn, br *bufio.Reader) {
	e := r.e
	e.log.Debug("data connection up", "peer", p.id, "remote", p.remote)
	for _, s := range p.recvs {
		if s.ends > 0 {
			s.avail.Store(int64(e.cfg.Credits))
			p.q.grant(s.id, uint32(e.cfg.Credits))
		}
	}
	writerDone := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(writerDone)
		r.write(p, c)
	}()
	defer e.untrack(c)
	var scratch []byte
	for {
		f, err := readFrame(br, e.cfg.MaxFrame, &scratch)
		if err == io.EOF {
			if u := unfinished(p); u != "" {
				r.fail(connErr(p, fmt.Errorf("the peer closed the connection with %s unfinished", u)))
				return
			}
			// Clean end: our writer half-closes once it has sent all.
			select {
			case <-writerDone:
				e.log.Debug("data connection done", "peer", p.id)
			case <-r.ctx.Done():
			}
			return
		}
		if err == nil {
			err = r.dispatch(p, f)
		}
		if p.q.unsignaled && !frameBuffered(br) {
			// Wake the writer for the grants of direct deliveries only
			// now, before the reader may block: it is then the goroutine
			// readied last, which runs first, before the consumers the
			// deliveries readied.
			p.q.unsignaled = false
			p.q.signal()
		}
		if err != nil {
			if r.ctx.Err() == nil {
				r.fail(connErr(p, err))
			}
			return
		}
	}
}

// frameBuffered reports whether br holds a whole frame, which the reader
// can then read without blocking.
func frameBuffered(br *bufio.Reader) bool {
	if br.Buffered() < prefixLen {
		return false
	}
	hdr, _ := br.Peek(prefixLen)
	return uint64(br.Buffered()) >= prefixLen+uint64(binary.BigEndian.Uint32(hdr))
}

// unfinished describes the streams on p's connection that have not ended.
func unfinished(p *peer) string {
	var parts []string
	if ids := p.q.sendsPending(p); len(ids) > 0 {
		parts = append(parts, "outgoing streams "+strings.Join(ids, ", "))
	}
	var ids []string
	for _, s := range p.recvs {
		if s.endsSeen < s.ends {
			ids = append(ids, fmt.Sprint(s.id))
		}
	}
	if len(ids) > 0 {
		parts = append(parts, "incoming streams "+strings.Join(ids, ", "))
	}
	return strings.Join(parts, " and ")
}

// dispatch handles one frame read from p's connection. It never blocks.
func (r *run) dispatch(p *peer, f frame) error {
	switch f.typ {
	case frameCredit:
		s := p.sendByID[f.stream]
		if s == nil {
			return protoErr("CREDIT for stream %d, which this worker does not send", f.stream)
		}
		return s.grant(f.n)
	case frameHello:
		return protoErr("unexpected HELLO frame")
	}
	s := p.recvByID[f.stream]
	switch {
	case s == nil:
		return protoErr("%v frame for stream %d, which this worker does not receive", f.typ, f.stream)
	case s.endsSeen == s.ends:
		return protoErr("%v frame on stream %d after its last END", f.typ, f.stream)
	case s.avail.Add(-1) < 0:
		return protoErr("%v frame on stream %d exceeds the %d credits granted", f.typ, f.stream, r.e.cfg.Credits)
	}
	m := exec.Msg{Channel: f.channel}
	switch f.typ {
	case frameData:
		m.Kind = exec.MsgData
		m.Batch = f.batch
	case frameWatermark:
		m.Kind = exec.MsgWatermark
		m.WM = f.wm
	case frameIdle:
		m.Kind = exec.MsgIdle
	case frameBarrier:
		m.Kind = exec.MsgBarrier
		m.WM = f.id
	case frameEnd:
		m.Kind = exec.MsgEnd
		if s.endsSeen++; s.endsSeen == s.ends {
			p.q.recvDone()
		}
	}
	if m.Kind != exec.MsgEnd && s.held.Load() == 0 {
		// Nothing of the stream waits for its deliverer: hand m over
		// at once if dst has room, saving the deliverer's wake-up.
		// ENDs always go through the deliverer, which counts them.
		select {
		case s.dst <- m:
			s.avail.Add(1)
			p.q.grantLater(s.id, 1)
			return nil
		default:
		}
	}
	s.held.Add(1)
	select {
	case s.q <- m:
		return nil
	default: // unreachable while avail is kept
		return protoErr("stream %d: receive queue full", f.stream)
	}
}

// write is the writer goroutine of p's connection: it writes what the queue
// holds, flushes when the queue is empty, and half-closes the connection
// after the last frame.
func (r *run) write(p *peer, c net.Conn) {
	bw := bufio.NewWriterSize(c, writeBufSize)
	var frames, credits []frame
	var hdr []byte
	fail := func(err error) {
		if r.ctx.Err() == nil {
			r.fail(connErr(p, err))
		}
		c.Close()
	}
	for {
		var st queueState
		frames, credits, st = p.q.take(frames[:0], credits[:0])
		switch st {
		case queueFinished:
			if err := bw.Flush(); err != nil {
				fail(err)
				return
			}
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				if err := cw.CloseWrite(); err != nil {
					fail(err)
				}
			}
			return
		case queueEmpty:
			if err := bw.Flush(); err != nil {
				fail(err)
				return
			}
			select {
			case <-p.q.wake:
			case <-r.ctx.Done():
				return
			}
			continue
		}
		for i := range credits {
			hdr = appendFrame(hdr[:0], &credits[i])
			if _, err := bw.Write(hdr); err != nil {
				fail(err)
				return
			}
		}
		for i := range frames {
			f := &frames[i]
			if f.typ == frameData {
				hdr = appendDataHeader(hdr[:0], f.stream, f.channel, len(f.batch))
				if _, err := bw.Write(hdr); err != nil {
					fail(err)
					return
				}
				if _, err := bw.Write(f.batch); err != nil {
					fail(err)
					return
				}
			} else {
				hdr = appendFrame(hdr[:0], f)
				if _, err := bw.Write(hdr); err != nil {
					fail(err)
					return
				}
			}
		}
		clear(frames) // drop the batches
	}
}
