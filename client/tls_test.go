package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/pki"
)

// TestTLS serves a JobManager's health route over HTTPS requiring a
// client certificate: a client of a bare host:port with WithTLS speaks
// HTTPS with its certificate, as one configured through the environment
// does; LoadTLS refuses a keystore others can read, and a client that
// does not trust the server's CA gets an error that names the keys.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("client test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	keystore := func(name string, ca *pki.CA, mode os.FileMode) string {
		kp, err := ca.Issue(pki.Identity{Role: pki.RoleJobManager}, []string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := kp.PEM()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode)
		return path
	}
	trust := filepath.Join(dir, "truststore.pem")
	otherTrust := filepath.Join(dir, "other-truststore.pem")
	os.WriteFile(trust, pki.CertPEM(ca.Cert.Raw), 0o644)
	os.WriteFile(otherTrust, pki.CertPEM(other.Cert.Raw), 0o644)
	serverKS, clientKS := keystore("server.pem", ca, 0o600), keystore("client.pem", ca, 0o600)

	cert, err := pki.LoadKeystore(serverKS)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := pki.LoadTruststore(trust)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client certificate", http.StatusForbidden)
			return
		}
		w.Write([]byte(`{"taskmanagers": 3}`))
	}))
	srv.TLS = pki.RESTServerConfig(cert, roots)
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")

	ctx := context.Background()
	tc, err := client.LoadTLS(clientKS, trust)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(addr, client.WithTLS(tc))
	if err != nil {
		t.Fatal(err)
	}
	if ov, err := c.Overview(ctx); err != nil || ov.TaskManagers != 3 {
		t.Errorf("Overview over HTTPS of bare %s = %+v, %v", addr, ov, err)
	}

	t.Setenv(client.KeystoreEnv, clientKS)
	t.Setenv(client.TruststoreEnv, trust)
	opt, err := client.TLSFromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	if c, err = client.New(addr, opt); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Overview(ctx); err != nil {
		t.Errorf("Overview with $%s and $%s: %v", client.KeystoreEnv, client.TruststoreEnv, err)
	}

	if _, err := client.LoadTLS(keystore("open.pem", ca, 0o644), trust); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("LoadTLS of a keystore of mode 0644: %v, want a refusal", err)
	}
	distrust, err := client.LoadTLS(clientKS, otherTrust)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = client.New(addr, client.WithTLS(distrust)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Overview(ctx); err == nil || !strings.Contains(err.Error(), "security.ssl.rest.truststore") {
		t.Errorf("Overview with a truststore of another CA: %v, want a TLS error naming the keys", err)
	}
}
