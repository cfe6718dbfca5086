package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// Defaults of Config.
const (
	DefaultCredits     = 8
	DefaultMaxFrame    = 64 << 20
	DefaultDialTimeout = 10 * time.Second
)

// Config configures an Endpoint.
type Config struct {
	// ID names this endpoint (a worker process); unique within a job. Used
	// in the HELLO handshake and errors. At most 256 bytes.
	ID string
	// Credits is how many messages a receiver lets each (peer, stream) have
	// in flight; default 8.
	Credits int
	// MaxFrame is the largest frame accepted; default 64 MiB. A bigger
	// length prefix is a protocol error.
	MaxFrame int
	// DialTimeout bounds connecting to a peer, handshake included (the
	// dialer retries refused connections until then, as the peer may not
	// listen yet); it also bounds the wait for the HELLO of an accepted
	// connection. Default 10s.
	DialTimeout time.Duration
	// Attempt is the attempt (epoch) of the job this endpoint's worker
	// runs in, raised by every restart. The HELLO handshake carries it,
	// and a connection between two attempts is refused: a zombie of an
	// older attempt can neither send into nor receive from the restored
	// job.
	Attempt uint64
	// Logger receives debug events (connections up and down); may be nil.
	Logger *slog.Logger
	// Resolve, if set, returns the address of a peer this endpoint has to
	// dial (its ID is greater than ID) when no Send to that peer gave one,
	// as when this endpoint only receives from it.
	Resolve func(peerID string) (addr string, err error)
	// TLS, if set, makes every connection mutual TLS (see TLS); nil
	// leaves them in the clear.
	TLS *TLS
}

// Endpoint is one worker process's end of the data plane: a TCP listener,
// one connection to every peer it exchanges streams with, and the goroutines
// that move messages between those connections and local channels.
//
// Register streams with Send and Receive, then call Run once.
type Endpoint struct {
	cfg  Config
	log  *slog.Logger
	ln   *net.TCPListener
	addr string

	mu       sync.Mutex
	peers    map[string]*peer
	order    []string // peer IDs in registration order
	regErr   error    // first invalid registration, returned by Run
	running  bool
	closed   bool
	stopping bool // Run is tearing down: new connections are closed at once
	conns    map[net.Conn]struct{}

	closeOnce sync.Once
	closeErr  error

	// Established connections, for tests.
	accepted, dialed atomic.Int32
	// Failed dials that are retried, for tests.
	dialRetries atomic.Int32
}

// peer is what the endpoint exchanges with one other endpoint.
type peer struct {
	id       string
	addr     string // from Send or Resolve; may be empty for a peer that dials us
	dial     bool   // this endpoint dials the peer
	sends    []*sendStream
	sendByID map[uint32]*sendStream
	recvs    []*recvStream
	recvByID map[uint32]*recvStream
	q        *outq

	// Set by the handshake, under Endpoint.mu.
	connected bool
	remote    string // address used in errors
}

