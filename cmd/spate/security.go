package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/jobmanager"
	"github.com/spate-dev/spate/internal/localkube/inpod"
	"github.com/spate-dev/spate/internal/pki"
)

// Configuration keys of the daemons' security (docs/security.md).
const (
	keySSLInternalEnabled    = "security.ssl.internal.enabled"
	keySSLInternalKeystore   = "security.ssl.internal.keystore"
	keySSLInternalTruststore = "security.ssl.internal.truststore"
)

// clearWarning is logged, loudly, by a daemon whose internal connections
// are in the clear.
const clearWarning = "SECURITY WARNING: " + keySSLInternalEnabled + " is false: this cluster's internal connections (RPC and data plane) are NOT encrypted nor authenticated; anyone who reaches its ports can register a TaskManager, report tasks or inject records"

// internalTLS returns a standalone daemon's material for the cluster's
// internal connections: its keystore and truststore, both required unless
// security.ssl.internal.enabled is false (then nil, logged loudly).
func internalTLS(conf config.Config, log *slog.Logger, daemon string) (*pki.Material, error) {
	enabled, err := conf.Bool(keySSLInternalEnabled, true)
	if err != nil {
		return nil, err
	}
	if !enabled {
		log.Warn(clearWarning)
		return nil, nil
	}
	ks, _ := conf.Get(keySSLInternalKeystore)
	ts, _ := conf.Get(keySSLInternalTruststore)
	ks, ts = strings.TrimSpace(ks), strings.TrimSpace(ts)
	if ks == "" || ts == "" {
		return nil, errors.New(daemon + ": refusing to start with internal connections in the clear: set " + keySSLInternalKeystore +
			" (PEM: certificate and private key, mode 0600) and " + keySSLInternalTruststore +
			" (PEM: the cluster's CA certificates), or set " + keySSLInternalEnabled + ": false to run without TLS (see docs/security.md)")
	}
	// In a pod on localkube's runner, container paths are under its root.
	m, err := pki.LoadMaterial(inpod.Path(ks), inpod.Path(ts))
	if err != nil {
		return nil, fmt.Errorf("%s: internal TLS: %w", daemon, err)
	}
	return m, nil
}

// clusterCA makes the CA of a cluster the process provider runs, and the
// JobManager's material from it: nothing to set up, nothing on disk but
// the TaskManagers' own files. Explicit keystore settings, or TLS turned
// off, win: then no CA is made.
func clusterCA(conf config.Config, log *slog.Logger) (*pki.CA, *pki.Material, error) {
	if ks, _ := conf.Get(keySSLInternalKeystore); strings.TrimSpace(ks) != "" {
		m, err := internalTLS(conf, log, "jobmanager")
		return nil, m, err
	}
	enabled, err := conf.Bool(keySSLInternalEnabled, true)
	if err != nil {
		return nil, nil, err
	}
	if !enabled {
		log.Warn(clearWarning)
		return nil, nil, nil
	}
	ca, err := pki.NewCA("spate cluster CA")
	if err != nil {
		return nil, nil, err
	}
	kp, err := ca.Issue(pki.Identity{Role: pki.RoleJobManager}, []string{"127.0.0.1", "localhost"})
	if err != nil {
		return nil, nil, err
	}
	m, err := pki.NewMaterial(kp, ca)
	if err != nil {
		return nil, nil, err
	}
	return ca, m, nil
}

// keyRESTTokenFile is the file of the REST API's bearer token: the
// JobManager requires it, the CLI sends it.
const keyRESTTokenFile = "rest.authentication.token-file"

// clientAuth is the REST client's options of conf's credentials: the
// token of rest.authentication.token-file, if set, and HTTPS with
// security.ssl.rest.*.
func clientAuth(conf config.Config) ([]client.Option, error) {
	tok, err := restTokenOf(conf)
	if err != nil {
		return nil, err
	}
	tc, err := restTLSOf(conf)
	if err != nil {
		return nil, err
	}
	return []client.Option{client.WithToken(tok), client.WithTLS(tc)}, nil
}

