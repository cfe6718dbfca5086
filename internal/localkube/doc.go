// Package localkube starts a real, local Kubernetes control plane for tests
// and for people: etcd, kube-apiserver and kube-controller-manager as child
// processes, and a pod runner standing in for the kubelet, the scheduler,
// kube-proxy, the cluster DNS and a cloud's load-balancer controller. Tests
// of the Kubernetes provider run against it instead of a fake client.
//
// # Binaries
//
// EnsureBinaries builds etcd, kube-apiserver and kube-controller-manager
// from the nested modules hack/kube/etcd and hack/kube/build (Kubernetes
// KubeVersion, etcd EtcdVersion; the main module does not depend on
// them) into $XDG_CACHE_HOME/spate/kube/<KubeVersion>/bin (default
// ~/.cache), and reuses them once a stamp file says the build completed.
// Costs on the 2-core machine: from an empty Go build cache (modules
// already downloaded), at the lowest priority (nice 19) while other builds
// kept the load at about 11, 28 min 40 s (etcd 4 min 5 s, kube-apiserver
// 18 min 4 s, kube-controller-manager 6 min 31 s); with the module cache
// filled and part of Kubernetes compiled, 9 min 16 s; an idle machine
// builds kube-apiserver cold in about 10 minutes (the figure). So
// count 10 to 30 minutes, plus the module download. With a warm Go build
// cache but no stamp (linking only): 26 s. Cached: nothing. `go run
// ./hack/localkube -build` builds them; .ci/run does so before the tests.
//
// # Lifecycle
//
// Start(ctx, Options{Dir: dir}) starts the cluster (3 to 5 s once the
// binaries are cached), writes dir/kubeconfig (an admin's, token
// authenticated, group system:masters) and returns a *Cluster with the
// admin's *rest.Config and clientset. Close stops the pods' processes and
// then the control plane, and returns once no process it started is left.
// Tests use StartForTest (one cluster per test) or Shared (one per package,
// closed in TestMain); both skip, with the reason, if the binaries cannot
// be built, except with CI=true, where they fail.
//
// The API server runs with RBAC, a token file for the admin, one RSA key
// for signing and verifying service account tokens (issuer
// DefaultServiceAccountIssuer), the default admission plugins (so pods get
// their service account's token volume), and no endpoint reconciler. The
// controller manager runs the deployment, replicaset, garbage-collector,
// serviceaccount, root-ca-certificate-publisher, namespace and
// resourcequota controllers. A new namespace's pods are refused until its
// default service account exists: CreateNamespace waits for it.
//
// # Pods
//
// The runner registers the Node Options.NodeName (default "localkube"),
// binds each pending pod that fits its allocatable CPU and memory (else
// reports it Unschedulable, as the scheduler does) and runs the pod's main
// container, the one named "spate-main" (else the first; other containers
// are reported waiting, not run), as a local process in a process group of
// its own:
//
//   - Command and args are the container's (the image's entrypoint,
//     Options.Entrypoint, when it has no command), with $(VAR) expanded. An
//     absolute command that exists in the image root is run from there,
//     else from the host.
//   - The environment is PATH, HOME, TMPDIR, GOCOVERDIR and GORACE of this
//     process, Options.PodEnv, HOSTNAME, KUBERNETES_SERVICE_HOST/PORT (the
//     API server), LOCALKUBE_ROOT and LOCALKUBE_DNS (below), then the
//     container's envFrom (ConfigMaps, Secrets) and env (values,
//     configMapKeyRef, secretKeyRef, the downward API's metadata.name,
//     metadata.namespace, metadata.uid, metadata.labels['k'],
//     metadata.annotations['k'], spec.nodeName, spec.serviceAccountName,
//     status.podIP, status.hostIP, and resourceFieldRef).
//   - Each pod gets its own loopback address as its pod IP: 127.X.0.2,
//     127.X.0.3, … where X is the cluster's PodNetwork octet (chosen free
//     at random, so clusters of several test packages do not collide);
//     pods can listen on fixed ports there. The Node is 127.X.0.1.
//   - Its state is the pod's status: Pending, Running (Ready) once
//     started, then Succeeded or Failed with the exit code (128+n for a
//     signal) under restartPolicy Never; Always and OnFailure restart it
//     with a back-off, counting restarts. A command that cannot start is
//     terminated with reason StartError; an image not known when
//     Options.Images is set waits with reason ErrImagePull.
//   - Deleting the pod (graceful) sends SIGTERM to its group, SIGKILL after
//     the grace period (at most 30 s), waits until no process of the group
//     is left, and then removes the pod from the API, as the kubelet does.
//   - Its output is in Cluster.PodDir(ns, name)/main.log, and copied to
//     Options.PodOutput line by line.
//
// # Files: LOCALKUBE_ROOT
//
// A pod has no file system of its own. Its directory
// DIR/pods/<ns>/<name>-<uid>/ holds root/, which stands for the
// container's "/": the process runs there (or at root/<workingDir>) and
// $LOCALKUBE_ROOT names it. root/ mirrors the image root
// (Options.ImageRoot, or Options.Images[image]) with symbolic links, and
// each volume the main container mounts (emptyDir, hostPath, configMap,
// secret, downwardAPI, projected: configMap, secret, downwardAPI and
// serviceAccountToken) is written to volumes/<name> and linked at
// root/<mountPath> (subPath honoured). So the container path P is
// $LOCALKUBE_ROOT/P, for the image's files and the mounted ones alike:
// the Spate configuration mounted at /opt/spate/conf is
// $LOCALKUBE_ROOT/opt/spate/conf, and local:///opt/app/job is
// $LOCALKUBE_ROOT/opt/app/job. Args are not rewritten: the program maps
// paths itself with inpod.Path and inpod.LocalPath, which are the identity
// where LOCALKUBE_ROOT is unset (a real cluster). ConfigMap and Secret
// changes after the start are not propagated.
//
// The service account token (the admission plugin's projected volume, a
// TokenRequest bound to the pod, valid an hour, renewed once 80% of that
// passed, as the kubelet does) is at
// $LOCALKUBE_ROOT/var/run/secrets/kubernetes.io/serviceaccount/token,
// with ca.crt and namespace beside it; inpod.InClusterConfig reads them,
// so a JobManager runs under its service account and RBAC applies.
//
// # Services: LOCALKUBE_DNS and load balancers
//
// The runner answers DNS queries (UDP and TCP at $LOCALKUBE_DNS, on the
// Node's address) for <service>.<namespace>, .svc and .svc.cluster.local:
// a headless Service's name resolves to its ready pods' addresses (all
// running ones with publishNotReadyAddresses), another Service's to its
// own address 127.X.255.N, where the runner proxies each TCP port to a
// ready selected pod's target port (named ports resolved), and each node
// port on the Node's address. Other names are resolved by the host. A
// program calls inpod.UseClusterDNS at the start of main to use it (Go's
// resolver cannot be pointed elsewhere from outside). A LoadBalancer
// Service's status.loadBalancer.ingress is set to its 127.X.255.N, so a
// client on the host reaches the REST Service as it would on a cloud.
// spec.clusterIP (allocated by the API server from 10.96.0.0/16) is not
// reachable: there is no kube-proxy for it.
//
// Not done: init containers, probes (a running container is ready),
// resource limits, the kubelet's log and exec API (kubectl logs).
package localkube
