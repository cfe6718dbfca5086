package pki

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOpenSSLKeystore loads a keystore and truststore made with the
// openssl commands of docs/security.md.
func TestOpenSSLKeystore(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650", "-subj", "/CN=spate-ca", "-keyout", "ca.key", "-out", "ca.pem")
	run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=spate-member", "-keyout", "member.key", "-out", "member.csr")
	run("x509", "-req", "-in", "member.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "365", "-out", "member.pem")
	cert, _ := os.ReadFile(filepath.Join(dir, "member.pem"))
	key, _ := os.ReadFile(filepath.Join(dir, "member.key"))
	ks := filepath.Join(dir, "keystore.pem")
	if err := WriteFile(ks, append(cert, key...)); err != nil {
		t.Fatal(err)
	}
	m, err := LoadMaterial(ks, filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Cert.Leaf.Subject.CommonName != "spate-member" {
		t.Errorf("leaf = %q", m.Cert.Leaf.Subject.CommonName)
	}
	// A keystore others may read is refused.
	os.Chmod(ks, 0o644)
	if _, err := LoadMaterial(ks, filepath.Join(dir, "ca.pem")); err == nil {
		t.Error("a world-readable keystore was loaded")
	}
}