// restTLSFiles are the files of conf's security.ssl.rest.* a client
// uses, if security.ssl.rest.enabled: the truststore that verifies the
// JobManager's certificate, and the keystore of the client's own where
// the JobManager requires one (authentication-enabled), as Flink's
// REST client.
func restTLSFiles(conf config.Config) (enabled bool, keystore, truststore string, err error) {
	if enabled, err = conf.Bool(jobmanager.KeySSLRESTEnabled, false); err != nil || !enabled {
		return false, "", "", err
	}
	mutual, err := conf.Bool(jobmanager.KeySSLRESTMutual, false)
	if err != nil {
		return false, "", "", err
	}
	if mutual {
		keystore, _ = conf.Get(jobmanager.KeySSLRESTKeystore)
		if keystore = strings.TrimSpace(keystore); keystore == "" {
			return false, "", "", errors.New(jobmanager.KeySSLRESTMutual + " is true but " + jobmanager.KeySSLRESTKeystore + " is not set: give the client's certificate and private key (PEM, mode 0600)")
		}
	}
	truststore, _ = conf.Get(jobmanager.KeySSLRESTTruststore)
	return true, keystore, strings.TrimSpace(truststore), nil
}

// restTLSOf is the TLS configuration of a REST client of conf, or nil
// if security.ssl.rest.enabled is not set.
func restTLSOf(conf config.Config) (*tls.Config, error) {
	enabled, ks, ts, err := restTLSFiles(conf)
	if err != nil || !enabled {
		return nil, err
	}
	return client.LoadTLS(ks, ts)
}

// restClientEnv is the environment that passes conf's REST credentials
// to a program in the client role: the files' paths, never their
// contents.
func restClientEnv(conf config.Config) ([]string, error) {
	var env []string
	if path, _ := conf.Get(keyRESTTokenFile); strings.TrimSpace(path) != "" {
		env = append(env, client.TokenFileEnv+"="+strings.TrimSpace(path))
	}
	enabled, ks, ts, err := restTLSFiles(conf)
	if err != nil {
		return nil, err
	}
	if enabled && (ks != "" || ts != "") {
		env = append(env, client.KeystoreEnv+"="+ks, client.TruststoreEnv+"="+ts)
	}
	return env, nil
}

// restURL is addr as a program in the client role takes it: https://addr
// if conf's REST API serves HTTPS (a program without the TLS files then
// verifies it with the system's roots), addr otherwise.
func restURL(addr string, conf config.Config) string {
	if enabled, _ := conf.Bool(jobmanager.KeySSLRESTEnabled, false); enabled && !strings.Contains(addr, "://") {
		return "https://" + addr
	}
	return addr
}

// restTokenOf is the token of conf's rest.authentication.token-file, or
// "" if none is set.
func restTokenOf(conf config.Config) (string, error) {
	path, _ := conf.Get(keyRESTTokenFile)
	if strings.TrimSpace(path) == "" {
		return "", nil
	}
	tok, err := client.ReadTokenFile(strings.TrimSpace(path))
	if err != nil {
		return "", fmt.Errorf("%s: %w", keyRESTTokenFile, err)
	}
	return tok, nil
}

// newClient is a REST client of addr with conf's credentials.
func newClient(addr string, conf config.Config, opts ...client.Option) (*client.Client, error) {
	auth, err := clientAuth(conf)
	if err != nil {
		return nil, err
	}
	return client.New(addr, append(auth, opts...)...)
}

// kubeSecurity is the REST security of a Kubernetes cluster's
// JobManager: its REST API, reached through the cluster's Services, needs
// no token unless one is configured (logged loudly). Its internal
// connections use the certificates the provider's client made and put in
// the cluster's TLS Secret (internalTLS reads them where the ConfigMap
// says they are mounted).
func kubeSecurity(conf config.Config, cfg *jobmanager.Config) {
	if cfg.RESTToken == nil && !cfg.RESTMutualTLS && !cfg.RESTUnauthenticated {
		cfg.RESTUnauthenticated = true
	}
}
