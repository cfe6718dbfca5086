package process

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spate-dev/spate/internal/pki"
)

// TestTaskManagerCertificateFiles: the provider hands a TaskManager its
// certificate in files of mode 0600 in a directory of mode 0700, naming
// the TaskManager; its command line holds their paths, never a key.
func TestTaskManagerCertificateFiles(t *testing.T) {
	ca, err := pki.NewCA("test cluster")
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Binary: "/bin/true", Dir: t.TempDir(), CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	args, err := p.tlsArgs("tm-7")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	if strings.Contains(line, "PRIVATE KEY") || strings.Contains(line, "CERTIFICATE") {
		t.Fatalf("key material on the command line: %s", line)
	}
	dir := p.securityDir("tm-7")
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory %s: %v %v, want mode 0700", dir, fi, err)
	}
	for _, f := range []string{"keystore.pem", "truststore.pem"} {
		path := filepath.Join(dir, f)
		if !strings.Contains(line, path) {
			t.Errorf("the arguments %q do not name %s", line, path)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", path, fi, err)
		}
	}
	m, err := pki.LoadMaterial(filepath.Join(dir, "keystore.pem"), filepath.Join(dir, "truststore.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := pki.IdentityOf(m.Cert.Leaf); !ok || id != (pki.Identity{Role: pki.RoleTaskManager, Name: "tm-7"}) {
		t.Errorf("the certificate names %v", id)
	}
}
