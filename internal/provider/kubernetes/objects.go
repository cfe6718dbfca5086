package kubernetes

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Labels and names of a cluster's objects, Flink's.
const (
	LabelType      = "type"
	TypeValue      = "spate-native-kubernetes"
	LabelApp       = "app"
	LabelComponent = "component"
	// ComponentJobManager labels the JobManager's objects (Deployment,
	// pods, Services, ConfigMap); ComponentTaskManager the TaskManager
	// pods.
	ComponentJobManager  = "jobmanager"
	ComponentTaskManager = "taskmanager"
	// MainContainer is the container that runs spate; a pod template's
	// container of that name is merged with it, the others are sidecars.
	MainContainer = "spate-main"
	// AnnotationMode tells a cluster's mode (session, per-job,
	// application) on its Deployment, for spate session list.
	AnnotationMode = "spate.dev/mode"
	// ConfDir is where the cluster's ConfigMap is mounted in its pods.
	ConfDir = "/opt/spate/conf"
	// ConfigFile is the configuration's file in the ConfigMap, read
	// through $SPATE_CONF_DIR.
	ConfigFile = "config.yaml"
	// TaskManagerTemplateFile is the TaskManager pod template in the
	// ConfigMap, for the JobManager's resource manager.
	TaskManagerTemplateFile = "taskmanager-pod-template.yaml"
	// configVolume is the ConfigMap's volume in the pods.
	configVolume = "spate-config-volume"
	// EnvPodIP holds the pod's IP in spate's containers: the JobManager
	// and the TaskManagers bind and announce it.
	EnvPodIP = "SPATE_POD_IP"
	// envConfDir is config.ConfDirEnv, spelled out to keep this file's
	// imports to what the objects need.
	envConfDir = "SPATE_CONF_DIR"
	// TLSDir is where a pod's TLS Secret is mounted: its own keystore
	// (TLSKeystoreFile) and the cluster's CA certificate
	// (TLSTruststoreFile), mode 0600; in the JobManager's pod also the
	// CA itself (TLSCAFile) and, with RESTTLS, the REST API's keystore
	// (TLSRESTKeystoreFile).
	TLSDir              = "/opt/spate/tls"
	TLSKeystoreFile     = "keystore.pem"
	TLSTruststoreFile   = "truststore.pem"
	TLSCAFile           = "ca.pem"
	TLSRESTKeystoreFile = "rest-keystore.pem"
	// Keys of the cluster's TLS Secret (TLSSecretName), the JobManager
	// pod's alone: its keystore, the CA (certificate and key: the
	// JobManager issues each TaskManager pod's certificate), the CA's
	// certificate and, with RESTTLS, the REST API's keystore. Each
	// TaskManager pod has a Secret of its own (TaskManagerTLSSecretName),
	// of keys TLSKeystoreFile and TLSTruststoreFile.
	TLSSecretJobManager = "jobmanager.pem"
	TLSSecretCA         = "ca.pem"
	TLSSecretTruststore = "truststore.pem"
	TLSSecretREST       = "rest.pem"
	// tlsVolume is the TLS Secret's volume in the pods.
	tlsVolume = "spate-tls-volume"
	// Configuration keys of the internal TLS, the daemons'.
	keySSLInternalEnabled    = "security.ssl.internal.enabled"
	keySSLInternalKeystore   = "security.ssl.internal.keystore"
	keySSLInternalTruststore = "security.ssl.internal.truststore"
	// Configuration keys of the REST API's TLS.
	keySSLRESTEnabled    = "security.ssl.rest.enabled"
	keySSLRESTKeystore   = "security.ssl.rest.keystore"
	keySSLRESTTruststore = "security.ssl.rest.truststore"
)

// Mode names, as AnnotationMode's values.
const (
	ModeSession     = "session"
	ModePerJob      = "per-job"
	ModeApplication = "application"
)

// Labels are the labels of a cluster's objects of one component.
func Labels(clusterID, component string) map[string]string {
	return map[string]string{LabelType: TypeValue, LabelApp: clusterID, LabelComponent: component}
}

