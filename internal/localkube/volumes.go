package localkube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// materialize lays out the pod's directory: root/ mirrors the image root
// (symbolic links, real directories only along the mount paths) and each
// volume the main container mounts is written under volumes/ and linked
// at root/<mountPath>.
func (r *runner) materialize(ctx context.Context, pod *corev1.Pod, c *corev1.Container, run *podRun, imageRoot string) error {
	if err := os.MkdirAll(filepath.Join(run.dir, "volumes"), 0o755); err != nil {
		return fmt.Errorf("create the pod directory: %w", err)
	}
	r.mu.Lock()
	run.tokens = nil
	r.mu.Unlock()
	volumes := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		volumes[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	type mount struct{ path, target string }
	var mounts []mount
	done := map[string]string{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			return fmt.Errorf("volume mount %s: the pod has no volume %q", m.MountPath, m.Name)
		}
		dir, ok := done[m.Name]
		if !ok {
			var err error
			if dir, err = r.volume(ctx, pod, run, v); err != nil {
				return fmt.Errorf("MountVolume.SetUp failed for volume %q: %w", m.Name, err)
			}
			done[m.Name] = dir
		}
		target := dir
		if m.SubPath != "" {
			target = filepath.Join(dir, m.SubPath)
		}
		mounts = append(mounts, mount{filepath.Clean("/" + m.MountPath), target})
	}
	sort.Slice(mounts, func(i, j int) bool { return mounts[i].path < mounts[j].path })
	var paths []string
	for _, m := range mounts {
		paths = append(paths, m.path)
	}
	// A restart after a failed start may find the root laid out already.
	os.RemoveAll(run.root)
	if err := os.MkdirAll(run.root, 0o755); err != nil {
		return err
	}
	if imageRoot != "" {
		if err := mirror(imageRoot, run.root, "/", paths); err != nil {
			return fmt.Errorf("lay out the image root %s: %w", imageRoot, err)
		}
	}
	for _, m := range mounts {
		at := filepath.Join(run.root, m.path)
		if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
			return err
		}
		os.RemoveAll(at)
		if err := os.Symlink(m.target, at); err != nil {
			return fmt.Errorf("mount at %s: %w", m.path, err)
		}
	}
	return nil
}

