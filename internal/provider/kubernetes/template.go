package kubernetes

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// ParsePodTemplate decodes a pod template: a Pod manifest (kind Pod) in
// YAML or JSON. Fields Kubernetes does not know are an error, as kubectl's
// strict decoding makes them, so that a typo does not silently drop a
// setting.
func ParsePodTemplate(b []byte) (*corev1.Pod, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("the file is empty: want a Pod manifest (apiVersion: v1, kind: Pod)")
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(b, &pod); err != nil {
		return nil, fmt.Errorf("not a valid Pod manifest: %w", err)
	}
	if pod.Kind != "" && pod.Kind != "Pod" {
		return nil, fmt.Errorf("kind %q: want a Pod manifest (kind: Pod)", pod.Kind)
	}
	return &pod, nil
}

// mergePod merges a pod template (nil for none) with what Spate generates,
// as Flink's native integration does:
//
//   - labels and annotations: the template's, plus Spate's (which win);
//   - the main container is the template's container named spate-main,
//     if any, merged with Spate's: Spate's name, image, command, args and
//     cpu and memory resources (other resources, such as
//     ephemeral-storage, stay); environment, ports and volume mounts are
//     the template's plus Spate's (Spate's win by name);
//   - the template's other containers (sidecars) and init containers stay;
//   - volumes are the template's plus Spate's (Spate's win by name);
//   - the restart policy is Spate's, and so is the service account when
//     kubernetes.service-account is set or the template names none.
//
// The name, namespace and owner references are set by the caller, never
// taken from the template.
func (o Options) mergePod(tmpl *corev1.Pod, labels, annotations map[string]string, main corev1.Container, restart corev1.RestartPolicy, tlsSecret string, tlsItems []corev1.KeyToPath) (metav1.ObjectMeta, corev1.PodSpec) {
	var meta metav1.ObjectMeta
	var spec corev1.PodSpec
	if tmpl != nil {
		t := tmpl.DeepCopy()
		meta.Labels, meta.Annotations = t.Labels, t.Annotations
		spec = t.Spec
	}
	meta.Labels = union(meta.Labels, labels)
	meta.Annotations = union(meta.Annotations, annotations)

	vols, mounts := o.volumes(tlsSecret, tlsItems)
	spec.Volumes = mergeByName(spec.Volumes, vols, func(v corev1.Volume) string { return v.Name })
	main.VolumeMounts = mounts

	var sidecars []corev1.Container
	var base *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == MainContainer && base == nil {
			base = &spec.Containers[i]
			continue
		}
		sidecars = append(sidecars, spec.Containers[i])
	}
	if base != nil {
		main = mergeContainer(*base, main)
	}
	spec.Containers = append([]corev1.Container{main}, sidecars...)
	spec.RestartPolicy = restart
	if o.serviceAccountSet || spec.ServiceAccountName == "" {
		spec.ServiceAccountName = o.ServiceAccount
	}
	spec.DeprecatedServiceAccount = ""
	return meta, spec
}

// mergeContainer merges Spate's main container into the template's.
func mergeContainer(base, ours corev1.Container) corev1.Container {
	c := base
	c.Name, c.Image, c.ImagePullPolicy = ours.Name, ours.Image, ours.ImagePullPolicy
	c.Command, c.Args = ours.Command, ours.Args
	c.TerminationMessagePolicy = ours.TerminationMessagePolicy
	c.Env = mergeByName(base.Env, ours.Env, func(e corev1.EnvVar) string { return e.Name })
	c.Ports = mergeByName(base.Ports, ours.Ports, func(p corev1.ContainerPort) string { return fmt.Sprint(p.ContainerPort, p.Protocol) })
	c.VolumeMounts = mergeByName(base.VolumeMounts, ours.VolumeMounts, func(m corev1.VolumeMount) string { return m.MountPath })
	c.Resources.Requests = mergeResources(base.Resources.Requests, ours.Resources.Requests)
	c.Resources.Limits = mergeResources(base.Resources.Limits, ours.Resources.Limits)
	return c
}

// mergeResources keeps base's resources but those ours sets (cpu, memory).
func mergeResources(base, ours corev1.ResourceList) corev1.ResourceList {
	if len(base) == 0 {
		return ours
	}
	out := base.DeepCopy()
	maps.Copy(out, ours)
	return out
}

// mergeByName is base's items in their order, then ours; an item of ours
// replaces base's item of the same key in place.
func mergeByName[T any](base, ours []T, key func(T) string) []T {
	out := slices.Clone(base)
	for _, item := range ours {
		if i := slices.IndexFunc(out, func(b T) bool { return key(b) == key(item) }); i >= 0 {
			out[i] = item
		} else {
			out = append(out, item)
		}
	}
	return out
}

func union(base, ours map[string]string) map[string]string {
	if len(base) == 0 && len(ours) == 0 {
		return nil
	}
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, ours)
	return out
}
