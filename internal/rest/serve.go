package rest

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"time"
)

// Timeouts of Serve's server.
const (
	// ReadHeaderTimeout bounds the reading of a request's header.
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout bounds the wait for a kept-alive connection's next request.
	IdleTimeout = 60 * time.Second
	// ShutdownTimeout bounds the wait for requests in flight when Serve's
	// context ends; the connections still busy then are closed.
	ShutdownTimeout = 10 * time.Second
)

// Serve serves h on ln until ctx ends, then shuts down gracefully (waiting
// up to ShutdownTimeout for requests in flight) and returns nil. It returns
// the server's error if serving fails before. Serve closes ln.
//
// There is no total read or write timeout, as artifacts may be large: a
// request's header must come within ReadHeaderTimeout, and the handler
// bounds the body and the answer (see deadline.go): every request has a
// deadline, and bodies are bounded by the handler's limits.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return ServeWith(ctx, ln, h, ServeConfig{})
}

// ServeConfig tunes ServeWith; the zero value is Serve's.
type ServeConfig struct {
	// ReadHeaderTimeout and IdleTimeout replace the defaults of the same
	// name when positive.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// TLS, if set, serves HTTPS with it (security.ssl.rest.*): the TLS
	// handshake must end within ReadHeaderTimeout, as the header must.
	TLS *tls.Config
	// ErrorLog, if set, takes the server's own messages (failed TLS
	// handshakes among them); the log package's standard logger if nil.
	ErrorLog *log.Logger
}

// ServeWith is Serve with cfg.
func ServeWith(ctx context.Context, ln net.Listener, h http.Handler, cfg ServeConfig) error {
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = ReadHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = IdleTimeout
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          cfg.ErrorLog,
		// Requests keep ctx's values, not its end: the shutdown lets
		// requests in flight finish.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if cfg.TLS != nil {
		// A *tls.Conn, which http.Server hands its handshake deadline.
		ln = tls.NewListener(ln, cfg.TLS)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
