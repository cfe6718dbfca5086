package rest

import (
	"net"
	"net/http"
	"sync"
)

// DefaultMaxUploadsPerClient is Options.MaxUploadsPerClient's default.
const DefaultMaxUploadsPerClient = 4

// uploadLimiter counts the uploads in flight per client address: a
// client may not hold more than max of the server's upload slots (each
// holds a goroutine, a descriptor and a temporary file for up to the
// upload deadline).
type uploadLimiter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// clientOf is the address a request's limits count against.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// acquire takes an upload slot of r's client; false if it holds max.
func (l *uploadLimiter) acquire(r *http.Request) (release func(), ok bool) {
	c := clientOf(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[string]int{}
	}
	if l.n[c] >= l.max {
		return nil, false
	}
	l.n[c]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.n[c]--; l.n[c] <= 0 {
			delete(l.n, c)
		}
	}, true
}