// mirror makes dst stand for src: each entry of src is a symbolic link,
// except directories on the way to a mount path, which are real and
// mirrored in turn, and the mount paths themselves, left for the mounts.
func mirror(src, dst, at string, mounts []string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(at, e.Name())
		under, exact := false, false
		for _, m := range mounts {
			if m == p {
				exact = true
			} else if strings.HasPrefix(m, p+"/") {
				under = true
			}
		}
		switch {
		case exact:
		case under && e.IsDir():
			if err := os.MkdirAll(filepath.Join(dst, e.Name()), 0o755); err != nil {
				return err
			}
			if err := mirror(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), p, mounts); err != nil {
				return err
			}
		default:
			if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// volume writes the volume's content under the pod's volumes/ and returns
// its directory (or, for a hostPath, the host's path).
func (r *runner) volume(ctx context.Context, pod *corev1.Pod, run *podRun, v *corev1.Volume) (string, error) {
	dir := filepath.Join(run.dir, "volumes", v.Name)
	if v.HostPath != nil {
		return v.HostPath.Path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src := v.VolumeSource
	switch {
	case src.EmptyDir != nil:
		return dir, nil
	case src.ConfigMap != nil:
		return dir, r.writeConfigMap(ctx, pod, dir, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, src.ConfigMap.DefaultMode)
	case src.Secret != nil:
		return dir, r.writeSecret(ctx, pod, dir, src.Secret.SecretName, src.Secret.Items, src.Secret.Optional, src.Secret.DefaultMode)
	case src.DownwardAPI != nil:
		return dir, r.writeDownward(pod, run, dir, src.DownwardAPI.Items, src.DownwardAPI.DefaultMode)
	case src.Projected != nil:
		for _, s := range src.Projected.Sources {
			var err error
			switch {
			case s.ConfigMap != nil:
				err = r.writeConfigMap(ctx, pod, dir, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, src.Projected.DefaultMode)
			case s.Secret != nil:
				err = r.writeSecret(ctx, pod, dir, s.Secret.Name, s.Secret.Items, s.Secret.Optional, src.Projected.DefaultMode)
			case s.DownwardAPI != nil:
				err = r.writeDownward(pod, run, dir, s.DownwardAPI.Items, src.Projected.DefaultMode)
			case s.ServiceAccountToken != nil:
				err = r.writeToken(ctx, pod, dir, s.ServiceAccountToken)
				if err == nil {
					r.mu.Lock()
					run.tokens = append(run.tokens, tokenFile{dir: dir, src: s.ServiceAccountToken, written: time.Now()})
					r.mu.Unlock()
				}
			default:
				err = fmt.Errorf("localkube does not support this projected source")
			}
			if err != nil {
				return "", err
			}
		}
		return dir, nil
	}
	return "", fmt.Errorf("localkube does not support the volume type of %q (it supports emptyDir, hostPath, configMap, secret, downwardAPI, projected)", v.Name)
}

func writeFiles(dir string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, what string) error {
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	type file struct {
		path string
		mode os.FileMode
		data []byte
	}
	var files []file
	if len(items) == 0 {
		for k, v := range data {
			files = append(files, file{k, mode, v})
		}
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("%s has no key %q", what, it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		files = append(files, file{it.Path, m, v})
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.Clean("/"+f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode|0o200); err != nil {
			return err
		}
		os.Chmod(p, f.mode|0o200)
	}
	return nil
}

func (r *runner) writeConfigMap(ctx context.Context, pod *corev1.Pod, dir, name string, items []corev1.KeyToPath, optional *bool, mode *int32) error {
	cm, err := r.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if isOptional(optional) {
			return nil
		}
		return fmt.Errorf("configmap %q: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return writeFiles(dir, data, items, mode, "configmap "+name)
}

func (r *runner) writeSecret(ctx context.Context, pod *corev1.Pod, dir, name string, items []corev1.KeyToPath, optional *bool, mode *int32) error {
	s, err := r.client.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if isOptional(optional) {
			return nil
		}
		return fmt.Errorf("secret %q: %w", name, err)
	}
	return writeFiles(dir, s.Data, items, mode, "secret "+name)
}

func (r *runner) writeDownward(pod *corev1.Pod, run *podRun, dir string, items []corev1.DownwardAPIVolumeFile, mode *int32) error {
	data := map[string][]byte{}
	var kp []corev1.KeyToPath
	for i, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			switch it.FieldRef.FieldPath {
			case "metadata.labels":
				v = formatMap(pod.Labels)
			case "metadata.annotations":
				v = formatMap(pod.Annotations)
			default:
				v, err = r.fieldValue(pod, run, it.FieldRef.FieldPath)
			}
		case it.ResourceFieldRef != nil:
			c := mainContainer(pod)
			v, err = resourceValue(c, it.ResourceFieldRef)
		}
		if err != nil {
			return err
		}
		key := fmt.Sprint(i)
		data[key] = []byte(v)
		kp = append(kp, corev1.KeyToPath{Key: key, Path: it.Path, Mode: it.Mode})
	}
	return writeFiles(dir, data, kp, mode, "downwardAPI")
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

// tokenFile is a projected service account token the runner wrote, to be
// refreshed as the kubelet does, once 80% of its lifetime passed.
type tokenFile struct {
	dir     string
	src     *corev1.ServiceAccountTokenProjection
	written time.Time
}

func (t tokenFile) due(now time.Time) bool {
	ttl := int64(3600)
	if t.src.ExpirationSeconds != nil {
		ttl = *t.src.ExpirationSeconds
	}
	return now.Sub(t.written) > time.Duration(ttl)*time.Second*8/10
}

// refreshTokens rewrites the due tokens of the running pods, every minute
// until ctx ends, so that a pod runs longer than its token's lifetime.
func (r *runner) refreshTokens(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			r.refreshDue(ctx, now)
		}
	}
}

func (r *runner) refreshDue(ctx context.Context, now time.Time) {
	type due struct {
		run *podRun
		i   int
		t   tokenFile
	}
	var todo []due
	r.mu.Lock()
	for _, run := range r.mu.runs {
		if run.final || run.deleting {
			continue
		}
		for i, t := range run.tokens {
			if t.due(now) {
				todo = append(todo, due{run, i, t})
			}
		}
	}
	r.mu.Unlock()
	for _, d := range todo {
		pod, err := r.pods.Pods(d.run.namespace).Get(d.run.name)
		if err != nil || pod.UID != d.run.uid {
			continue
		}
		if err := r.writeToken(ctx, pod, d.t.dir, d.t.src); err != nil {
			r.log.Warn("localkube: refresh a service account token", "pod", d.run.namespace+"/"+d.run.name, "err", err)
			continue
		}
		r.mu.Lock()
		d.run.tokens[d.i].written = now
		r.mu.Unlock()
	}
}

// writeToken asks the TokenRequest API for a token of the pod's service
// account, bound to the pod, as the kubelet does for a projected
// serviceAccountToken source; refreshTokens renews it.
func (r *runner) writeToken(ctx context.Context, pod *corev1.Pod, dir string, src *corev1.ServiceAccountTokenProjection) error {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := int64(3600)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	var aud []string
	if src.Audience != "" {
		aud = []string{src.Audience}
	}
	tr, err := r.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences: aud, ExpirationSeconds: &exp,
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token of service account %s/%s: %w", pod.Namespace, sa, err)
	}
	return writeFiles(dir, map[string][]byte{"token": []byte(tr.Status.Token)},
		[]corev1.KeyToPath{{Key: "token", Path: src.Path}}, nil, "token")
}
