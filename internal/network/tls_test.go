package network

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/pki"
)

// workerTLS is the data-plane TLS of worker of job, its certificate
// signed by ca, as package worker builds it.
func workerTLS(t testing.TB, ca *pki.CA, job, worker string) (*TLS, tls.Certificate) {
	t.Helper()
	kp, err := ca.Issue(pki.Identity{Role: pki.RoleWorker, Job: job, Worker: worker}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := kp.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &TLS{
		Server: pki.ServerConfig(cert, pool, pki.WorkerCheck(job, "")),
		Client: func(peer string) *tls.Config { return pki.ClientConfig(cert, pool, pki.WorkerCheck(job, peer)) },
		PeerID: func(c *x509.Certificate) (string, error) {
			id, ok := pki.IdentityOf(c)
			if !ok || id.Role != pki.RoleWorker {
				return "", errors.New("not a worker")
			}
			return id.Worker, nil
		},
	}, cert
}

// TestTLSRefusesStrangers: over TLS, two workers of job A exchange a
// stream; before the real peer comes, a worker of job B (its certificate
// from the same CA), a client without a certificate and a plaintext
// HELLO all reach the acceptor: each is dropped, and the run goes on.
func TestTLSRefusesStrangers(t *testing.T) {
	ca, err := pki.NewCA("test worker CA")
	if err != nil {
		t.Fatal(err)
	}
	ta, _ := workerTLS(t, ca, "jobA", "w1")
	tb, _ := workerTLS(t, ca, "jobA", "w2")
	_, spyCert := workerTLS(t, ca, "jobB", "w1")
	a := listen(t, "w1", Config{TLS: ta})
	b := listen(t, "w2", Config{TLS: tb, DialTimeout: 5 * time.Second})
	src, dst := make(chan exec.Msg, 4), make(chan exec.Msg, 4)
	g := streamGen{tag: "a->b", n: 200}
	a.Send("w2", b.Addr(), 1, src, 2)
	b.Receive("w1", 1, dst, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rb := start(ctx, b)

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	strangers := map[string]func() error{
		"a worker of job B": func() error {
			return tlsHello(b.Addr(), pki.ClientConfig(spyCert, pool, nil))
		},
		"no certificate": func() error {
			return tlsHello(b.Addr(), &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true})
		},
		"plaintext": func() error {
			c, err := net.Dial("tcp", b.Addr())
			if err != nil {
				return err
			}
			defer c.Close()
			c.Write(enc(hello("w1", "w2", protocolVersion)))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 1))
			return err
		},
	}
	for name, try := range strangers {
		if err := try(); err == nil {
			t.Errorf("%s: the connection was served", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	ra := start(ctx, a)
	go g.produce(ctx, src)
	if err := g.consume(ctx, dst, nil); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan error{"w1": ra, "w2": rb} {
		if err := wait(t, name, ch, 10*time.Second); err != nil {
			t.Errorf("Run of %s: %v", name, err)
		}
	}
}

// tlsHello handshakes with cfg, sends a HELLO from w1 and waits for the
// answer: an error unless the endpoint served the connection.
func tlsHello(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(enc(hello("w1", "w2", protocolVersion))); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
}

// TestTLSCertificateMustMatchHello: a worker of the right job whose HELLO
// claims another worker's id than its certificate names fails the run, as
// a wrong HELLO does.
func TestTLSCertificateMustMatchHello(t *testing.T) {
	ca, _ := pki.NewCA("test worker CA")
	tb, _ := workerTLS(t, ca, "jobA", "w2")
	_, w3 := workerTLS(t, ca, "jobA", "w3")
	b := listen(t, "w2", Config{TLS: tb})
	b.Receive("w1", 1, make(chan exec.Msg, 1), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rb := start(ctx, b)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	tlsHello(b.Addr(), pki.ClientConfig(w3, pool, nil))
	err := wait(t, "w2", rb, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), `its certificate names worker "w3"`) {
		t.Fatalf("Run = %v, want a refusal naming the certificate's worker", err)
	}
}

// BenchmarkThroughputTLS is BenchmarkThroughput over mutual TLS 1.3.
func BenchmarkThroughputTLS(b *testing.B) {
	for _, tlsOn := range []bool{false, true} {
		b.Run(fmt.Sprintf("tls=%v", tlsOn), func(b *testing.B) {
			benchThroughputTLS(b, tlsOn)
		})
	}
}

func benchThroughputTLS(b *testing.B, on bool) {
	var ca, cb Config
	if on {
		authority, _ := pki.NewCA("bench CA")
		ca.TLS, _ = workerTLS(b, authority, "j", "w1")
		cb.TLS, _ = workerTLS(b, authority, "j", "w2")
	}
	benchThroughputWith(b, 1, 64<<10, ca, cb)
}
