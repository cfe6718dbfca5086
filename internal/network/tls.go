package network

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// TLS makes an Endpoint's connections mutual TLS: each end proves with its
// certificate which endpoint it is, before any frame is exchanged. An
// accepted connection whose TLS handshake fails (no certificate, one the
// Server configuration does not trust, one of another job) is closed and
// logged; it does not fail Run, so that a stranger reaching the port
// cannot stop the job. A dialed connection that finds another endpoint
// than the peer it dialed fails Run, as a wrong HELLO does.
type TLS struct {
	// Server configures accepted connections; it must require and verify
	// a client certificate.
	Server *tls.Config
	// Client returns the configuration of a connection dialed to peer
	// peerID; it must verify that the server is that peer.
	Client func(peerID string) *tls.Config
	// PeerID returns the endpoint ID a verified peer certificate names:
	// an accepted connection's HELLO must come from that ID.
	PeerID func(*x509.Certificate) (string, error)
}

// secureOut wraps a dialed connection to p in TLS and runs the handshake
// by deadline; without Config.TLS it returns c as is.
func (r *run) secureOut(p *peer, c net.Conn, deadline time.Time) (net.Conn, error) {
	t := r.e.cfg.TLS
	if t == nil {
		return c, nil
	}
	tc := tls.Client(c, t.Client(p.id))
	ctx, cancel := context.WithDeadline(r.ctx, deadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		err = fmt.Errorf("network: worker %q: TLS handshake with worker %q (%s): %w", r.e.cfg.ID, p.id, p.addr, err)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
			// The peer's process went away mid-handshake.
			return nil, lostError{err}
		}
		return nil, err
	}
	return tc, nil
}

// secureIn wraps an accepted connection in TLS; the handshake runs in
// handshakeTLSIn.
func (e *Endpoint) secureIn(c net.Conn) net.Conn {
	if e.cfg.TLS == nil {
		return c
	}
	return tls.Server(c, e.cfg.TLS.Server)
}

// handshakeTLSIn runs an accepted connection's TLS handshake, bounded by
// DialTimeout; it returns the ID the client's certificate names ("" without
// TLS).
func (r *run) handshakeTLSIn(c net.Conn) (string, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.e.cfg.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return "", err
	}
	cs := tc.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return "", fmt.Errorf("no client certificate")
	}
	return r.e.cfg.TLS.PeerID(cs.PeerCertificates[0])
}
