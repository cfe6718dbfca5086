package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/provider"
	"github.com/spate-dev/spate/internal/provider/kubernetes"
)

// TestKubernetesInternalTLS deploys a session on the real API server and
// checks the cluster's TLS Secret: its exact keys, labels and owner (the
// JobManager Deployment), keystores of the cluster's CA naming the
// JobManager and the TaskManagers; each pod mounts its own keystore and
// the truststore, 0600, and no key is in a pod's spec (command line,
// environment). The TaskManager pod registers over mutual TLS; a
// TaskManager in the clear, or with another CA's certificate, does not.
// Stopping the cluster leaves nothing, the Secret included.
func TestKubernetesInternalTLS(t *testing.T) {
	c, ns := kubeLive(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	id := "tls"
	cl, err := kubernetes.Deployer{Client: c.Client}.Deploy(ctx, provider.ClusterSpec{Mode: provider.Session, Config: kubeConfig(ns, id), TaskManagers: 1})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			cl.Stop(context.Background())
		}
	}()
	kc := c.Client
	dep, err := kc.AppsV1().Deployments(ns).Get(ctx, id, metav1.GetOptions{})
	mustOK(t, err)

	// The Secret.
	sec, err := kc.CoreV1().Secrets(ns).Get(ctx, kubernetes.TLSSecretName(id), metav1.GetOptions{})
	mustOK(t, err)
	if keys := slices.Sorted(maps.Keys(sec.Data)); !slices.Equal(keys, []string{kubernetes.TLSSecretJobManager, kubernetes.TLSSecretTaskManager, kubernetes.TLSSecretTruststore}) {
		t.Errorf("Secret %s keys = %v", sec.Name, keys)
	}
	if sec.Type != corev1.SecretTypeOpaque || !maps.Equal(sec.Labels, kubernetes.Labels(id, kubernetes.ComponentJobManager)) {
		t.Errorf("Secret %s: type %s labels %v", sec.Name, sec.Type, sec.Labels)
	}
	if refs := sec.OwnerReferences; len(refs) != 1 || refs[0].UID != dep.UID || refs[0].Kind != "Deployment" || refs[0].Name != id || refs[0].Controller == nil || !*refs[0].Controller {
		t.Errorf("Secret %s owner references = %v, want the Deployment %s (uid %s)", sec.Name, refs, id, dep.UID)
	}
	roots, cas, err := pki.ParsePool(sec.Data[kubernetes.TLSSecretTruststore])
	mustOK(t, err)
	if len(cas) != 1 || !cas[0].IsCA {
		t.Errorf("truststore holds %d certificates, want the cluster's CA", len(cas))
	}
	for key, want := range map[string]pki.Identity{
		kubernetes.TLSSecretJobManager:  {Role: pki.RoleJobManager},
		kubernetes.TLSSecretTaskManager: {Role: pki.RoleTaskManager, Name: id},
	} {
		kp, err := pki.ParseKeyPair(sec.Data[key])
		mustOK(t, err)
		cert, err := kp.TLSCertificate()
		mustOK(t, err)
		if got, ok := pki.IdentityOf(cert.Leaf); !ok || got != want {
			t.Errorf("%s names %v, want %v", key, got, want)
		}
		if _, err := cert.Leaf.Verify(x509Options(roots)); err != nil {
			t.Errorf("%s is not of the cluster's CA: %v", key, err)
		}
	}

	// The pods mount their own keystore, 0600, and carry no key.
	tmName := kubernetes.TaskManagerPodName(id, 1, 1)
	var tm *corev1.Pod
	waitFor(t, time.Minute, "TaskManager pod "+tmName, func() bool {
		tm, err = kc.CoreV1().Pods(ns).Get(ctx, tmName, metav1.GetOptions{})
		return err == nil && tm.Status.Phase == corev1.PodRunning
	})
	jmPods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.ClusterSelector(id) + ",component=jobmanager"})
	mustOK(t, err)
	if len(jmPods.Items) != 1 {
		t.Fatalf("JobManager pods: %d", len(jmPods.Items))
	}
	jm := jmPods.Items[0]
	for _, p := range []struct {
		pod      *corev1.Pod
		keystore string
	}{{&jm, kubernetes.TLSSecretJobManager}, {tm, kubernetes.TLSSecretTaskManager}} {
		var vol *corev1.SecretVolumeSource
		for _, v := range p.pod.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == kubernetes.TLSSecretName(id) {
				vol = v.Secret
			}
		}
		want := []corev1.KeyToPath{{Key: p.keystore, Path: kubernetes.TLSKeystoreFile}, {Key: kubernetes.TLSSecretTruststore, Path: kubernetes.TLSTruststoreFile}}
		if vol == nil || vol.DefaultMode == nil || *vol.DefaultMode != 0o600 || !slices.Equal(vol.Items, want) {
			t.Errorf("pod %s mounts %+v, want items %v of Secret %s, mode 0600", p.pod.Name, vol, want, kubernetes.TLSSecretName(id))
		}
		mounted := false
		for _, m := range p.pod.Spec.Containers[0].VolumeMounts {
			mounted = mounted || m.MountPath == kubernetes.TLSDir
		}
		if !mounted {
			t.Errorf("pod %s: its main container does not mount %s", p.pod.Name, kubernetes.TLSDir)
		}
		spec, _ := json.Marshal(p.pod.Spec)
		if strings.Contains(string(spec), "PRIVATE KEY") || strings.Contains(string(spec), "BEGIN CERTIFICATE") {
			t.Errorf("pod %s's spec holds key material", p.pod.Name)
		}
		for _, f := range []string{kubernetes.TLSKeystoreFile, kubernetes.TLSTruststoreFile} {
			path := filepath.Join(c.PodDir(ns, p.pod.Name), "root", kubernetes.TLSDir, f)
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("pod %s: %s: %v, mode %v, want 0600", p.pod.Name, f, err, fi)
			}
		}
		if b, err := os.ReadFile(filepath.Join(c.PodDir(ns, p.pod.Name), "root", kubernetes.TLSDir, kubernetes.TLSKeystoreFile)); err != nil || string(b) != string(sec.Data[p.keystore]) {
			t.Errorf("pod %s's keystore is not the Secret's %s: %v", p.pod.Name, p.keystore, err)
		}
	}

	// The TaskManager pod registered over mutual TLS; strangers do not.
	rc, err := client.New(cl.REST())
	mustOK(t, err)
	tmCount := func() int {
		tms, err := rc.TaskManagers(ctx)
		if err != nil {
			return -1
		}
		return len(tms.TaskManagers)
	}
	waitFor(t, time.Minute, "the TaskManager pod to register", func() bool { return tmCount() == 1 })
	rpc := fmt.Sprintf("%s:%d", jm.Status.PodIP, kubernetes.RPCPort)
	_, testDir := testCluster(t) // another CA's keystore
	intruders := []*proc{
		start(t, "taskmanager", "--jobmanager", rpc, "-D", "taskmanager.resource-id=intruder-clear", "-D", "security.ssl.internal.enabled=false"),
		start(t, "taskmanager", "--jobmanager", rpc, "-D", "taskmanager.resource-id=intruder-foreign-ca",
			"-D", "security.ssl.internal.keystore="+filepath.Join(testDir, "keystore.pem"), "-D", "security.ssl.internal.truststore="+filepath.Join(testDir, "truststore.pem")),
	}
	for _, p := range intruders {
		waitFor(t, 30*time.Second, "the intruders to fail registering", func() bool {
			return strings.Contains(p.stderr(), "no session with the JobManager")
		})
	}
	if n := tmCount(); n != 1 {
		t.Errorf("%d TaskManagers registered, want the pod's 1", n)
	}

	stopped = true
	mustOK(t, cl.Stop(ctx))
	waitFor(t, time.Minute, "nothing of the cluster to be left", func() bool {
		left, err := kubernetes.Remaining(ctx, kc, ns, id)
		return err == nil && len(left) == 0
	})
	if _, err := kc.CoreV1().Secrets(ns).Get(ctx, kubernetes.TLSSecretName(id), metav1.GetOptions{}); err == nil {
		t.Errorf("Secret %s is left after the cluster", kubernetes.TLSSecretName(id))
	}
}

// x509Options verify a chain of roots, for any key usage.
func x509Options(roots *x509.CertPool) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
}
