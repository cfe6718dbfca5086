package client

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spate-dev/spate/internal/pki"
)

// TokenFileEnv names the file holding the bearer token a program in the
// client role sends (the spate CLI sets it from its configuration's
// rest.authentication.token-file).
const TokenFileEnv = "SPATE_REST_TOKEN_FILE"

// Environment variables naming the REST API's TLS files for a program in
// the client role (the spate CLI sets them from its configuration's
// security.ssl.rest.keystore and security.ssl.rest.truststore).
const (
	KeystoreEnv   = "SPATE_REST_SSL_KEYSTORE"
	TruststoreEnv = "SPATE_REST_SSL_TRUSTSTORE"
)

// WithTLS makes the client speak HTTPS with cfg: a bare "host:port"
// address then means https://host:port. It replaces the HTTP client of
// WithHTTPClient, if given before.
func WithTLS(cfg *tls.Config) Option {
	return func(c *Client) {
		if cfg == nil {
			return
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cfg
		c.hc = &http.Client{Transport: t}
		c.tls = true
	}
}

// LoadTLS is the TLS configuration of a client of a JobManager whose REST
// API serves HTTPS (security.ssl.rest.enabled): keystore, if not empty,
// is the client's certificate and key (PEM, mode 0600), presented to a
// JobManager that requires one (security.ssl.rest.authentication-enabled);
// truststore, if not empty, holds the CA certificates the JobManager's
// certificate must chain to (host names are not checked, as for the
// cluster's internal connections); without it the system's roots verify
// the JobManager's certificate and its host name.
func LoadTLS(keystore, truststore string) (*tls.Config, error) {
	var cert *tls.Certificate
	if keystore != "" {
		c, err := pki.LoadKeystore(keystore)
		if err != nil {
			return nil, fmt.Errorf("REST TLS: %w", err)
		}
		cert = &c
	}
	cfg := pki.RESTClientConfig(cert, nil)
	if truststore != "" {
		pool, err := pki.LoadTruststore(truststore)
		if err != nil {
			return nil, fmt.Errorf("REST TLS: %w", err)
		}
		cfg = pki.RESTClientConfig(cert, pool)
	}
	return cfg, nil
}

// WithToken makes the client authenticate with token, sent as
// "Authorization: Bearer <token>" (the JobManager's
// rest.authentication.token-file holds it); empty sends none.
func WithToken(token string) Option {
	return func(c *Client) { c.token = strings.TrimSpace(token) }
}

// ReadTokenFile reads the token of a token file, refusing a file others
// than its owner can read.
func ReadTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return "", fmt.Errorf("token file %s has mode %04o: it must be private to its owner (chmod 600 %s)", path, m, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// TokenFromEnvironment returns the option that sends the token of the
// file $SPATE_REST_TOKEN_FILE names, if it is set.
func TokenFromEnvironment() (Option, error) {
	path := os.Getenv(TokenFileEnv)
	if path == "" {
		return WithToken(""), nil
	}
	tok, err := ReadTokenFile(path)
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", TokenFileEnv, err)
	}
	return WithToken(tok), nil
}

// TLSFromEnvironment returns the option that speaks HTTPS with the files
// $SPATE_REST_SSL_KEYSTORE and $SPATE_REST_SSL_TRUSTSTORE name, if either
// is set (an option that does nothing otherwise).
func TLSFromEnvironment() (Option, error) {
	ks, ts := os.Getenv(KeystoreEnv), os.Getenv(TruststoreEnv)
	if ks == "" && ts == "" {
		return WithTLS(nil), nil
	}
	cfg, err := LoadTLS(ks, ts)
	if err != nil {
		return nil, fmt.Errorf("$%s, $%s: %w", KeystoreEnv, TruststoreEnv, err)
	}
	return WithTLS(cfg), nil
}
