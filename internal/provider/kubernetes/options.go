package kubernetes

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/pki"
)

// Configuration keys of the Kubernetes provider, Flink's names.
const (
	KeyClusterID           = "kubernetes.cluster-id"
	KeyNamespace           = "kubernetes.namespace"
	KeyImage               = "kubernetes.container.image"
	KeyImagePullPolicy     = "kubernetes.container.image.pull-policy"
	KeyJobManagerCPU       = "kubernetes.jobmanager.cpu"
	KeyJobManagerMemory    = "kubernetes.jobmanager.memory"
	KeyTaskManagerCPU      = "kubernetes.taskmanager.cpu"
	KeyTaskManagerMemory   = "kubernetes.taskmanager.memory"
	KeyServiceAccount      = "kubernetes.service-account"
	KeyRESTExposedType     = "kubernetes.rest-service.exposed.type"
	KeyJobManagerTemplate  = "kubernetes.pod-template-file.jobmanager"
	KeyTaskManagerTemplate = "kubernetes.pod-template-file.taskmanager"
	KeyEntryPath           = "kubernetes.entry.path"
	KeyKubeConfig          = "kubernetes.config.file"
)

// Defaults of the keys above.
const (
	DefaultNamespace         = "default"
	DefaultImage             = "spate:latest"
	DefaultCPU               = "1.0"
	DefaultJobManagerMemory  = "1600m"
	DefaultTaskManagerMemory = "1728m"
	DefaultServiceAccount    = "default"
	DefaultEntryPath         = "/opt/spate/bin/spate"
)

// Ports the JobManager listens on in its pod, as Flink's.
const (
	RPCPort  = 6123
	RESTPort = 8081
)

// maxClusterID is the longest cluster id: Flink's limit, which leaves room
// in the 63 characters of a label value and a DNS name for the suffixes of
// the objects' names (-rest, -taskmanager-1-10).
const maxClusterID = 45

var clusterIDPattern = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// ValidateClusterID accepts a cluster id Kubernetes takes as the name of
// every object of the cluster.
func ValidateClusterID(id string) error {
	if len(id) > maxClusterID || !clusterIDPattern.MatchString(id) {
		return fmt.Errorf("configuration %s = %q: want at most %d characters of lower-case letters, digits and '-', starting with a letter and ending with a letter or digit ([a-z]([-a-z0-9]*[a-z0-9])?)", KeyClusterID, id, maxClusterID)
	}
	return nil
}

// GenerateClusterID returns a fresh cluster id, spate-<8 hex digits>.
func GenerateClusterID() string {
	var b [4]byte
	rand.Read(b[:])
	return "spate-" + hex.EncodeToString(b[:])
}

// Options are a Kubernetes cluster's settings, read from the configuration.
type Options struct {
	// InternalTLS says the cluster's internal connections use the
	// certificates of the cluster's TLS Secret (TLSSecret), which the
	// client makes at deploy: security.ssl.internal.enabled is not false
	// and no keystore of the operator's own is configured.
	InternalTLS bool
	// RESTTLS says the REST API serves HTTPS with a certificate the
	// client makes at deploy, of the cluster's CA, for the REST
	// Service's DNS names: security.ssl.rest.enabled, with InternalTLS
	// and no REST keystore of the operator's own.
	RESTTLS bool
	// CA, on the JobManager, is the cluster's CA (the TLS Secret's,
	// TLSCAFile in its pod), which issues each TaskManager pod its own
	// certificate; nil without InternalTLS.
	CA              *pki.CA
	ClusterID       string
	Namespace       string
	Image           string
	ImagePullPolicy corev1.PullPolicy
	ServiceAccount  string
	// JobManager and TaskManager are the main containers' resources, set
	// as both requests and limits.
	JobManager, TaskManager corev1.ResourceList
	RESTExposedType         corev1.ServiceType
	// JobManagerTemplate and TaskManagerTemplate are the pod templates,
	// nil if none.
	JobManagerTemplate, TaskManagerTemplate *corev1.Pod
	// TaskManagerTemplateYAML is the TaskManager template's text, shipped
	// to the JobManager in the cluster's ConfigMap.
	TaskManagerTemplateYAML string
	// EntryPath is the spate executable in the image.
	EntryPath string
	// serviceAccountSet tells that KeyServiceAccount was given: it then
	// overrides a pod template's service account.
	serviceAccountSet bool
}

