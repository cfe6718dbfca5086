package process

import (
	"fmt"
	"path/filepath"

	"github.com/spate-dev/spate/internal/pki"
)

// The process provider's part of the cluster's internal TLS: with
// Config.CA (the CA the jobmanager command made in memory when the
// cluster started), each TaskManager gets a certificate naming it, in
// Dir/security/<id>/keystore.pem with the CA's certificate in
// truststore.pem beside it: files of mode 0600 in a directory of mode
// 0700, whose paths (never their contents) are on the TaskManager's
// command line. They are removed when the TaskManager has exited.

// securityDir is the directory of TaskManager id's certificate files.
func (p *Provider) securityDir(id string) string {
	return filepath.Join(p.cfg.Dir, "security", id)
}

// tlsArgs writes TaskManager id's certificate files and returns the
// configuration entries that point its taskmanager command at them; none
// without Config.CA.
func (p *Provider) tlsArgs(id string) ([]string, error) {
	ca := p.cfg.CA
	if ca == nil {
		return nil, nil
	}
	kp, err := ca.Issue(pki.Identity{Role: pki.RoleTaskManager, Name: id}, []string{"127.0.0.1", "localhost"})
	if err != nil {
		return nil, err
	}
	ks, err := kp.PEM()
	if err != nil {
		return nil, err
	}
	dir := p.securityDir(id)
	keystore, truststore := filepath.Join(dir, "keystore.pem"), filepath.Join(dir, "truststore.pem")
	if err := pki.WriteFile(keystore, ks); err != nil {
		return nil, fmt.Errorf("start taskmanager %s: %w", id, err)
	}
	if err := pki.WriteFile(truststore, pki.CertPEM(ca.Cert.Raw)); err != nil {
		return nil, fmt.Errorf("start taskmanager %s: %w", id, err)
	}
	return []string{"-D", "security.ssl.internal.enabled=true",
		"-D", "security.ssl.internal.keystore=" + keystore,
		"-D", "security.ssl.internal.truststore=" + truststore}, nil
}
