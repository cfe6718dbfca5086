package rest_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/rest"
)

// TestServeTLS serves HTTPS requiring client certificates: a client with
// a certificate of the CA is answered, one without is refused at the
// handshake, and a connection that never finishes its handshake is closed
// within the header's deadline.
func TestServeTLS(t *testing.T) {
	ca, err := pki.NewCA("test REST CA")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(id pki.Identity) tls.Certificate {
		kp, err := ca.Issue(id, []string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := kp.TLSCertificate()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server, clientCert := issue(pki.Identity{Role: pki.RoleJobManager}), issue(pki.Identity{Role: pki.RoleTaskManager, Name: "cli"})
	roots, _, err := pki.ParsePool(pki.CertPEM(ca.Cert.Raw))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := rest.NewHandler(fixture(t), rest.Options{Logger: quietLogger()})
	const headerTimeout = 500 * time.Millisecond
	go func() {
		done <- rest.ServeWith(ctx, ln, h, rest.ServeConfig{ReadHeaderTimeout: headerTimeout, TLS: pki.RESTServerConfig(server, roots)})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	url := "https://" + ln.Addr().String() + rest.HealthPath
	get := func(cert *tls.Certificate) error {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: pki.RESTClientConfig(cert, roots)}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
	if err := get(&clientCert); err != nil {
		t.Errorf("a client with a certificate of the CA: %v", err)
	}
	if err := get(nil); err == nil {
		t.Error("a client without a certificate was answered")
	}

	// A handshake that never comes.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the server wrote to a client that sent nothing")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("a connection without a handshake is still open after 30 s")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a connection without a handshake was closed after %v, want about %v", d, headerTimeout)
	}
}