// ClusterSelector selects every object of cluster clusterID.
func ClusterSelector(clusterID string) string {
	return LabelType + "=" + TypeValue + "," + LabelApp + "=" + clusterID
}

// ConfigMapName is the name of a cluster's ConfigMap.
func ConfigMapName(clusterID string) string { return "spate-config-" + clusterID }

// RESTServiceName is the name of a cluster's REST Service.
func RESTServiceName(clusterID string) string { return clusterID + "-rest" }

// TaskManagerPodName is the name of the index-th TaskManager pod the
// attempt-th JobManager of a cluster created, Flink's
// <cluster-id>-taskmanager-<attempt>-<index>.
func TaskManagerPodName(clusterID string, attempt, index int) string {
	return fmt.Sprintf("%s-taskmanager-%d-%d", clusterID, attempt, index)
}

// OwnerReference makes an object a dependent of the JobManager Deployment
// d: deleting the Deployment deletes it.
func OwnerReference(d *appsv1.Deployment) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

// ConfigMap is the cluster's ConfigMap: the configuration entries as
// config.yaml and, if there is one, the TaskManager pod template.
func (o Options) ConfigMap(entries map[string]string, owner metav1.OwnerReference) (*corev1.ConfigMap, error) {
	entries = maps.Clone(entries)
	if entries == nil {
		entries = map[string]string{}
	}
	entries[KeyClusterID] = o.ClusterID
	entries[KeyNamespace] = o.Namespace
	data := map[string]string{}
	if o.TaskManagerTemplateYAML != "" {
		data[TaskManagerTemplateFile] = o.TaskManagerTemplateYAML
		entries[KeyTaskManagerTemplate] = ConfDir + "/" + TaskManagerTemplateFile
	} else {
		delete(entries, KeyTaskManagerTemplate)
	}
	if o.InternalTLS {
		// Each pod's own keystore, mounted under one name.
		entries[keySSLInternalKeystore] = TLSDir + "/" + TLSKeystoreFile
		entries[keySSLInternalTruststore] = TLSDir + "/" + TLSTruststoreFile
	}
	if o.RESTTLS {
		entries[keySSLRESTKeystore] = TLSDir + "/" + TLSRESTKeystoreFile
		if _, ok := entries[keySSLRESTTruststore]; !ok {
			entries[keySSLRESTTruststore] = TLSDir + "/" + TLSTruststoreFile
		}
	}
	// The JobManager's pod template was the client's to apply.
	delete(entries, KeyJobManagerTemplate)
	delete(entries, KeyKubeConfig)
	b, err := yaml.Marshal(entries)
	if err != nil {
		return nil, fmt.Errorf("encode the configuration of cluster %s: %w", o.ClusterID, err)
	}
	data[ConfigFile] = string(b)
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: ConfigMapName(o.ClusterID), Namespace: o.Namespace,
			Labels: Labels(o.ClusterID, ComponentJobManager), OwnerReferences: []metav1.OwnerReference{owner},
		},
		Data: data,
	}, nil
}

