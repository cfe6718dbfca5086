// Package pki is the certificate authority of a Spate cluster's internal
// connections: it makes a cluster's CA, issues the certificates of its
// JobManager, TaskManagers and job workers, names each holder's identity
// in its certificate, stores keys and certificates in PEM files readable
// by their owner only (0600), and builds the TLS 1.3 configurations that
// require and verify a peer's certificate on both ends (mutual TLS).
//
// Identities are URIs in a certificate's subject alternative names:
//
//	spate://jobmanager              a cluster's JobManager
//	spate://taskmanager/<name>      a TaskManager
//	spate://worker/<job>/<worker>   worker <worker> of job <job>
//
// A certificate from an operator's own CA (a standalone cluster's
// security.ssl.internal.keystore) need not carry one: any certificate
// the truststore verifies is a member of the cluster (a JobManager or a
// TaskManager). Worker certificates come from the JobManager's worker CA
// only, which lives in its memory and signs the keys TaskManagers make
// for the workers they start; a worker identity is believed only from a
// certificate of that CA.
//
// Chains are verified against the truststore without host names: members
// are told apart by their certificates, not their addresses, as Flink's
// internal SSL does.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Roles of cluster processes.
const (
	RoleJobManager  = "jobmanager"
	RoleTaskManager = "taskmanager"
	RoleWorker      = "worker"
)

// Identity names the holder of a certificate.
type Identity struct {
	// Role is RoleJobManager, RoleTaskManager or RoleWorker.
	Role string
	// Name is a TaskManager's name.
	Name string
	// Job and Worker name a worker.
	Job, Worker string
}

// URI is the identity as a certificate carries it.
func (id Identity) URI() *url.URL {
	u := &url.URL{Scheme: "spate", Host: id.Role}
	switch id.Role {
	case RoleTaskManager:
		u.Path = "/" + id.Name
	case RoleWorker:
		u.Path = "/" + id.Job + "/" + id.Worker
	}
	return u
}

func (id Identity) String() string { return id.URI().String() }

// IdentityOf returns the identity cert names, if it names one.
func IdentityOf(cert *x509.Certificate) (Identity, bool) {
	for _, u := range cert.URIs {
		if u.Scheme != "spate" {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
		switch u.Host {
		case RoleJobManager:
			return Identity{Role: RoleJobManager}, true
		case RoleTaskManager:
			return Identity{Role: RoleTaskManager, Name: strings.Join(parts, "/")}, true
		case RoleWorker:
			if len(parts) == 2 && parts[0] != "" && parts[1] != "" {
				return Identity{Role: RoleWorker, Job: parts[0], Worker: parts[1]}, true
			}
		}
	}
	return Identity{}, false
}

// CA is a certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Validity of what NewCA makes and Issue signs.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	CertValidity = 365 * 24 * time.Hour
	// clockSkew backdates certificates, for hosts whose clocks differ.
	clockSkew = time.Hour
)

// NewCA makes a CA named name (ECDSA P-256).
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: make the key of CA %q: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Spate"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: make CA %q: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

// Sign signs a certificate of pub for id, valid for validity
// (CertValidity if 0), and returns it DER-encoded. hosts (names or IP
// addresses) go into its subject alternative names for clients that
// check them.
func (ca *CA) Sign(pub crypto.PublicKey, id Identity, hosts []string, validity time.Duration) ([]byte, error) {
	if validity <= 0 {
		validity = CertValidity
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: id.String(), Organization: []string{"Spate"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URI()},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign the certificate of %s: %w", id, err)
	}
	return der, nil
}

// PEM encodes ca as a keystore (its certificate, then its key), for a
// process that issues certificates after the one that made the CA: the
// JobManager of a Kubernetes cluster, whose client made it.
func (ca *CA) PEM() ([]byte, error) {
	return (&KeyPair{Key: ca.Key, Chain: [][]byte{ca.Cert.Raw}}).PEM()
}

// ParseCA reads a CA that CA.PEM wrote: its certificate, which must be a
// CA's, and its key.
func ParseCA(data []byte) (*CA, error) {
	kp, err := ParseKeyPair(data)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA: %w", err)
	}
	cert, err := x509.ParseCertificate(kp.Chain[0])
	if err != nil {
		return nil, fmt.Errorf("pki: read CA: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: read CA: certificate %q is not a CA's", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, Key: kp.Key}, nil
}

// KeyPair is a private key and its certificate chain, leaf first.
type KeyPair struct {
	Key   crypto.Signer
	Chain [][]byte // DER
}

// NewKey makes a private key for a certificate (ECDSA P-256).
func NewKey() (crypto.Signer, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// Issue makes a key and signs its certificate for id.
func (ca *CA) Issue(id Identity, hosts []string) (*KeyPair, error) {
	key, err := NewKey()
	if err != nil {
		return nil, fmt.Errorf("pki: make the key of %s: %w", id, err)
	}
	der, err := ca.Sign(key.Public(), id, hosts, 0)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Key: key, Chain: [][]byte{der}}, nil
}

// TLSCertificate is kp for crypto/tls.
func (kp *KeyPair) TLSCertificate() (tls.Certificate, error) {
	leaf, err := x509.ParseCertificate(kp.Chain[0])
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: kp.Chain, PrivateKey: kp.Key, Leaf: leaf}, nil
}

// PEM encodes kp: its certificates, then its key (PKCS #8), the form
// security.ssl.internal.keystore takes.
func (kp *KeyPair) PEM() ([]byte, error) {
	var out []byte
	for _, der := range kp.Chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	k, err := x509.MarshalPKCS8PrivateKey(kp.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})...), nil
}

// CertPEM encodes a DER certificate.
func CertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// ParseKeyPair reads a keystore: PEM certificates (leaf first) and one
// private key (PKCS #8, PKCS #1 or SEC 1).
func ParseKeyPair(data []byte) (*KeyPair, error) {
	kp := &KeyPair{}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			kp.Chain = append(kp.Chain, b.Bytes)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			if kp.Key != nil {
				return nil, errors.New("more than one private key")
			}
			key, err := parseKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			kp.Key = key
		}
	}
	switch {
	case len(kp.Chain) == 0:
		return nil, errors.New("no CERTIFICATE block")
	case kp.Key == nil:
		return nil, errors.New("no PRIVATE KEY block")
	}
	leaf, err := x509.ParseCertificate(kp.Chain[0])
	if err != nil {
		return nil, fmt.Errorf("parse the first certificate: %w", err)
	}
	if pub, ok := kp.Key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return nil, errors.New("the private key does not match the first certificate")
	}
	return kp, nil
}

func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, errors.New("the private key cannot sign")
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("unreadable private key (want PKCS #8, PKCS #1 or SEC 1)")
}

// ParsePool reads PEM certificates into a pool.
func ParsePool(data []byte) (*x509.CertPool, []*x509.Certificate, error) {
	pool := x509.NewCertPool()
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("parse certificate: %w", err)
		}
		pool.AddCert(c)
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no CERTIFICATE block")
	}
	return pool, certs, nil
}

// WriteFile writes data to path readable and writable by its owner only
// (0600), creating the directory (0700) if needed. An existing file is
// replaced, and keeps no wider mode.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
