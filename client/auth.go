package client

import (
	"fmt"
	"os"
	"strings"
)

// TokenFileEnv names the file holding the bearer token a program in the
// client role sends (the spate CLI sets it from its configuration's
// rest.authentication.token-file).
const TokenFileEnv = "SPATE_REST_TOKEN_FILE"

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
