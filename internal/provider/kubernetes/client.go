package kubernetes

import (
	"errors"
	"fmt"
	"os"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spate-dev/spate/internal/localkube/inpod"
)

// NewClient returns a client of the Kubernetes API from the kubeconfig at
// path (kubernetes.config.file) if given, else $KUBECONFIG or
// ~/.kube/config, else the in-cluster configuration of the pod it runs in
// (its service account's token).
//
// In a pod ($KUBERNETES_SERVICE_HOST set) without an explicit path, the
// in-cluster configuration comes first: a JobManager acts under its pod's
// service account, whatever a home directory holds.
func NewClient(path string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if path == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBECONFIG") == "" {
		// inpod reads the token where localkube's pod runner puts it,
		// and is client-go's own in a real pod.
		if cfg, err = inpod.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("read the pod's in-cluster Kubernetes configuration: %w", err)
		}
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if path != "" {
			rules.ExplicitPath = path
		}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			if clientcmd.IsEmptyConfig(err) {
				return nil, errors.New("no Kubernetes configuration: set KUBECONFIG, create ~/.kube/config, set " + KeyKubeConfig + ", or run in a pod")
			}
			return nil, fmt.Errorf("read the Kubernetes configuration: %w", err)
		}
	}
	// A cluster's start makes a burst of calls; client-go's default of 5
	// per second would pace them.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "spate"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the Kubernetes API at %s: %w", cfg.Host, err)
	}
	return c, nil
}

// explain adds what to do to an API error: a forbidden call names the
// RBAC rule that is missing, a quota or an invalid object says so.
func explain(err error) error {
	switch {
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"):
		return fmt.Errorf("%w (a ResourceQuota of the namespace refuses it: lower kubernetes.*.cpu/memory or raise the quota)", err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w (RBAC forbids it: grant the verb on the resource to the account, see deploy/kubernetes/rbac.yaml)", err)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("%w (the API server refused the object: check the pod template and the kubernetes.* configuration)", err)
	}
	return err
}
