package network

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

func enc(fs ...frame) []byte {
	var b []byte
	for i := range fs {
		b = appendFrame(b, &fs[i])
	}
	return b
}

func hello(from, to string, version uint32) frame {
	return frame{typ: frameHello, version: version, from: from, to: to}
}

func data(stream uint32, s string) frame {
	return frame{typ: frameData, stream: stream, batch: []byte(s)}
}

// fakePeer is a raw TCP client playing a peer that dials the endpoint.
type fakePeer struct {
	t    *testing.T
	addr string
}

func (f fakePeer) dial() net.Conn {
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

// hangUp closes c's sending side, as a peer closing its socket would, but
// keeps reading, so that the close is a FIN and never a reset (a socket
// closed with unread input resets the connection).
func (f fakePeer) hangUp(c net.Conn) {
	c.(*net.TCPConn).CloseWrite()
	go io.Copy(io.Discard, c)
}

// handshake dials as worker id and completes the handshake.
func (f fakePeer) handshake(id string) net.Conn {
	c := f.dial()
	if _, err := c.Write(enc(hello(id, "w5", protocolVersion))); err != nil {
		f.t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var scratch []byte
	fr, err := readFrame(bufio.NewReader(c), helloLimit, &scratch)
	if err != nil || fr.typ != frameHello || fr.from != "w5" || fr.to != id {
		f.t.Fatalf("handshake answer %+v, %v", fr, err)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

// TestMalformedInbound feeds bad input to an endpoint over connections it
// accepts: Run fails with a clear error, never panics or hangs.
func TestMalformedInbound(t *testing.T) {
	prefix := func(n uint32, rest ...byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, n), rest...)
	}
	tests := []struct {
		name   string
		script func(f fakePeer)
		want   string
	}{
		{"garbage", func(f fakePeer) {
			f.dial().Write([]byte("GET / HTTP/1.1\r\nHost: w5\r\n\r\n"))
		}, "frame of 1195725856 bytes exceeds the limit of 529 bytes (not a spate data connection?)"},
		{"oversized HELLO", func(f fakePeer) {
			f.dial().Write(prefix(0xffffffff, byte(frameHello)))
		}, "exceeds the limit"},
		{"zero length", func(f fakePeer) {
			f.dial().Write(prefix(0))
		}, "empty frame"},
		{"first frame not HELLO", func(f fakePeer) {
			f.dial().Write(enc(frame{typ: frameCredit, stream: 1, n: 1}))
		}, "expected a HELLO frame, got CREDIT"},
		{"unknown frame type", func(f fakePeer) {
			f.dial().Write(prefix(9, 0x42, 1, 2, 3, 4, 5, 6, 7, 8))
		}, "unknown frame type 0x42"},
		{"wrong version", func(f fakePeer) {
			f.dial().Write(enc(hello("w0", "w5", 99)))
		}, `worker "w0" at 127.0.0.1:`},
		{"wrong version says so", func(f fakePeer) {
			f.dial().Write(enc(hello("w0", "w5", 99)))
		}, "it speaks data protocol version 99, this worker speaks version 2"},
		{"unknown peer", func(f fakePeer) {
			f.dial().Write(enc(hello("intruder", "w5", protocolVersion)))
		}, `unknown worker; expected one of ["w0" "w1"]`},
		{"peer that should be dialed", func(f fakePeer) {
			f.dial().Write(enc(hello("w9", "w5", protocolVersion)))
		}, `this worker dials worker "w9"`},
		{"meant for another worker", func(f fakePeer) {
			f.dial().Write(enc(hello("w0", "w7", protocolVersion)))
		}, `it meant to reach worker "w7"`},
		{"truncated HELLO then close", func(f fakePeer) {
			c := f.dial()
			c.Write(enc(hello("w0", "w5", protocolVersion))[:8])
			f.hangUp(c)
		}, "closed before a complete HELLO"},
		{"truncated HELLO then silence", func(f fakePeer) {
			f.dial().Write(enc(hello("w0", "w5", protocolVersion))[:8])
		}, "no HELLO within 300ms"},
		{"second connection", func(f fakePeer) {
			f.handshake("w0")
			f.handshake("w0")
		}, "a second data connection from the same worker"},
		{"oversized frame", func(f fakePeer) {
			f.handshake("w0").Write(prefix(1<<20+1, byte(frameData)))
		}, `data connection to worker "w0" (127.0.0.1:`},
		{"oversized frame says so", func(f fakePeer) {
			f.handshake("w0").Write(prefix(1<<20+1, byte(frameData)))
		}, `protocol error: frame of 1048577 bytes exceeds the limit of 1048576 bytes`},
		{"unknown type after handshake", func(f fakePeer) {
			f.handshake("w0").Write(prefix(1, 0xee))
		}, "protocol error: unknown frame type 0xee"},
		{"bad length for type", func(f fakePeer) {
			f.handshake("w0").Write(prefix(9, byte(frameWatermark), 0, 0, 0, 1, 0, 0, 0, 0))
		}, "WATERMARK frame of 9 bytes, want 17"},
		{"second HELLO", func(f fakePeer) {
			f.handshake("w0").Write(enc(hello("w0", "w5", protocolVersion)))
		}, "unexpected HELLO frame"},
		{"unknown stream", func(f fakePeer) {
			f.handshake("w0").Write(enc(data(42, "x")))
		}, "DATA frame for stream 42, which this worker does not receive"},
		{"credit for unknown stream", func(f fakePeer) {
			f.handshake("w0").Write(enc(frame{typ: frameCredit, stream: 9, n: 1}))
		}, "CREDIT for stream 9, which this worker does not send"},
		{"credit exceeded", func(f fakePeer) {
			// dst is never read: the first message is held by the
			// deliverer, the second queued, the third has no credit.
			f.handshake("w0").Write(enc(data(1, "a"), data(1, "b"), data(1, "c")))
		}, "DATA frame on stream 1 exceeds the 2 credits granted"},
		{"message after end", func(f fakePeer) {
			f.handshake("w0").Write(enc(frame{typ: frameEnd, stream: 3}, frame{typ: frameIdle, stream: 3}))
		}, "IDLE frame on stream 3 after its last END"},
		{"closed mid-frame", func(f fakePeer) {
			c := f.handshake("w0")
			c.Write(enc(data(1, "hello"))[:10])
			f.hangUp(c)
		}, `data connection to worker "w0" (127.0.0.1:`},
		{"closed mid-frame says so", func(f fakePeer) {
			c := f.handshake("w0")
			c.Write(enc(data(1, "hello"))[:10])
			f.hangUp(c)
		}, "lost: unexpected EOF"},
		{"closed mid-stream", func(f fakePeer) {
			c := f.handshake("w0")
			c.Write(enc(data(1, "hello")))
			f.hangUp(c)
		}, "lost: the peer closed the connection with outgoing streams 2 and incoming streams 1, 3 unfinished"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			e := listen(t, "w5", Config{Credits: 2, DialTimeout: 300 * time.Millisecond, MaxFrame: 1 << 20})
			e.Receive("w0", 1, make(chan exec.Msg), 1)
			e.Send("w0", "", 2, make(chan exec.Msg), 1)
			e.Receive("w0", 3, make(chan exec.Msg, 4), 1)
			e.Receive("w1", 1, make(chan exec.Msg), 1)
			if strings.Contains(tt.want, "w9") {
				// A peer this endpoint dials (and fails to reach, later).
				e.Send("w9", "127.0.0.1:1", 1, make(chan exec.Msg), 1)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := start(ctx, e)
			tt.script(fakePeer{t: t, addr: e.Addr()})
			err := wait(t, "w5", r, 10*time.Second)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v\nwant an error containing %s", err, tt.want)
			}
			t.Log(err)
			e.Close()
			checkGoroutines(t, before)
		})
	}
}

// TestMalformedOutbound has an endpoint dial fake peers that answer badly.
func TestMalformedOutbound(t *testing.T) {
	tests := []struct {
		name   string
		answer func(c net.Conn)
		want   string
	}{
		{"wrong version", func(c net.Conn) {
			c.Write(enc(hello("w2", "w1", 7)))
		}, `handshake of worker "w1" with worker "w2" (127.0.0.1:`},
		{"wrong version says so", func(c net.Conn) {
			c.Write(enc(hello("w2", "w1", 7)))
		}, "the peer speaks data protocol version 7, this worker speaks version 2"},
		{"another worker", func(c net.Conn) {
			c.Write(enc(hello("w3", "w1", protocolVersion)))
		}, `reached worker "w3" instead`},
		{"garbage", func(c net.Conn) {
			c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
		}, "(is a spate data endpoint listening there?)"},
		{"rejected", func(c net.Conn) {
			c.Close()
		}, "the peer closed the connection (it rejected the handshake; see its error)"},
		{"silent", func(c net.Conn) {}, "no HELLO within 300ms"},
		{"hello then garbage", func(c net.Conn) {
			c.Write(enc(hello("w2", "w1", protocolVersion)))
			c.Write([]byte{0, 0, 0, 1, 0})
		}, `data connection to worker "w2" (127.0.0.1:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				var scratch []byte
				br := bufio.NewReader(c)
				if _, err := readFrame(br, helloLimit, &scratch); err != nil {
					return
				}
				tt.answer(c)
				// Hold the connection until the endpoint drops it.
				for {
					if _, err := readFrame(br, 1<<20, &scratch); err != nil {
						return
					}
				}
			}()
			e := listen(t, "w1", Config{DialTimeout: 300 * time.Millisecond})
			e.Send("w2", ln.Addr().String(), 1, make(chan exec.Msg), 1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = wait(t, "w1", start(ctx, e), 10*time.Second)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v\nwant an error containing %s", err, tt.want)
			}
			t.Log(err)
			e.Close()
			ln.Close()
			<-done
			checkGoroutines(t, before)
		})
	}
	t.Run("nobody listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		e := listen(t, "w1", Config{DialTimeout: 300 * time.Millisecond})
		e.Send("w2", addr, 1, make(chan exec.Msg), 1)
		t0 := time.Now()
		err = wait(t, "w1", start(context.Background(), e), 10*time.Second)
		if err == nil || !strings.Contains(err.Error(), `connect to worker "w2" (`+addr+") within 300ms") {
			t.Fatalf("Run = %v", err)
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("gave up after %v", d)
		}
		t.Log(err)
	})
}
