package kubernetes

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestImageReadsItsKeystore: the pods mount their TLS Secret's files with
// mode 0600 and set no runAsUser or fsGroup, so a kubelet writes them
// owned by root (an fsGroup would make them group-readable, which the
// keystore check refuses): the spate image of the repository's
// Dockerfile must run its processes as root, or the JobManager cannot
// open /opt/spate/tls/keystore.pem and no cluster starts. localkube's pod
// runner cannot show this: it runs every pod as the test's own user.
func TestImageReadsItsKeystore(t *testing.T) {
	o := templated(t)
	if !o.InternalTLS {
		t.Fatal("internal TLS is off by default")
	}
	dep := o.JobManagerDeployment(ModeSession, JobManagerArgs(ModeSession), nil)
	created := dep.DeepCopy()
	created.UID = types.UID("uid")
	tm := o.TaskManagerPod(TaskManagerPodName("wordcount", 1, 1), nil, OwnerReference(created))
	for name, spec := range map[string]struct {
		sc   bool
		mode *int32
	}{
		"JobManager":  {dep.Spec.Template.Spec.SecurityContext != nil, tlsMode(dep.Spec.Template.Spec.Volumes)},
		"TaskManager": {tm.Spec.SecurityContext != nil, tlsMode(tm.Spec.Volumes)},
	} {
		if spec.mode == nil || *spec.mode != 0o600 {
			t.Errorf("%s pod: TLS volume mode %v, want 0600", name, spec.mode)
		}
		if spec.sc {
			t.Errorf("%s pod sets a security context: this test assumes the image's user reads the Secret", name)
		}
	}

	user, base := finalStageUser(t, filepath.Join("..", "..", "..", "Dockerfile"))
	if user == "" && strings.Contains(base, "nonroot") {
		user = "nonroot (of the base image " + base + ")"
	}
	if user != "" && user != "root" && user != "0" && !strings.HasPrefix(user, "0:") && !strings.HasPrefix(user, "root:") {
		t.Errorf("the Dockerfile's image runs as %s: it cannot read the root-owned 0600 files of its pod's TLS Secret", user)
	}
}

func tlsMode(vols []corev1.Volume) *int32 {
	for _, v := range vols {
		if v.Name == tlsVolume && v.Secret != nil {
			return v.Secret.DefaultMode
		}
	}
	return nil
}

// finalStageUser returns the last USER of a Dockerfile's final stage
// ("" if none) and that stage's base image.
func finalStageUser(t *testing.T, path string) (user, base string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			base, user = f[1], ""
		case "USER":
			user = f[1]
		}
	}
	if base == "" {
		t.Fatalf("%s has no FROM", path)
	}
	return user, base
}