// OptionsFrom reads the options from conf. With generate, an unset cluster
// id is generated (a client creating a cluster); otherwise it is required
// (a JobManager, or a client naming an existing cluster).
func OptionsFrom(conf config.Config, generate bool) (Options, error) {
	o := Options{
		ClusterID:      strings.TrimSpace(conf.String(KeyClusterID, "")),
		Namespace:      strings.TrimSpace(conf.String(KeyNamespace, DefaultNamespace)),
		Image:          strings.TrimSpace(conf.String(KeyImage, DefaultImage)),
		ServiceAccount: strings.TrimSpace(conf.String(KeyServiceAccount, DefaultServiceAccount)),
		EntryPath:      strings.TrimSpace(conf.String(KeyEntryPath, DefaultEntryPath)),
	}
	_, o.serviceAccountSet = conf.Get(KeyServiceAccount)
	if o.ClusterID == "" {
		if !generate {
			return o, fmt.Errorf("configuration %s is not set: name the cluster (-D %s=ID)", KeyClusterID, KeyClusterID)
		}
		o.ClusterID = GenerateClusterID()
	}
	if err := ValidateClusterID(o.ClusterID); err != nil {
		return o, err
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	switch p := conf.String(KeyImagePullPolicy, "IfNotPresent"); strings.ToLower(p) {
	case "ifnotpresent":
		o.ImagePullPolicy = corev1.PullIfNotPresent
	case "always":
		o.ImagePullPolicy = corev1.PullAlways
	case "never":
		o.ImagePullPolicy = corev1.PullNever
	default:
		return o, fmt.Errorf("configuration %s = %q: want IfNotPresent, Always or Never", KeyImagePullPolicy, p)
	}
	var err error
	if o.JobManager, err = resources(conf, KeyJobManagerCPU, KeyJobManagerMemory, DefaultJobManagerMemory); err != nil {
		return o, err
	}
	if o.TaskManager, err = resources(conf, KeyTaskManagerCPU, KeyTaskManagerMemory, DefaultTaskManagerMemory); err != nil {
		return o, err
	}
	switch t := conf.String(KeyRESTExposedType, "ClusterIP"); strings.ToLower(t) {
	case "clusterip":
		o.RESTExposedType = corev1.ServiceTypeClusterIP
	case "nodeport":
		o.RESTExposedType = corev1.ServiceTypeNodePort
	case "loadbalancer":
		o.RESTExposedType = corev1.ServiceTypeLoadBalancer
	default:
		return o, fmt.Errorf("configuration %s = %q: want ClusterIP, NodePort or LoadBalancer", KeyRESTExposedType, t)
	}
	if path := conf.String(KeyJobManagerTemplate, ""); path != "" {
		if o.JobManagerTemplate, _, err = LoadPodTemplate(path); err != nil {
			return o, fmt.Errorf("configuration %s: %w", KeyJobManagerTemplate, err)
		}
	}
	if path := conf.String(KeyTaskManagerTemplate, ""); path != "" {
		if o.TaskManagerTemplate, o.TaskManagerTemplateYAML, err = LoadPodTemplate(path); err != nil {
			return o, fmt.Errorf("configuration %s: %w", KeyTaskManagerTemplate, err)
		}
	}
	tlsOn, err := conf.Bool(keySSLInternalEnabled, true)
	if err != nil {
		return o, err
	}
	ks, _ := conf.Get(keySSLInternalKeystore)
	// The JobManager reads the ConfigMap, where the keystore is the
	// Secret's.
	ks = strings.TrimSpace(ks)
	o.InternalTLS = tlsOn && (ks == "" || ks == TLSDir+"/"+TLSKeystoreFile)
	restOn, err := conf.Bool(keySSLRESTEnabled, false)
	if err != nil {
		return o, err
	}
	rks, _ := conf.Get(keySSLRESTKeystore)
	rks = strings.TrimSpace(rks)
	o.RESTTLS = restOn && o.InternalTLS && (rks == "" || rks == TLSDir+"/"+TLSRESTKeystoreFile)
	return o, nil
}

// resources reads a container's cpu (a positive decimal, Flink's double)
// and memory (a memory size) into a resource list.
func resources(conf config.Config, cpuKey, memKey, memDefault string) (corev1.ResourceList, error) {
	cpuText := strings.TrimSpace(conf.String(cpuKey, DefaultCPU))
	cpu, err := strconv.ParseFloat(cpuText, 64)
	if err != nil || cpu <= 0 {
		return nil, fmt.Errorf("configuration %s = %q: want a positive number of CPUs such as 0.5 or 2", cpuKey, cpuText)
	}
	memText := strings.TrimSpace(conf.String(memKey, memDefault))
	mem, err := config.ParseBytes(memText)
	if err != nil || mem <= 0 {
		return nil, fmt.Errorf("configuration %s = %q: want a memory size above zero such as 1g or 1728m", memKey, memText)
	}
	return corev1.ResourceList{
		corev1.ResourceCPU: *resource.NewMilliQuantity(int64(cpu*1000+0.5), resource.DecimalSI),
		// Mebibytes, as Flink's: a whole number kubectl shows as "1728Mi".
		corev1.ResourceMemory: *resource.NewQuantity((mem+(1<<20)-1)>>20<<20, resource.BinarySI),
	}, nil
}

// LoadPodTemplate reads a pod template file: a Pod manifest in YAML or
// JSON, whose spec and metadata are merged with the generated pods'.
func LoadPodTemplate(path string) (*corev1.Pod, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read the pod template: %w", err)
	}
	pod, err := ParsePodTemplate(b)
	if err != nil {
		return nil, "", fmt.Errorf("pod template %s: %w", path, err)
	}
	return pod, string(b), nil
}
