package rest

import (
	"context"
	"errors"
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
// request's header must come within ReadHeaderTimeout, a JSON body within
// 30s, an upload may not stall for more than 60s, and bodies are bounded by
// the handler's limits.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    1 << 20,
		// Requests keep ctx's values, not its end: the shutdown lets
		// requests in flight finish.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
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
