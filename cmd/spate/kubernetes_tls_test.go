package main

import (
	"context"
	"crypto/tls"
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
	"github.com/spate-dev/spate/internal/localkube"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/provider"
	"github.com/spate-dev/spate/internal/provider/kubernetes"
)

// TestKubernetesInternalTLS deploys a session of two TaskManager pods,
// with REST over TLS, on the real API server and checks the cluster's TLS
// Secret: its exact keys, labels and owner (the JobManager Deployment),
// the JobManager's keystore and the CA of the cluster. Each TaskManager
// pod has a certificate of its own, naming it, in a Secret of its own
// owned by the pod; the two pods' keys differ. Each pod mounts its own
// keystore and the truststore, 0600, and no key is in a pod's spec
// (command line, environment); the CA's key is the JobManager pod's
// only. The REST API serves a certificate of the cluster's CA for its
// Service's DNS names, which a client verifies with the CA it reads from
// the API server; a client in the clear gets nothing. The TaskManager
// pods register over mutual TLS; a TaskManager in the clear, or with
// another CA's certificate, does not. Stopping the cluster leaves
// nothing, the Secrets included.
func TestKubernetesInternalTLS(t *testing.T) {
	c, ns := kubeLive(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	id := "tls"
	conf := kubeConfig(ns, id, "security.ssl.rest.enabled", "true")
	cl, err := kubernetes.Deployer{Client: c.Client}.Deploy(ctx, provider.ClusterSpec{Mode: provider.Session, Config: conf, TaskManagers: 2})
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

	// The cluster's Secret.
	sec, err := kc.CoreV1().Secrets(ns).Get(ctx, kubernetes.TLSSecretName(id), metav1.GetOptions{})
	mustOK(t, err)
	if keys := slices.Sorted(maps.Keys(sec.Data)); !slices.Equal(keys, []string{kubernetes.TLSSecretCA, kubernetes.TLSSecretJobManager, kubernetes.TLSSecretREST, kubernetes.TLSSecretTruststore}) {
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
	if ca, err := pki.ParseCA(sec.Data[kubernetes.TLSSecretCA]); err != nil || !ca.Cert.Equal(cas[0]) {
		t.Errorf("Secret %s's CA: %v; want the truststore's CA with its key", sec.Name, err)
	}
	leafOf := func(what string, data []byte, want pki.Identity) *x509.Certificate {
		t.Helper()
		kp, err := pki.ParseKeyPair(data)
		mustOK(t, err)
		cert, err := kp.TLSCertificate()
		mustOK(t, err)
		if got, ok := pki.IdentityOf(cert.Leaf); !ok || got != want {
			t.Errorf("%s names %v, want %v", what, got, want)
		}
		if _, err := cert.Leaf.Verify(x509Options(roots)); err != nil {
			t.Errorf("%s is not of the cluster's CA: %v", what, err)
		}
		return cert.Leaf
	}
	leafOf(kubernetes.TLSSecretJobManager, sec.Data[kubernetes.TLSSecretJobManager], pki.Identity{Role: pki.RoleJobManager})
	restLeaf := leafOf(kubernetes.TLSSecretREST, sec.Data[kubernetes.TLSSecretREST], pki.Identity{Role: pki.RoleJobManager})
	for _, host := range []string{kubernetes.RESTServiceName(id), kubernetes.RESTServiceName(id) + "." + ns + ".svc", kubernetes.RESTServiceName(id) + "." + ns + ".svc.cluster.local"} {
		if err := restLeaf.VerifyHostname(host); err != nil {
			t.Errorf("the REST certificate is not for %s: %v", host, err)
		}
	}

	// Each TaskManager pod's own Secret and certificate.
	rc, err := client.New(cl.REST(), client.WithTLS(kubeRESTTLS(t, ctx, c, ns, id)))
	mustOK(t, err)
	waitFor(t, 2*time.Minute, "the two TaskManager pods to register", func() bool {
		tms, err := rc.TaskManagers(ctx)
		return err == nil && len(tms.TaskManagers) == 2
	})
	var tms []*corev1.Pod
	var tmIDs []string
	keys := map[string]string{}
	for n := 1; n <= 2; n++ {
		name := kubernetes.TaskManagerPodName(id, 1, n)
		pod, err := kc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		mustOK(t, err)
		tms = append(tms, pod)
		own, err := kc.CoreV1().Secrets(ns).Get(ctx, kubernetes.TaskManagerTLSSecretName(name), metav1.GetOptions{})
		mustOK(t, err)
		if ks := slices.Sorted(maps.Keys(own.Data)); !slices.Equal(ks, []string{kubernetes.TLSKeystoreFile, kubernetes.TLSTruststoreFile}) {
			t.Errorf("Secret %s keys = %v", own.Name, ks)
		}
		if refs := own.OwnerReferences; len(refs) != 1 || refs[0].UID != pod.UID || refs[0].Kind != "Pod" || refs[0].Name != name {
			t.Errorf("Secret %s owner references = %v, want its pod %s (uid %s)", own.Name, refs, name, pod.UID)
		}
		if !maps.Equal(own.Labels, kubernetes.Labels(id, kubernetes.ComponentTaskManager)) {
			t.Errorf("Secret %s labels %v", own.Name, own.Labels)
		}
		// The TaskManager the JobManager started the pod as.
		tmID, ok := strings.CutPrefix(pod.Spec.Containers[0].Args[slices.Index(pod.Spec.Containers[0].Args, "-D")+1], "taskmanager.resource-id=")
		if !ok || slices.Contains(tmIDs, tmID) {
			t.Errorf("pod %s: TaskManager %q (%v), want a resource id of its own", name, tmID, pod.Spec.Containers[0].Args)
		}
		tmIDs = append(tmIDs, tmID)
		leafOf("pod "+name+"'s keystore", own.Data[kubernetes.TLSKeystoreFile], pki.Identity{Role: pki.RoleTaskManager, Name: tmID})
		kp, err := pki.ParseKeyPair(own.Data[kubernetes.TLSKeystoreFile])
		mustOK(t, err)
		der, err := x509.MarshalPKCS8PrivateKey(kp.Key)
		mustOK(t, err)
		keys[string(der)] = name
	}
	if len(keys) != 2 {
		t.Errorf("the two TaskManager pods share a key: %v", keys)
	}

	// The pods mount their own keystore, 0600, and carry no key.
	jmPods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.ClusterSelector(id) + ",component=jobmanager"})
	mustOK(t, err)
	if len(jmPods.Items) != 1 {
		t.Fatalf("JobManager pods: %d", len(jmPods.Items))
	}
	jm := jmPods.Items[0]
	type mounted struct {
		pod    *corev1.Pod
		secret string
		items  []corev1.KeyToPath
	}
	checks := []mounted{{&jm, kubernetes.TLSSecretName(id), []corev1.KeyToPath{
		{Key: kubernetes.TLSSecretJobManager, Path: kubernetes.TLSKeystoreFile},
		{Key: kubernetes.TLSSecretTruststore, Path: kubernetes.TLSTruststoreFile},
		{Key: kubernetes.TLSSecretCA, Path: kubernetes.TLSCAFile},
		{Key: kubernetes.TLSSecretREST, Path: kubernetes.TLSRESTKeystoreFile},
	}}}
	for _, tm := range tms {
		checks = append(checks, mounted{tm, kubernetes.TaskManagerTLSSecretName(tm.Name), []corev1.KeyToPath{
			{Key: kubernetes.TLSKeystoreFile, Path: kubernetes.TLSKeystoreFile},
			{Key: kubernetes.TLSTruststoreFile, Path: kubernetes.TLSTruststoreFile},
		}})
	}
	for _, p := range checks {
		var vol *corev1.SecretVolumeSource
		for _, v := range p.pod.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == p.secret {
				vol = v.Secret
			}
		}
		if vol == nil || vol.DefaultMode == nil || *vol.DefaultMode != 0o600 || !slices.Equal(vol.Items, p.items) {
			t.Errorf("pod %s mounts %+v, want items %v of Secret %s, mode 0600", p.pod.Name, vol, p.items, p.secret)
		}
		ok := false
		for _, m := range p.pod.Spec.Containers[0].VolumeMounts {
			ok = ok || m.MountPath == kubernetes.TLSDir
		}
		if !ok {
			t.Errorf("pod %s: its main container does not mount %s", p.pod.Name, kubernetes.TLSDir)
		}
		spec, _ := json.Marshal(p.pod.Spec)
		if strings.Contains(string(spec), "PRIVATE KEY") || strings.Contains(string(spec), "BEGIN CERTIFICATE") {
			t.Errorf("pod %s's spec holds key material", p.pod.Name)
		}
		src, err := kc.CoreV1().Secrets(ns).Get(ctx, p.secret, metav1.GetOptions{})
		mustOK(t, err)
		for _, item := range p.items {
			path := filepath.Join(c.PodDir(ns, p.pod.Name), "root", kubernetes.TLSDir, item.Path)
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("pod %s: %s: %v, mode %v, want 0600", p.pod.Name, item.Path, err, fi)
			}
			if b, err := os.ReadFile(path); err != nil || string(b) != string(src.Data[item.Key]) {
				t.Errorf("pod %s's %s is not Secret %s's %s: %v", p.pod.Name, item.Path, p.secret, item.Key, err)
			}
		}
		if p.pod != &jm {
			if _, err := os.Stat(filepath.Join(c.PodDir(ns, p.pod.Name), "root", kubernetes.TLSDir, kubernetes.TLSCAFile)); err == nil {
				t.Errorf("TaskManager pod %s has the CA", p.pod.Name)
			}
		}
	}

	// The REST API speaks TLS only.
	if plain, err := client.New(cl.REST(), client.WithTimeout(5*time.Second)); err == nil {
		if _, err := plain.Overview(ctx); err == nil {
			t.Error("a client in the clear got the REST API's overview")
		}
	}
	tmCount := func() int {
		tms, err := rc.TaskManagers(ctx)
		if err != nil {
			return -1
		}
		return len(tms.TaskManagers)
	}

	// Strangers do not register.
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
	if n := tmCount(); n != 2 {
		t.Errorf("%d TaskManagers registered, want the pods' 2", n)
	}

	stopped = true
	mustOK(t, cl.Stop(ctx))
	waitFor(t, time.Minute, "nothing of the cluster to be left", func() bool {
		left, err := kubernetes.Remaining(ctx, kc, ns, id)
		return err == nil && len(left) == 0
	})
	for _, name := range []string{kubernetes.TLSSecretName(id), kubernetes.TaskManagerTLSSecretName(tms[0].Name), kubernetes.TaskManagerTLSSecretName(tms[1].Name)} {
		if _, err := kc.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			t.Errorf("Secret %s is left after the cluster", name)
		}
	}
}

// kubeRESTTLS is the TLS configuration of a REST client of cluster id:
// its CA, read from the API server as any client reads it.
func kubeRESTTLS(t *testing.T, ctx context.Context, c *localkube.Cluster, ns, id string) *tls.Config {
	t.Helper()
	pool, err := kubernetes.Deployer{Client: c.Client, Config: map[string]string{kubernetes.KeyNamespace: ns}}.RESTTrust(ctx, id)
	mustOK(t, err)
	return pki.RESTClientConfig(nil, pool)
}

// x509Options verify a chain of roots, for any key usage.
func x509Options(roots *x509.CertPool) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
}