// Services are the cluster's headless Service <cluster-id> (the
// JobManager's RPC port, for TaskManagers in the cluster) and its REST
// Service <cluster-id>-rest of the configured type.
func (o Options) Services(owner metav1.OwnerReference) (headless, rest *corev1.Service) {
	selector := Labels(o.ClusterID, ComponentJobManager)
	headless = &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: o.ClusterID, Namespace: o.Namespace,
			Labels: Labels(o.ClusterID, ComponentJobManager), OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  selector,
			Ports: []corev1.ServicePort{
				{Name: "jobmanager-rpc", Port: RPCPort, TargetPort: intstr.FromInt32(RPCPort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	rest = &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: RESTServiceName(o.ClusterID), Namespace: o.Namespace,
			Labels: Labels(o.ClusterID, ComponentJobManager), OwnerReferences: []metav1.OwnerReference{owner},
		},
		Spec: corev1.ServiceSpec{
			Type:     o.RESTExposedType,
			Selector: selector,
			Ports: []corev1.ServicePort{
				{Name: "rest", Port: RESTPort, TargetPort: intstr.FromInt32(RESTPort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
	return headless, rest
}

// JobManagerArgs is the main container's command line of a cluster's
// JobManager in mode (ModeSession, ModePerJob, ModeApplication); extra
// follows the generated flags (an application's "--application PATH --
// ARGS" last).
func JobManagerArgs(mode string, extra ...string) []string {
	args := []string{"jobmanager", "--provider", "kubernetes",
		"--rpc-port", strconv.Itoa(RPCPort), "--rest-port", strconv.Itoa(RESTPort)}
	return append(args, extra...)
}

// JobManagerDeployment is the cluster's JobManager Deployment, one
// replica, its pod the JobManager pod template merged with args and env
// (the JobManager's own variables, e.g. an application's configuration,
// taken from the Secret EnvSecret).
func (o Options) JobManagerDeployment(mode string, args []string, env map[string]string) *appsv1.Deployment {
	labels := Labels(o.ClusterID, ComponentJobManager)
	main := corev1.Container{
		Name: MainContainer, Image: o.Image, ImagePullPolicy: o.ImagePullPolicy,
		Command:   []string{o.EntryPath},
		Args:      args,
		Resources: corev1.ResourceRequirements{Requests: o.JobManager.DeepCopy(), Limits: o.JobManager.DeepCopy()},
		Ports: []corev1.ContainerPort{
			{Name: "rest", ContainerPort: RESTPort, Protocol: corev1.ProtocolTCP},
			{Name: "jobmanager-rpc", ContainerPort: RPCPort, Protocol: corev1.ProtocolTCP},
		},
		Env: append(o.baseEnv(), o.secretEnv(env)...),
		// A JobManager that fails at start says why in its pod's status.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	items := []corev1.KeyToPath{
		{Key: TLSSecretJobManager, Path: TLSKeystoreFile},
		{Key: TLSSecretTruststore, Path: TLSTruststoreFile},
		{Key: TLSSecretCA, Path: TLSCAFile},
	}
	if o.RESTTLS {
		items = append(items, corev1.KeyToPath{Key: TLSSecretREST, Path: TLSRESTKeystoreFile})
	}
	meta, spec := o.mergePod(o.JobManagerTemplate, labels, nil, main, corev1.RestartPolicyAlways, TLSSecretName(o.ClusterID), items)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: o.ClusterID, Namespace: o.Namespace, Labels: labels,
			Annotations: map[string]string{AnnotationMode: mode},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: meta, Spec: spec},
			// A JobManager restarted while another still runs would run
			// an application twice.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
		},
	}
}

// TaskManagerPod is a TaskManager pod of the cluster: the TaskManager pod
// template merged with the taskmanager command line args, owned by the
// JobManager Deployment.
func (o Options) TaskManagerPod(name string, args []string, owner metav1.OwnerReference) *corev1.Pod {
	main := corev1.Container{
		Name: MainContainer, Image: o.Image, ImagePullPolicy: o.ImagePullPolicy,
		Command:   []string{o.EntryPath},
		Args:      args,
		Resources: corev1.ResourceRequirements{Requests: o.TaskManager.DeepCopy(), Limits: o.TaskManager.DeepCopy()},
		Env:       o.baseEnv(),
		// A TaskManager that fails says why in its pod's status.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	meta, spec := o.mergePod(o.TaskManagerTemplate, Labels(o.ClusterID, ComponentTaskManager), nil, main, corev1.RestartPolicyNever, TaskManagerTLSSecretName(name), []corev1.KeyToPath{
		{Key: TLSKeystoreFile, Path: TLSKeystoreFile},
		{Key: TLSTruststoreFile, Path: TLSTruststoreFile},
	})
	meta.Name, meta.Namespace = name, o.Namespace
	meta.OwnerReferences = []metav1.OwnerReference{owner}
	return &corev1.Pod{ObjectMeta: meta, Spec: spec}
}

// baseEnv is the environment of spate in every pod: where its
// configuration is, and its pod's IP.
func (o Options) baseEnv() []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: envConfDir, Value: ConfDir},
		{Name: EnvPodIP, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}},
	}
}

