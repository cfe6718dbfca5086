// Package inpod is what a program running in a pod needs to run unchanged
// on localkube's pod runner (package internal/localkube) as on a real
// node, where nothing of it is needed: every function is the identity, or
// client-go's own, when the runner's environment variables are unset.
//
// On the runner a pod is a local process without a container. Two things
// differ for the program:
//
//   - Files of the container's file system (the image, and the volumes
//     mounted into it) are under the directory $LOCALKUBE_ROOT, which
//     stands for "/": Path maps a container path to it. This includes the
//     service account token client-go's in-cluster configuration reads
//     (InClusterConfig) and `local://` paths into the image.
//   - Service names (<service>.<namespace>[.svc[.cluster.local]]) resolve
//     through the cluster DNS at $LOCALKUBE_DNS: UseClusterDNS points this
//     process's resolver at it.
package inpod

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
)

// The environment variables the pod runner sets.
const (
	EnvRoot = "LOCALKUBE_ROOT"
	EnvDNS  = "LOCALKUBE_DNS"
)

// The service account files client-go's in-cluster configuration reads.
const (
	TokenFile  = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	RootCAFile = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// Root is the directory standing for the container's "/", or "" when not
// on the pod runner.
func Root() string { return os.Getenv(EnvRoot) }

// Path is where the container path p is: p itself when not on the pod
// runner, else p under Root. A relative p is returned as it is.
func Path(p string) string {
	root := Root()
	if root == "" || !filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// LocalPath resolves a `local://` URI (a path in the image) to a file
// path: local:///opt/app/job is Path("/opt/app/job"). Other strings are
// returned as they are.
func LocalPath(uri string) string {
	p, ok := strings.CutPrefix(uri, "local://")
	if !ok {
		return uri
	}
	return Path(p)
}

// InClusterConfig is rest.InClusterConfig, reading the service account's
// token and CA under Root on the pod runner.
func InClusterConfig() (*rest.Config, error) {
	if Root() == "" {
		return rest.InClusterConfig()
	}
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, rest.ErrNotInCluster
	}
	ca := Path(RootCAFile)
	if _, err := os.Stat(Path(TokenFile)); err != nil {
		return nil, fmt.Errorf("in-cluster configuration: no service account token (is automountServiceAccountToken off?): %w", err)
	}
	return &rest.Config{
		Host:            "https://" + net.JoinHostPort(host, port),
		BearerTokenFile: Path(TokenFile),
		TLSClientConfig: rest.TLSClientConfig{CAFile: ca},
	}, nil
}

// UseClusterDNS makes this process's resolver (net.DefaultResolver, which
// net.Dial, net/http and gRPC use) ask the cluster DNS, when on the pod
// runner; it reports whether it did. Call it at the start of main.
func UseClusterDNS() bool {
	addr := os.Getenv(EnvDNS)
	if addr == "" {
		return false
	}
	net.DefaultResolver.PreferGo = true
	net.DefaultResolver.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return true
}
