package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/spate-dev/spate/internal/pki"
)

// The tests' standalone daemons run with internal TLS, as a standalone
// cluster must: one CA for the test binary, one keystore shared by the
// JobManagers and TaskManagers the tests start (as Flink's internal SSL
// shares one), made once beside the built binaries.
var (
	testTLSOnce sync.Once
	testTLSDir  string
	testTLSErr  error
	testCA      *pki.CA
)

// testCluster returns the tests' cluster CA and the directory of its
// keystore.pem and truststore.pem.
func testCluster(t testing.TB) (*pki.CA, string) {
	t.Helper()
	bin := binaries(t)
	testTLSOnce.Do(func() {
		testTLSDir = filepath.Join(bin, "tls")
		if testCA, testTLSErr = pki.NewCA("spate test cluster CA"); testTLSErr != nil {
			return
		}
		var kp *pki.KeyPair
		if kp, testTLSErr = testCA.Issue(pki.Identity{Role: pki.RoleTaskManager, Name: "test"}, []string{"127.0.0.1"}); testTLSErr != nil {
			return
		}
		var ks []byte
		if ks, testTLSErr = kp.PEM(); testTLSErr != nil {
			return
		}
		if testTLSErr = pki.WriteFile(filepath.Join(testTLSDir, "keystore.pem"), ks); testTLSErr != nil {
			return
		}
		testTLSErr = pki.WriteFile(filepath.Join(testTLSDir, "truststore.pem"), pki.CertPEM(testCA.Cert.Raw))
	})
	if testTLSErr != nil {
		t.Fatal(testTLSErr)
	}
	return testCA, testTLSDir
}

// withTestTLS adds the tests' keystore and truststore to the arguments of
// a standalone jobmanager or taskmanager command that has no TLS
// settings of its own.
func withTestTLS(t testing.TB, args []string) []string {
	if len(args) == 0 || (args[0] != "jobmanager" && args[0] != "taskmanager") ||
		slices.Contains(args, "--provider") || slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "security.ssl.internal.") }) {
		return args
	}
	_, dir := testCluster(t)
	return append([]string{args[0],
		"-D", "security.ssl.internal.keystore=" + filepath.Join(dir, "keystore.pem"),
		"-D", "security.ssl.internal.truststore=" + filepath.Join(dir, "truststore.pem")}, args[1:]...)
}

// workerDir returns a new temporary directory a job's workers may write
// in. Under a root TaskManager they run as users of their own
// (taskmanager.worker.uid-range), to whom a test's private temporary
// directories are closed: this one is open to all (0777), its parents
// traversable (0711).
func workerDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}