// volumes are the volumes Spate adds to every pod: the ConfigMap and,
// with InternalTLS, the items of its TLS Secret (the cluster's for the
// JobManager, its own for a TaskManager), mode 0600.
func (o Options) volumes(secret string, items []corev1.KeyToPath) ([]corev1.Volume, []corev1.VolumeMount) {
	vols := []corev1.Volume{{
		Name: configVolume,
		VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName(o.ClusterID)},
		}},
	}}
	mounts := []corev1.VolumeMount{{Name: configVolume, MountPath: ConfDir}}
	if o.InternalTLS {
		vols = append(vols, corev1.Volume{
			Name: tlsVolume,
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  secret,
				DefaultMode: ptr.To[int32](0o600),
				Items:       items,
			}},
		})
		mounts = append(mounts, corev1.VolumeMount{Name: tlsVolume, MountPath: TLSDir, ReadOnly: true})
	}
	return vols, mounts
}

// TLSSecretName is the name of a cluster's TLS Secret.
func TLSSecretName(clusterID string) string { return "spate-tls-" + clusterID }

// TaskManagerTLSSecretName is the name of TaskManager pod's own TLS
// Secret.
func TaskManagerTLSSecretName(pod string) string { return pod + "-tls" }

// TLSSecret is the cluster's TLS Secret, the JobManager's: its keystore,
// the CA (certificate and key, CA.PEM), the CA's certificate and, if
// set, the REST API's keystore; its owner reference is set once the
// Deployment exists.
func (o Options) TLSSecret(jobManager, ca, truststore, rest []byte) *corev1.Secret {
	data := map[string][]byte{TLSSecretJobManager: jobManager, TLSSecretCA: ca, TLSSecretTruststore: truststore}
	if rest != nil {
		data[TLSSecretREST] = rest
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: TLSSecretName(o.ClusterID), Namespace: o.Namespace, Labels: Labels(o.ClusterID, ComponentJobManager)},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// TaskManagerTLSSecret is TaskManager pod's own TLS Secret, owned by the
// pod: its keystore and the CA's certificate. A pod's key is in its own
// Secret only, so that no TaskManager pod can pose as another.
func (o Options) TaskManagerTLSSecret(pod *corev1.Pod, keystore, truststore []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: TaskManagerTLSSecretName(pod.Name), Namespace: o.Namespace, Labels: Labels(o.ClusterID, ComponentTaskManager),
			OwnerReferences: []metav1.OwnerReference{{
				// No blockOwnerDeletion: it would need update on
				// pods/finalizers, and nothing waits for the Secret.
				APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, Controller: ptr.To(true),
			}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{TLSKeystoreFile: keystore, TLSTruststoreFile: truststore},
	}
}

// secretEnv is the JobManager's own variables, each from its key of the
// cluster's Secret (EnvSecretName): an application's configuration holds
// its jobs' secrets, which must not be readable in the Deployment.
func (o Options) secretEnv(env map[string]string) []corev1.EnvVar {
	var vars []corev1.EnvVar
	for _, k := range slices.Sorted(maps.Keys(env)) {
		vars = append(vars, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: EnvSecretName(o.ClusterID)}, Key: k,
		}}})
	}
	return vars
}

// EnvSecretName is the name of the Secret of a cluster's JobManager's own
// environment variables.
func EnvSecretName(clusterID string) string { return "spate-env-" + clusterID }

// EnvSecret is the Secret of the JobManager's own variables (nil if none);
// its owner reference is set once the Deployment exists.
func (o Options) EnvSecret(env map[string]string) *corev1.Secret {
	if len(env) == 0 {
		return nil
	}
	data := map[string][]byte{}
	for k, v := range env {
		data[k] = []byte(v)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: EnvSecretName(o.ClusterID), Namespace: o.Namespace, Labels: Labels(o.ClusterID, ComponentJobManager)},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}
