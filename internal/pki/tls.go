package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Material is what a cluster member (JobManager, TaskManager) holds for
// its internal connections: its key pair and the CAs of the cluster.
type Material struct {
	Cert tls.Certificate
	// Roots verify the certificates of the cluster's members.
	Roots *x509.CertPool
	// RootsPEM is Roots as PEM, for the files handed to workers.
	RootsPEM []byte
}

// NewMaterial is the material of a member holding kp in a cluster of ca.
func NewMaterial(kp *KeyPair, ca *CA) (*Material, error) {
	cert, err := kp.TLSCertificate()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &Material{Cert: cert, Roots: pool, RootsPEM: CertPEM(ca.Cert.Raw)}, nil
}

// LoadMaterial reads a keystore (PEM certificate chain and private key)
// and a truststore (PEM CA certificates). The keystore must be readable
// by its owner only: its key is the cluster membership.
func LoadMaterial(keystore, truststore string) (*Material, error) {
	cert, err := LoadKeystore(keystore)
	if err != nil {
		return nil, err
	}
	tb, err := os.ReadFile(truststore)
	if err != nil {
		return nil, fmt.Errorf("read truststore: %w", err)
	}
	pool, _, err := ParsePool(tb)
	if err != nil {
		return nil, fmt.Errorf("truststore %s: %w (want PEM CA certificates)", truststore, err)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: intermediates(cert.Certificate),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("keystore %s is not trusted by truststore %s: %w (both must come from the cluster's CA)", keystore, truststore, err)
	}
	return &Material{Cert: cert, Roots: pool, RootsPEM: tb}, nil
}

// CheckPrivate fails if path is readable or writable by others than its
// owner.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("pki: %s has mode %04o: a key file must be private to its owner (chmod 600 %s)", path, m, path)
	}
	return nil
}

func intermediates(chain [][]byte) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, der := range chain[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			pool.AddCert(c)
		}
	}
	return pool
}

// Verify checks that the peer certificates of cs chain to roots (no
// host name check; any key usage) and returns the leaf.
func Verify(cs tls.ConnectionState, roots *x509.CertPool) (*x509.Certificate, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, errors.New("the peer presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	pool := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		pool.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("peer certificate %q: %w", leaf.Subject.CommonName, err)
	}
	return leaf, nil
}

// ServerConfig is a TLS 1.3 server configuration presenting cert that
// requires a client certificate chaining to clientCAs, and then passes
// it to check (nil accepts every verified client).
func ServerConfig(cert tls.Certificate, clientCAs *x509.CertPool, check func(*x509.Certificate) error) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		// Full 16 KiB records from the start: the data plane streams.
		DynamicRecordSizingDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf, err := Verify(cs, clientCAs)
			if err != nil {
				return err
			}
			if check != nil {
				return check(leaf)
			}
			return nil
		},
	}
}

// ClientConfig is a TLS 1.3 client configuration presenting cert that
// requires the server's certificate to chain to roots, and then passes it
// to check (nil accepts every verified server).
func ClientConfig(cert tls.Certificate, roots *x509.CertPool, check func(*x509.Certificate) error) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// The chain is verified below, without host names.
		InsecureSkipVerify:          true,
		DynamicRecordSizingDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf, err := Verify(cs, roots)
			if err != nil {
				return err
			}
			if check != nil {
				return check(leaf)
			}
			return nil
		},
	}
}

// WorkerCheck accepts only the certificate of worker worker (any worker
// if empty) of job.
func WorkerCheck(job, worker string) func(*x509.Certificate) error {
	return func(c *x509.Certificate) error {
		id, ok := IdentityOf(c)
		switch {
		case !ok || id.Role != RoleWorker:
			return fmt.Errorf("peer certificate %q is not a worker's", c.Subject.CommonName)
		case id.Job != job:
			return fmt.Errorf("peer certificate names a worker of job %s, not of job %s", id.Job, job)
		case worker != "" && id.Worker != worker:
			return fmt.Errorf("peer certificate names worker %s, not worker %s", id.Worker, worker)
		}
		return nil
	}
}

// LoadKeystore reads a keystore (PEM certificate chain and private key),
// which must be readable by its owner only.
func LoadKeystore(path string) (tls.Certificate, error) {
	if err := CheckPrivate(path); err != nil {
		return tls.Certificate{}, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read keystore: %w", err)
	}
	kp, err := ParseKeyPair(b)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("keystore %s: %w (want PEM: the certificate, its chain, then its private key)", path, err)
	}
	cert, err := kp.TLSCertificate()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("keystore %s: %w", path, err)
	}
	return cert, nil
}

// LoadTruststore reads a truststore (PEM CA certificates).
func LoadTruststore(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read truststore: %w", err)
	}
	pool, _, err := ParsePool(b)
	if err != nil {
		return nil, fmt.Errorf("truststore %s: %w (want PEM CA certificates)", path, err)
	}
	return pool, nil
}

// RESTServerConfig is the TLS 1.3 configuration of a REST API presenting
// cert; with clientCAs set, it requires a client certificate chaining to
// them (mutual TLS; no host names, as ServerConfig), and serves anyone
// otherwise. It speaks HTTP/1.1 only, whose deadlines the REST server
// enforces.
func RESTServerConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	if clientCAs != nil {
		c := ServerConfig(cert, clientCAs, nil)
		c.NextProtos = []string{"http/1.1"}
		return c
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
}

// RESTClientConfig is the TLS configuration of a REST client: it
// presents cert if not nil (for a server that requires one), and
// verifies the server's chain against roots without host names if roots
// is set (a cluster's own CA, as the internal connections), or against
// the system's roots with its host name otherwise.
func RESTClientConfig(cert *tls.Certificate, roots *x509.CertPool) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS13}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	if roots != nil {
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			_, err := Verify(cs, roots)
			return err
		}
	}
	return c
}
