package rest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/rest"
)

// TestSlowClientsAreCutOff reproduces the defect of issue 15: a multipart
// upload whose part header never completes, an upload that trickles a
// byte at a time, and a JSON body that never comes each held a goroutine
// and a descriptor forever. Hundreds of such connections must all be
// closed by the server within the deadlines, the goroutines they held
// must be gone, and a well-behaved client must be served meanwhile.
func TestSlowClientsAreCutOff(t *testing.T) {
	const perKind = 150 // × 4 kinds: 600 held connections
	f := fixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := rest.NewHandler(f, rest.Options{Logger: quietLogger(),
		BodyTimeout: 500 * time.Millisecond, UploadWindow: 500 * time.Millisecond, UploadMinBytes: 1 << 10,
		UploadTimeout: 3 * time.Second, WriteTimeout: time.Second})
	go func() {
		done <- rest.ServeWith(ctx, ln, h, rest.ServeConfig{ReadHeaderTimeout: time.Second, IdleTimeout: time.Second})
	}()
	defer func() {
		cancel()
		<-done
	}()
	addr := ln.Addr().String()
	base := runtime.NumGoroutine()

	kinds := map[string]func(c net.Conn) error{
		// The part header never ends.
		"multipart part header": func(c net.Conn) error {
			_, err := io.WriteString(c, "POST /v1/artifacts HTTP/1.1\r\nHost: jm\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000\r\n\r\n--XX\r\nContent-Disposition: form-data; name=\"artifact\"")
			return err
		},
		// One byte at a time, well below the minimum rate.
		"trickled upload": func(c net.Conn) error {
			if _, err := io.WriteString(c, "POST /v1/artifacts HTTP/1.1\r\nHost: jm\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"); err != nil {
				return err
			}
			for i := 0; i < 100; i++ {
				if _, err := c.Write([]byte{'x'}); err != nil {
					return nil // cut off: what the test wants
				}
				time.Sleep(100 * time.Millisecond) // the slow client's pace, not synchronisation
			}
			return nil
		},
		"JSON body never sent": func(c net.Conn) error {
			_, err := io.WriteString(c, "POST /v1/jobs HTTP/1.1\r\nHost: jm\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{")
			return err
		},
		"header never ends": func(c net.Conn) error {
			_, err := io.WriteString(c, "GET /v1/overview HTTP/1.1\r\nHost: jm\r\nX-Slow: ")
			return err
		},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*perKind)
	start := time.Now()
	for name, send := range kinds {
		for range perKind {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					errs <- fmt.Errorf("%s: dial: %w", name, err)
					return
				}
				defer c.Close()
				go send(c)
				// The server must close the connection: reading ends
				// (after a 408 answer, or none) within the test's bound.
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, err = io.Copy(io.Discard, c)
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					errs <- fmt.Errorf("%s: the server held the connection for 30 s", name)
				}
			}()
		}
	}
	// Meanwhile an ordinary client is served.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + addr + "/v1/overview")
	if err != nil {
		t.Fatalf("an ordinary request during the slow clients: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("an ordinary request during the slow clients: %s", resp.Status)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d slow connections cut off in %v", 4*perKind, time.Since(start).Round(time.Millisecond))
	waitGoroutines(t, base+5, 10*time.Second)
}

// TestTrickleAnswer408 checks the answer a trickling upload gets, and
// that an upload at a decent pace is not cut off by the same rule.
func TestTrickleAnswer408(t *testing.T) {
	f := fixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := rest.NewHandler(f, rest.Options{Logger: quietLogger(), UploadWindow: 300 * time.Millisecond, UploadMinBytes: 1 << 10})
	go func() { done <- rest.Serve(ctx, ln, h) }()
	defer func() {
		cancel()
		<-done
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /v1/artifacts HTTP/1.1\r\nHost: jm\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\nxx")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "upload too slow") {
		t.Fatalf("stalled upload: %s %s", resp.Status, b)
	}

	// 4 KiB every 100 ms: 40 KiB/s, above 1 KiB per 300 ms.
	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 4<<10)
		for i := 0; i < 15; i++ {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond) // the client's pace
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/v1/artifacts", pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload at a decent pace: %s %s", resp.Status, b)
	}
}

// waitGoroutines waits until at most n goroutines run.
func waitGoroutines(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines remain, want at most %d:\n%.8000s", runtime.NumGoroutine(), n, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
