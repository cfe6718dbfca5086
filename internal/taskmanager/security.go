package taskmanager

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/spate-dev/spate/internal/deployment"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// dialOption is how the TaskManager reaches the JobManager: mutual TLS
// with its certificate (Config.TLS), or in the clear.
func (tm *TaskManager) dialOption() grpc.DialOption {
	if tm.cfg.TLS == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientConfig(tm.cfg.TLS.Cert, tm.cfg.TLS.Roots, nil)))
}

// workerTLS makes the key of a job's worker, has the JobManager sign its
// certificate (naming the job and the worker) and writes the worker's
// files into its directory dir, each 0600 and owned by owner (see
// workerUser). The key never leaves this host.
func (tm *TaskManager) workerTLS(ctx context.Context, js jmSession, d *rpcpb.DeployWorker, dir string, owner *workerUser) (*deployment.TLSFiles, error) {
	if tm.cfg.TLS == nil {
		return nil, nil
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, fmt.Errorf("make the key of worker %s: %w", d.WorkerId, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	resp, err := rpcpb.NewClusterSecurityClient(js.conn).IssueWorkerCertificate(ctx, &rpcpb.IssueWorkerCertificateRequest{
		TaskmanagerId: js.id, JobId: d.JobId, WorkerId: d.WorkerId, PublicKey: pub,
	})
	if err != nil {
		return nil, fmt.Errorf("get the certificate of worker %s from the JobManager: %w", d.WorkerId, err)
	}
	ks, err := (&pki.KeyPair{Key: key, Chain: [][]byte{resp.Certificate}}).PEM()
	if err != nil {
		return nil, err
	}
	files := &deployment.TLSFiles{
		Keystore:   filepath.Join(dir, "tls", "keystore.pem"),
		Truststore: filepath.Join(dir, "tls", "truststore.pem"),
		PeerCA:     filepath.Join(dir, "tls", "peer-ca.pem"),
	}
	for path, data := range map[string][]byte{
		files.Keystore:   ks,
		files.Truststore: tm.cfg.TLS.RootsPEM,
		files.PeerCA:     pki.CertPEM(resp.WorkerCa),
	} {
		if err := pki.WriteFile(path, data); err != nil {
			return nil, err
		}
		if err := owner.own(path); err != nil {
			return nil, err
		}
	}
	if err := owner.own(filepath.Join(dir, "tls")); err != nil {
		return nil, err
	}
	return files, nil
}
