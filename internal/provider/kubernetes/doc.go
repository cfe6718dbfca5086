// Package kubernetes is the provider that runs clusters as pods through
// the Kubernetes API, as Flink's native Kubernetes integration: the
// kubernetes-session, kubernetes-per-job and kubernetes-application
// targets.
//
// The client side (Deployer) creates a cluster's objects: the JobManager
// Deployment <cluster-id> (one replica), the headless Service <cluster-id>
// for RPC, the REST Service <cluster-id>-rest, and the ConfigMap
// spate-config-<cluster-id> with the configuration, mounted into every
// pod at ConfDir, and the Secret spate-tls-<cluster-id>, the JobManager
// pod's, with a CA of the cluster's own that Deploy makes, the
// JobManager's certificate and, with security.ssl.rest.enabled, the REST
// API's (for its Services' DNS names). The JobManager side (Provider)
// serves the resource manager: it creates TaskManager pods
// <cluster-id>-taskmanager-<attempt>-<index> (restartPolicy Never) on
// demand, each with a certificate of its own that it issues from the CA
// into the Secret <pod>-tls (owned by the pod), watches them and reports
// the ones that failed, were evicted or deleted, and deletes released
// ones. Each pod mounts its own keystore and the truststore at TLSDir,
// mode 0600. Every object
// carries the labels type=spate-native-kubernetes, app=<cluster-id> and
// component=jobmanager|taskmanager and an owner reference to the
// JobManager Deployment (a TaskManager pod's Secret: to its pod), so that deleting the Deployment deletes the
// cluster (the garbage collector removes the rest).
//
// Cluster lifecycle, per mode:
//
//	session:      Deploy ──▶ jobs come and go ──▶ Kill (spate session stop)
//	per-job:      Deploy ──▶ one job ──▶ the JobManager deletes its own
//	              Deployment (attached: once the client has acknowledged
//	              the job's result, having read its output)
//	application:  Deploy ──▶ the JobManager runs main and its jobs ──▶
//	              the JobManager deletes its own Deployment (attached: the
//	              client, once it has the jobs' output)
//
// Pod templates (kubernetes.pod-template-file.*) are merged with the
// generated pods as Flink does (see mergePod). The kubeconfig comes from
// kubernetes.config.file, $KUBECONFIG or ~/.kube/config, else the pod's
// in-cluster configuration. Only cmd/spate imports this package, so that
// client-go is linked into the spate CLI and daemons and never into a
// user's program.
package kubernetes
