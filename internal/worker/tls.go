package worker

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/spate-dev/spate/internal/network"
	"github.com/spate-dev/spate/internal/pki"
)

// workerCreds are a worker's credentials, read from its TLSFiles.
type workerCreds struct {
	cert    tls.Certificate
	cluster *x509.CertPool
	peers   *x509.CertPool
}

func creds(d *Deployment) (*workerCreds, error) {
	f := d.TLS
	kb, err := os.ReadFile(f.Keystore)
	if err != nil {
		return nil, fmt.Errorf("worker %s: read its certificate: %w", d.WorkerID, err)
	}
	kp, err := pki.ParseKeyPair(kb)
	if err != nil {
		return nil, fmt.Errorf("worker %s: keystore %s: %w", d.WorkerID, f.Keystore, err)
	}
	c := &workerCreds{}
	if c.cert, err = kp.TLSCertificate(); err != nil {
		return nil, fmt.Errorf("worker %s: %w", d.WorkerID, err)
	}
	for _, p := range []struct {
		path string
		into **x509.CertPool
	}{{f.Truststore, &c.cluster}, {f.PeerCA, &c.peers}} {
		b, err := os.ReadFile(p.path)
		if err != nil {
			return nil, fmt.Errorf("worker %s: %w", d.WorkerID, err)
		}
		if *p.into, _, err = pki.ParsePool(b); err != nil {
			return nil, fmt.Errorf("worker %s: %s: %w", d.WorkerID, p.path, err)
		}
	}
	return c, nil
}

// dialOption is how the worker's RPCs reach the JobManager: mutual TLS
// with its certificate, or in the clear when the cluster's internal
// connections are (security.ssl.internal.enabled: false).
func dialOption(d *Deployment) (grpc.DialOption, error) {
	if d.TLS == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	c, err := creds(d)
	if err != nil {
		return nil, err
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientConfig(c.cert, c.cluster, nil))), nil
}

// dialJobManager opens the worker's connection to the JobManager.
func dialJobManager(d *Deployment) (*grpc.ClientConn, error) {
	opt, err := dialOption(d)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(d.JobManager, opt)
}

// networkTLS is the data plane's TLS: the job's workers accept and reach
// only one another.
func networkTLS(d *Deployment) (*network.TLS, error) {
	if d.TLS == nil {
		return nil, nil
	}
	c, err := creds(d)
	if err != nil {
		return nil, err
	}
	return &network.TLS{
		Server: pki.ServerConfig(c.cert, c.peers, pki.WorkerCheck(d.JobID, "")),
		Client: func(peerID string) *tls.Config {
			return pki.ClientConfig(c.cert, c.peers, pki.WorkerCheck(d.JobID, peerID))
		},
		PeerID: func(cert *x509.Certificate) (string, error) {
			id, ok := pki.IdentityOf(cert)
			if !ok || id.Role != pki.RoleWorker {
				return "", fmt.Errorf("certificate %q is not a worker's", cert.Subject.CommonName)
			}
			return id.Worker, nil
		},
	}, nil
}
