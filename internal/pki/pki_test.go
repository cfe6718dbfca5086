package pki

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestIdentityRoundTrip(t *testing.T) {
	ca, err := NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []Identity{
		{Role: RoleJobManager},
		{Role: RoleTaskManager, Name: "tm-3"},
		{Role: RoleWorker, Job: "0123abcd", Worker: "w1"},
	} {
		kp, err := ca.Issue(id, []string{"127.0.0.1", "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := kp.TLSCertificate()
		got, ok := IdentityOf(cert.Leaf)
		if !ok || got != id {
			t.Errorf("IdentityOf(Issue(%v)) = %v, %v", id, got, ok)
		}
		pemBytes, _ := kp.PEM()
		back, err := ParseKeyPair(pemBytes)
		if err != nil || len(back.Chain) != 1 {
			t.Errorf("ParseKeyPair(PEM()) = %v, %v", back, err)
		}
	}
	other, _ := NewCA("other")
	kp, _ := other.Issue(Identity{Role: RoleTaskManager, Name: "x"}, nil)
	pemBytes, _ := kp.PEM()
	mine, _ := ca.Issue(Identity{Role: RoleTaskManager, Name: "y"}, nil)
	minePEM, _ := mine.PEM()
	// A certificate with another's key.
	mixed := append(CertPEM(mine.Chain[0]), pemBytes[len(CertPEM(kp.Chain[0])):]...)
	if _, err := ParseKeyPair(mixed); err == nil {
		t.Error("a keystore whose key is not its certificate's was accepted")
	}
	if _, err := ParseKeyPair(minePEM); err != nil {
		t.Error(err)
	}
}

func TestVerifyAndChecks(t *testing.T) {
	ca, _ := NewCA("test")
	other, _ := NewCA("other")
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	leaf := func(c *CA, id Identity) tls.ConnectionState {
		kp, _ := c.Issue(id, nil)
		cert, _ := kp.TLSCertificate()
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}
	}
	if _, err := Verify(leaf(ca, Identity{Role: RoleTaskManager, Name: "a"}), pool); err != nil {
		t.Errorf("the CA's certificate: %v", err)
	}
	if _, err := Verify(leaf(other, Identity{Role: RoleTaskManager, Name: "a"}), pool); err == nil {
		t.Error("another CA's certificate verified")
	}
	if _, err := Verify(tls.ConnectionState{}, pool); err == nil {
		t.Error("no certificate verified")
	}
	w := leaf(ca, Identity{Role: RoleWorker, Job: "A", Worker: "w0"}).PeerCertificates[0]
	for _, c := range []struct {
		job, worker string
		ok          bool
	}{{"A", "", true}, {"A", "w0", true}, {"A", "w1", false}, {"B", "", false}} {
		if err := WorkerCheck(c.job, c.worker)(w); (err == nil) != c.ok {
			t.Errorf("WorkerCheck(%s, %s) = %v", c.job, c.worker, err)
		}
	}
	tm := leaf(ca, Identity{Role: RoleTaskManager, Name: "a"}).PeerCertificates[0]
	if WorkerCheck("A", "")(tm) == nil {
		t.Error("a TaskManager's certificate passed for a worker's")
	}
}

func TestWriteFilePrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "key.pem")
	if err := WriteFile(p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	if err := WriteFile(p, []byte("y")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	di, _ := os.Stat(filepath.Dir(p))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("file %v, directory %v; want 0600 and 0700", fi.Mode(), di.Mode())
	}
	if CheckPrivate(p) != nil {
		t.Error("CheckPrivate refused a 0600 file")
	}
}

// TestCARoundTrip: a CA written by PEM is read back by ParseCA and signs
// certificates its original's pool verifies; a member's keystore is not
// taken for a CA.
func TestCARoundTrip(t *testing.T) {
	ca, err := NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	data, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(data)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := back.Issue(Identity{Role: RoleTaskManager, Name: "tm-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := kp.TLSCertificate()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("a certificate of the CA read back does not verify: %v", err)
	}
	member, _ := kp.PEM()
	if _, err := ParseCA(member); err == nil {
		t.Error("a TaskManager's keystore was read as a CA")
	}
}

// FuzzParseCA: no input makes ParseCA panic, and what it accepts is a CA
// that can sign.
func FuzzParseCA(f *testing.F) {
	ca, _ := NewCA("seed")
	data, _ := ca.PEM()
	f.Add(data)
	kp, _ := ca.Issue(Identity{Role: RoleJobManager}, nil)
	member, _ := kp.PEM()
	f.Add(member)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseCA(data)
		if err != nil {
			return
		}
		if !got.Cert.IsCA {
			t.Fatalf("ParseCA accepted a certificate that is not a CA's")
		}
		if _, err := got.Issue(Identity{Role: RoleJobManager}, nil); err != nil {
			t.Fatalf("an accepted CA cannot sign: %v", err)
		}
	})
}