// Listen opens the endpoint's TCP listener on addr (e.g. "127.0.0.1:0").
func Listen(addr string, cfg Config) (*Endpoint, error) {
	if cfg.ID == "" {
		return nil, errors.New("network: Config.ID is empty")
	}
	if len(cfg.ID) > maxIDLen {
		return nil, fmt.Errorf("network: Config.ID is %d bytes, at most %d allowed", len(cfg.ID), maxIDLen)
	}
	if cfg.Credits <= 0 {
		cfg.Credits = DefaultCredits
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.MaxFrame < helloLimit {
		cfg.MaxFrame = helloLimit
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("network: worker %q: listen: %w", cfg.ID, err)
	}
	return &Endpoint{
		cfg:   cfg,
		log:   log.With("worker", cfg.ID),
		ln:    ln.(*net.TCPListener),
		addr:  ln.Addr().String(),
		peers: make(map[string]*peer),
		conns: make(map[net.Conn]struct{}),
	}, nil
}

// Addr is the listening address (host:port) peers dial.
func (e *Endpoint) Addr() string { return e.addr }

// Send registers an outbound stream: every Msg read from src is forwarded to
// stream `stream` at peer peerID (reachable at peerAddr). Data messages must
// carry their batch as a []byte. The forwarder stops after it has forwarded
// `ends` messages of Kind MsgEnd (the number of local producer channels
// feeding src), or when Run's ctx ends. Must be called before Run; an invalid
// registration makes Run fail.
func (e *Endpoint) Send(peerID, peerAddr string, stream uint32, src <-chan exec.Msg, ends int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running {
		panic("network: Send called after Run")
	}
	p, err := e.peerLocked(peerID)
	switch {
	case err != nil:
	case ends < 0:
		err = fmt.Errorf("network: send stream %d to worker %q: negative ends %d", stream, peerID, ends)
	case src == nil && ends > 0:
		err = fmt.Errorf("network: send stream %d to worker %q: nil source channel", stream, peerID)
	case p.sendByID[stream] != nil:
		err = fmt.Errorf("network: send stream %d to worker %q registered twice", stream, peerID)
	case p.addr != "" && peerAddr != "" && p.addr != peerAddr:
		err = fmt.Errorf("network: worker %q registered at two addresses, %s and %s", peerID, p.addr, peerAddr)
	}
	if err != nil {
		if e.regErr == nil {
			e.regErr = err
		}
		return
	}
	if p.addr == "" {
		p.addr = peerAddr
	}
	s := &sendStream{id: stream, src: src, ends: ends, wake: make(chan struct{}, 1)}
	p.sends = append(p.sends, s)
	p.sendByID[stream] = s
}

// Receive registers an inbound stream: messages arriving from peer peerID on
// stream `stream` are delivered into dst (blocking sends into dst are fine,
// that is the backpressure). It stops after delivering `ends` MsgEnd messages
// or when Run's ctx ends. Must be called before Run; an invalid registration
// makes Run fail.
func (e *Endpoint) Receive(peerID string, stream uint32, dst chan<- exec.Msg, ends int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running {
		panic("network: Receive called after Run")
	}
	p, err := e.peerLocked(peerID)
	switch {
	case err != nil:
	case ends < 0:
		err = fmt.Errorf("network: receive stream %d from worker %q: negative ends %d", stream, peerID, ends)
	case dst == nil && ends > 0:
		err = fmt.Errorf("network: receive stream %d from worker %q: nil destination channel", stream, peerID)
	case p.recvByID[stream] != nil:
		err = fmt.Errorf("network: receive stream %d from worker %q registered twice", stream, peerID)
	}
	if err != nil {
		if e.regErr == nil {
			e.regErr = err
		}
		return
	}
	s := &recvStream{id: stream, dst: dst, ends: ends, q: make(chan exec.Msg, e.cfg.Credits)}
	p.recvs = append(p.recvs, s)
	p.recvByID[stream] = s
}

func (e *Endpoint) peerLocked(id string) (*peer, error) {
	switch {
	case id == "":
		return nil, errors.New("network: empty peer ID")
	case id == e.cfg.ID:
		return nil, fmt.Errorf("network: worker %q cannot exchange streams with itself", id)
	case len(id) > maxIDLen:
		return nil, fmt.Errorf("network: peer ID of %d bytes, at most %d allowed", len(id), maxIDLen)
	}
	p := e.peers[id]
	if p == nil {
		p = &peer{
			id:       id,
			dial:     e.cfg.ID < id,
			sendByID: make(map[uint32]*sendStream),
			recvByID: make(map[uint32]*recvStream),
		}
		e.peers[id] = p
		e.order = append(e.order, id)
	}
	return p, nil
}

// Close stops the listener and closes every connection; idempotent. A Run
// still going fails with lost connections.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		for c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		e.closeErr = e.ln.Close()
	})
	return e.closeErr
}

