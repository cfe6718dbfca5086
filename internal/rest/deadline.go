package rest

import (
	"io"
	"net/http"
	"time"
)

// Every request has a deadline. The server bounds the header
// (ReadHeaderTimeout) and the wait between requests (IdleTimeout); the
// handler bounds the rest:
//
//   - a JSON body must arrive within Options.BodyTimeout;
//   - an upload's body, multipart part headers included, must bring at
//     least Options.UploadMinBytes within every Options.UploadWindow (a
//     body trickling a byte every few seconds is cut off after one
//     window) and end within Options.UploadTimeout;
//   - an answer, once begun, must be taken by the client within
//     Options.WriteTimeout, and a download must progress as an upload
//     does.
//
// A connection therefore costs the server its goroutine and descriptor
// for a bounded time, whatever the client does.

// Defaults of the deadline options.
const (
	DefaultBodyTimeout    = 30 * time.Second
	DefaultUploadWindow   = 30 * time.Second
	DefaultUploadMinBytes = 32 << 10
	DefaultUploadTimeout  = 15 * time.Minute
	DefaultWriteTimeout   = 60 * time.Second
)

// unreadLinger bounds the time the server spends reading what is left of
// a body it refused, before it closes the connection (see ServeHTTP).
const unreadLinger = time.Second

// deadlines are the resolved deadline options of a handler.
type deadlines struct {
	body         time.Duration
	uploadWindow time.Duration
	uploadMin    int64
	upload       time.Duration
	write        time.Duration
}

func deadlinesOf(o Options) deadlines {
	d := deadlines{body: o.BodyTimeout, uploadWindow: o.UploadWindow, uploadMin: o.UploadMinBytes,
		upload: o.UploadTimeout, write: o.WriteTimeout}
	if d.body <= 0 {
		d.body = DefaultBodyTimeout
	}
	if d.uploadWindow <= 0 {
		d.uploadWindow = DefaultUploadWindow
	}
	if d.uploadMin <= 0 {
		d.uploadMin = DefaultUploadMinBytes
	}
	if d.upload <= 0 {
		d.upload = DefaultUploadTimeout
	}
	if d.write <= 0 {
		d.write = DefaultWriteTimeout
	}
	return d
}

// progressReader reads an upload's body under the upload deadlines: each
// window of uploadWindow must bring uploadMin bytes (or the end), and
// the whole body must come before end. It sets the connection's read
// deadline, so a client that sends nothing at all is cut off too.
type progressReader struct {
	r      io.Reader
	rc     *http.ResponseController
	window time.Duration
	min    int64
	end    time.Time
	// windowEnd is when the current window closes; got counts its bytes.
	windowEnd time.Time
	got       int64
}

func (h *handler) progress(w http.ResponseWriter, r io.Reader) *progressReader {
	return &progressReader{r: r, rc: http.NewResponseController(w), window: h.dl.uploadWindow,
		min: h.dl.uploadMin, end: time.Now().Add(h.dl.upload)}
}

func (p *progressReader) Read(b []byte) (int, error) {
	if p.windowEnd.IsZero() || p.got >= p.min {
		// A new window: the previous one brought its share.
		p.windowEnd, p.got = time.Now().Add(p.window), 0
		p.rc.SetReadDeadline(minTime(p.windowEnd, p.end))
	}
	n, err := p.r.Read(b)
	p.got += int64(n)
	return n, err
}

// progressWriter writes a download under the same rule: each window must
// take min bytes.
type progressWriter struct {
	w         io.Writer
	rc        *http.ResponseController
	window    time.Duration
	min       int64
	windowEnd time.Time
	got       int64
}

func (h *handler) progressOut(w http.ResponseWriter) *progressWriter {
	return &progressWriter{w: w, rc: http.NewResponseController(w), window: h.dl.uploadWindow, min: h.dl.uploadMin}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if p.windowEnd.IsZero() || p.got >= p.min {
		p.windowEnd, p.got = time.Now().Add(p.window), 0
		p.rc.SetWriteDeadline(p.windowEnd)
	}
	n, err := p.w.Write(b)
	p.got += int64(n)
	return n, err
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
