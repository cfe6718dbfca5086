package jobmanager

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

const floodToken = "flood-test-token-0123456789abcdef"

// securedJM runs a JobManager with internal TLS, a REST token and short
// handshake deadlines, and returns it with an authorised REST client.
func securedJM(t *testing.T) (*JobManager, *client.Client) {
	t.Helper()
	ca, err := pki.NewCA("flood test CA")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(pki.Identity{Role: pki.RoleJobManager}, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := pki.NewMaterial(kp, ca)
	if err != nil {
		t.Fatal(err)
	}
	jm, _ := runJM(t, Config{TLS: m, RESTToken: []byte(floodToken), RPCHandshakeTimeout: 500 * time.Millisecond})
	c, err := client.New(jm.RESTAddr(), client.WithToken(floodToken), client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return jm, c
}

// TestRPCHandshakeDeadline: connections to the RPC port that never
// finish their handshake (silent, a partial TLS hello, plaintext HTTP/2)
// are closed by the JobManager within its handshake timeout.
func TestRPCHandshakeDeadline(t *testing.T) {
	jm, _ := securedJM(t)
	base := runtime.NumGoroutine()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			c, err := net.Dial("tcp", jm.RPCAddr())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			switch i % 3 {
			case 1:
				c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}) // a TLS record header, then nothing
			case 2:
				io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") // HTTP/2 in the clear
			}
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					errs <- fmt.Errorf("connection %d held open for 20 s", i)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("closing %d stalled connections took %v, with a 500ms handshake timeout", n, d)
	}
	waitGoroutines(t, base+5, 10*time.Second)
}

// TestFlood floods the REST API and the RPC port, from many connections,
// with malformed and unauthenticated traffic: an authorised client is
// served throughout, the memory stays bounded, and once the flood ends no
// goroutine is left of it.
func TestFlood(t *testing.T) {
	jm, c := securedJM(t)
	ctx := context.Background()
	if _, err := c.Overview(ctx); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	base := runtime.NumGoroutine()

	foreign, _ := pki.NewCA("not the cluster's")
	fkp, _ := foreign.Issue(pki.Identity{Role: pki.RoleTaskManager, Name: "intruder"}, nil)
	fcert, _ := fkp.TLSCertificate()
	rest, rpc := jm.RESTAddr(), jm.RPCAddr()
	noKeepAlive := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	attacks := []func(){
		func() { // garbage on the REST port
			if c, err := net.Dial("tcp", rest); err == nil {
				b := make([]byte, 2048)
				rand.Read(b)
				c.Write(b)
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			}
		},
		func() { // unauthenticated requests, reading and mutating
			for _, r := range []struct{ m, p string }{{"GET", "/v1/overview"}, {"POST", "/v1/jobs"}, {"POST", "/v1/artifacts"}, {"PATCH", "/v1/jobs/x?mode=cancel"}} {
				req, _ := http.NewRequest(r.m, "http://"+rest+r.p, strings.NewReader(`{"jobGraph":`))
				req.Header.Set("Authorization", "Bearer guess")
				if resp, err := noKeepAlive.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		},
		func() { // a header that never ends
			if c, err := net.Dial("tcp", rest); err == nil {
				io.WriteString(c, "GET /v1/overview HTTP/1.1\r\nHost: x\r\nX: ")
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			}
		},
		func() { // garbage on the RPC port
			if c, err := net.Dial("tcp", rpc); err == nil {
				b := make([]byte, 4096)
				rand.Read(b)
				c.Write(b)
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			}
		},
		func() { // TLS without a client certificate
			if c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", rpc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}); err == nil {
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			}
		},
		func() { // a foreign CA's TaskManager registering
			conn, err := grpc.NewClient(rpc, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
				MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{fcert}, InsecureSkipVerify: true})))
			if err != nil {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			rpcpb.NewJobManagerClient(conn).RegisterTaskManager(cctx, &rpcpb.RegisterTaskManagerRequest{ResourceId: "intruder", Slots: 1})
			cancel()
			conn.Close()
		},
	}
	const flooders = 48
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var attacksMade atomic.Int64
	for i := range flooders {
		wg.Go(func() {
			for k := i; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				attacks[k%len(attacks)]()
				attacksMade.Add(1)
			}
		})
	}
	// The authorised client, throughout.
	var worst time.Duration
	var peakHeap uint64
	deadline := time.Now().Add(4 * time.Second)
	calls := 0
	for time.Now().Before(deadline) {
		t0 := time.Now()
		if _, err := c.Overview(ctx); err != nil {
			t.Errorf("authorised request during the flood: %v", err)
		}
		worst = max(worst, time.Since(t0))
		calls++
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapInuse)
		time.Sleep(50 * time.Millisecond) // the client's pace
	}
	close(stop)
	wg.Wait()
	if worst > 3*time.Second {
		t.Errorf("an authorised request took %v during the flood", worst)
	}
	t.Logf("%d attacks from %d connections at a time; %d authorised requests, the slowest %v; heap in use %d MiB before, %d MiB at its peak",
		attacksMade.Load(), flooders, calls, worst.Round(time.Millisecond), before.HeapInuse>>20, peakHeap>>20)
	if peakHeap > before.HeapInuse+256<<20 {
		t.Errorf("heap in use grew from %d MiB to %d MiB during the flood", before.HeapInuse>>20, peakHeap>>20)
	}
	var tms int
	jm.mu.Lock()
	tms = len(jm.mu.tms)
	jm.mu.Unlock()
	if tms != 0 {
		t.Errorf("%d TaskManagers registered during the flood", tms)
	}
	noKeepAlive.CloseIdleConnections()
	waitGoroutines(t, base+5, 15*time.Second)
}

// waitGoroutines waits until at most n goroutines run.
func waitGoroutines(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines remain, want at most %d:\n%.6000s", runtime.NumGoroutine(), n, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