// track registers a connection so that teardown closes it; false means the
// endpoint is stopping and the caller must close c itself.
func (e *Endpoint) track(c net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.stopping {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

func (e *Endpoint) untrack(c net.Conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
	c.Close()
}

// buffered returns how many messages of a stream the receiver holds: queued
// or being delivered into dst. For tests.
func (e *Endpoint) buffered(peerID string, stream uint32) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.peers[peerID]; p != nil {
		if s := p.recvByID[stream]; s != nil {
			return int(s.held.Load())
		}
	}
	return 0
}

// run is the state of one Run.
type run struct {
	e      *Endpoint
	parent context.Context // Run's ctx
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	inbound     int // peers that dial this endpoint
	acceptDone  atomic.Bool
	nconnectedM int // inbound peers connected, under e.mu
}

// Run connects to the peers, moves messages until every registered Send and
// Receive stream is done, and returns nil; or returns the first error (a lost
// connection names the peer); or ctx's cause when ctx ends. It owns every
// goroutine it starts and they are all stopped when it returns.
//
// A connection ends cleanly once both ends have finished every stream on it:
// each end half-closes after its last frame and reads until the other's
// half-close, so Run returns only after the peers it exchanges with have
// received everything this endpoint sent them. The listener stays open (new
// connections wait in its backlog) until Close.
func (e *Endpoint) Run(ctx context.Context) error {
	e.mu.Lock()
	switch {
	case e.running:
		e.mu.Unlock()
		return errors.New("network: Run called twice")
	case e.closed:
		e.mu.Unlock()
		return fmt.Errorf("network: worker %q: endpoint is closed", e.cfg.ID)
	}
	e.running = true
	regErr := e.regErr
	e.mu.Unlock()
	if regErr != nil {
		return regErr
	}

	r := &run{e: e, parent: ctx}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	defer r.cancel(nil)

	// The peer set is fixed now; only Run touches it from here on.
	for _, id := range e.order {
		p := e.peers[id]
		if !p.dial {
			r.inbound++
			continue
		}
		if p.addr == "" {
			if e.cfg.Resolve == nil {
				return fmt.Errorf("network: worker %q must dial worker %q but knows no address for it (set Config.Resolve)", e.cfg.ID, id)
			}
			addr, err := e.cfg.Resolve(id)
			if err != nil {
				return fmt.Errorf("network: resolve worker %q: %w", id, err)
			}
			p.addr = addr
		}
	}
	for _, id := range e.order {
		p := e.peers[id]
		p.q = newOutq(p)
		for _, s := range p.sends {
			if s.ends > 0 {
				r.wg.Add(1)
				go r.forward(p, s)
			}
		}
		for _, s := range p.recvs {
			if s.ends > 0 {
				r.wg.Add(1)
				go r.deliver(s, p)
			}
		}
		if p.dial {
			r.wg.Add(1)
			go r.dialPeer(p)
		}
	}
	if r.inbound > 0 {
		r.wg.Add(1)
		go r.accept()
	}

	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-r.ctx.Done():
		r.teardown()
		<-done
	}
	r.teardown()
	if r.ctx.Err() != nil {
		return context.Cause(r.ctx)
	}
	e.log.Debug("data plane done")
	return nil
}

// fail ends the run with err unless it has already ended. Once Run's ctx
// has ended, a failure is a consequence of the stop (a peer sharing that
// ctx closing its connections first) and the stop's cause stays the
// run's: ctx is marked done before the cancellation reaches the run's
// own context, so checking it first leaves no window.
func (r *run) fail(err error) {
	if r.parent.Err() != nil {
		return
	}
	r.cancel(err)
}

// teardown closes every connection and stops accepting; idempotent.
func (r *run) teardown() {
	e := r.e
	e.mu.Lock()
	e.stopping = true
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	r.acceptDone.Store(true)
	e.ln.SetDeadline(time.Unix(1, 0)) // unblocks Accept; the listener stays open
}

// expected lists the peers that dial this endpoint, for error messages.
func (r *run) expected() []string {
	var ids []string
	for _, id := range r.e.order {
		if !r.e.peers[id].dial {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
