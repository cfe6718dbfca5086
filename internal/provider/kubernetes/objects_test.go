package kubernetes

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/provider"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestValidateClusterID(t *testing.T) {
	for _, tc := range []struct {
		id     string
		wantOK bool
	}{
		{"a", true},
		{"wordcount-1", true},
		{"spate-0123abcd", true},
		{strings.Repeat("a", 45), true},
		{strings.Repeat("a", 46), false},
		{"", false},
		{"1abc", false},
		{"abc-", false},
		{"Abc", false},
		{"ab_c", false},
		{"ab.c", false},
		{"-abc", false},
	} {
		err := ValidateClusterID(tc.id)
		if (err == nil) != tc.wantOK {
			t.Errorf("ValidateClusterID(%q) = %v, want ok %v", tc.id, err, tc.wantOK)
		}
		if err != nil && !strings.Contains(err.Error(), KeyClusterID) {
			t.Errorf("ValidateClusterID(%q) error %q does not name %s", tc.id, err, KeyClusterID)
		}
	}
	for range 10 {
		if id := GenerateClusterID(); ValidateClusterID(id) != nil {
			t.Errorf("generated cluster id %q is not valid", id)
		}
	}
}

func conf(kv ...string) config.Config {
	var c config.Config
	for i := 0; i+1 < len(kv); i += 2 {
		c.Set(kv[i], kv[i+1])
	}
	return c
}

func TestOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		conf config.Config
		want string
	}{
		{"bad cluster id", conf(KeyClusterID, "Bad_ID"), `kubernetes.cluster-id = "Bad_ID"`},
		{"bad cpu", conf(KeyJobManagerCPU, "lots"), `kubernetes.jobmanager.cpu = "lots": want a positive number`},
		{"zero cpu", conf(KeyTaskManagerCPU, "0"), `kubernetes.taskmanager.cpu = "0"`},
		{"bad memory", conf(KeyTaskManagerMemory, "much"), `kubernetes.taskmanager.memory = "much": want a memory size`},
		{"bad exposed type", conf(KeyRESTExposedType, "Ingress"), `kubernetes.rest-service.exposed.type = "Ingress": want ClusterIP, NodePort or LoadBalancer`},
		{"missing template", conf(KeyJobManagerTemplate, "/nonexistent/jm.yaml"), "kubernetes.pod-template-file.jobmanager: read the pod template: open /nonexistent/jm.yaml"},
		{"bad pull policy", conf(KeyImagePullPolicy, "Sometimes"), `kubernetes.container.image.pull-policy = "Sometimes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OptionsFrom(tc.conf, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OptionsFrom error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := OptionsFrom(conf(), false); err == nil || !strings.Contains(err.Error(), "kubernetes.cluster-id is not set") {
		t.Errorf("OptionsFrom without a cluster id, not generating: %v", err)
	}
	o, err := OptionsFrom(conf(), true)
	if err != nil || ValidateClusterID(o.ClusterID) != nil || o.Namespace != "default" || o.RESTExposedType != "ClusterIP" {
		t.Errorf("OptionsFrom defaults = %+v, %v", o, err)
	}
}

func TestParsePodTemplate(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"empty", "", "the file is empty"},
		{"not yaml", "spec: [", "not a valid Pod manifest"},
		{"unknown field", "apiVersion: v1\nkind: Pod\nspec:\n  containerz: []\n", `unknown field "containerz"`},
		{"not a pod", "apiVersion: apps/v1\nkind: Deployment\n", `kind "Deployment": want a Pod manifest`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePodTemplate([]byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePodTemplate error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// templated returns options with the pod templates of testdata.
func templated(t *testing.T, kv ...string) Options {
	t.Helper()
	kv = append([]string{
		KeyClusterID, "wordcount", KeyNamespace, "jobs", KeyImage, "registry.example/spate:1.0",
		KeyJobManagerCPU, "0.5", KeyJobManagerMemory, "1g", KeyTaskManagerCPU, "2", KeyTaskManagerMemory, "2g",
		KeyRESTExposedType, "LoadBalancer",
		KeyJobManagerTemplate, filepath.Join("testdata", "jobmanager-template.yaml"),
		KeyTaskManagerTemplate, filepath.Join("testdata", "taskmanager-template.yaml"),
	}, kv...)
	o, err := OptionsFrom(conf(kv...), false)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestObjects compares every generated object of a cluster, pod templates
// merged, with testdata/objects.golden.yaml (-update rewrites it), and
// checks the merge rules on them.
func TestObjects(t *testing.T) {
	o := templated(t)
	dep := o.JobManagerDeployment(ModeApplication, JobManagerArgs(ModeApplication, "--application", "local:///opt/spate/usrlib/wordcount", "--", "/data/in.txt"), map[string]string{"SPATE_APPLICATION_PROPERTIES": `{"a":"b"}`})
	created := dep.DeepCopy()
	created.UID = types.UID("0e1f2a3b-dep")
	owner := OwnerReference(created)
	cm, err := o.ConfigMap(map[string]string{"taskmanager.numberOfTaskSlots": "2", KeyJobManagerTemplate: "/client/jm.yaml"}, owner)
	if err != nil {
		t.Fatal(err)
	}
	headless, rest := o.Services(owner)
	tm := o.TaskManagerPod(TaskManagerPodName("wordcount", 1, 3),
		TaskManagerArgs(provider.TaskManagerSpec{ID: "taskmanager-3", JobManager: "10.0.0.7:6123", Slots: 2}), owner)

	var buf bytes.Buffer
	secret := o.EnvSecret(map[string]string{"SPATE_APPLICATION_PROPERTIES": `{"a":"b"}`})
	for _, obj := range []any{dep, cm, headless, rest, tm, secret} {
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	golden := filepath.Join("testdata", "objects.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("objects differ from %s (go test -run TestObjects -update rewrites it):\n%s", golden, buf.String())
	}

	// The merge rules, spelled out.
	pod := dep.Spec.Template
	if pod.Labels["team"] != "streaming" || pod.Labels[LabelApp] != "wordcount" || pod.Labels[LabelComponent] != ComponentJobManager || pod.Labels[LabelType] != TypeValue {
		t.Errorf("JobManager pod labels = %v, want the template's and Spate's", pod.Labels)
	}
	if c := pod.Spec.Containers; len(c) != 2 || c[0].Name != MainContainer || c[1].Name != "log-shipper" {
		t.Errorf("JobManager containers = %v, want spate-main and the template's sidecar", c)
	}
	main := pod.Spec.Containers[0]
	if cpu := main.Resources.Limits.Cpu().String(); cpu != "500m" {
		t.Errorf("JobManager cpu limit = %s, want 500m (Spate's, not the template's)", cpu)
	}
	if _, ok := main.Resources.Limits["ephemeral-storage"]; !ok {
		t.Errorf("JobManager limits %v lost the template's ephemeral-storage", main.Resources.Limits)
	}
	if env := envNames(main); !strings.Contains(env, "REGION") || !strings.Contains(env, EnvPodIP) || !strings.Contains(env, "SPATE_APPLICATION_PROPERTIES") {
		t.Errorf("JobManager env = %s, want the template's and Spate's", env)
	}
	if pod.Spec.RestartPolicy != "Always" {
		t.Errorf("JobManager pod restart policy = %s", pod.Spec.RestartPolicy)
	}
	if tm.Spec.RestartPolicy != "Never" || tm.Name != "wordcount-taskmanager-1-3" || len(tm.OwnerReferences) != 1 || tm.OwnerReferences[0].UID != "0e1f2a3b-dep" {
		t.Errorf("TaskManager pod = %s restart %s owners %v", tm.Name, tm.Spec.RestartPolicy, tm.OwnerReferences)
	}
	var vols []string
	for _, v := range tm.Spec.Volumes {
		vols = append(vols, v.Name)
	}
	if strings.Join(vols, ",") != "scratch,"+configVolume+","+tlsVolume {
		t.Errorf("TaskManager volumes = %v, want the template's, the ConfigMap and the TLS Secret", vols)
	}
	// A TaskManager pod mounts its own Secret, 0600.
	tv := tm.Spec.Volumes[2].Secret
	if tv == nil || tv.SecretName != TaskManagerTLSSecretName(tm.Name) || *tv.DefaultMode != 0o600 || len(tv.Items) != 2 ||
		tv.Items[0] != (corev1.KeyToPath{Key: TLSKeystoreFile, Path: TLSKeystoreFile}) || tv.Items[1] != (corev1.KeyToPath{Key: TLSTruststoreFile, Path: TLSTruststoreFile}) {
		t.Errorf("TaskManager TLS volume = %+v, want the keystore and the truststore of its own Secret %s, mode 0600", tv, TaskManagerTLSSecretName(tm.Name))
	}
	if tm.Spec.ServiceAccountName != "spate-tm" {
		t.Errorf("TaskManager service account = %q, want the template's (kubernetes.service-account unset)", tm.Spec.ServiceAccountName)
	}
	if !strings.Contains(cm.Data[ConfigFile], KeyTaskManagerTemplate+": "+ConfDir+"/"+TaskManagerTemplateFile) || strings.Contains(cm.Data[ConfigFile], KeyJobManagerTemplate) {
		t.Errorf("ConfigMap's config.yaml = %s, want the TaskManager template's path in the pod and no JobManager template", cm.Data[ConfigFile])
	}
	if cm.Data[TaskManagerTemplateFile] == "" {
		t.Error("ConfigMap lacks the TaskManager pod template")
	}
	o2 := templated(t, KeyServiceAccount, "spate")
	if sa := o2.TaskManagerPod("x", nil, owner).Spec.ServiceAccountName; sa != "spate" {
		t.Errorf("TaskManager service account with kubernetes.service-account set = %q, want spate", sa)
	}
}

func envNames(c corev1.Container) string {
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
	}
	return strings.Join(names, ",")
}
