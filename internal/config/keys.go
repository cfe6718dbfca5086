package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is the form of a configuration key's value.
type Kind int

// The kinds of values.
const (
	// KindString is any text.
	KindString Kind = iota
	// KindBool is true or false (any case), as Flink's boolean options.
	KindBool
	// KindInt is a decimal integer within Key.Min and Key.Max.
	KindInt
	// KindDuration is a duration as ParseDuration reads it.
	KindDuration
	// KindMemory is a size in bytes as ParseBytes reads it (Flink's
	// MemorySize: "512m", "1g", "64 kb").
	KindMemory
	// KindEnum is one of Key.Values (any case).
	KindEnum
)

// Key describes a configuration key Spate knows: the form of its value,
// its default and what it does.
type Key struct {
	// Name is the key, Flink's name where the concept is the same.
	Name string
	// Kind is the form of the value.
	Kind Kind
	// Min and Max bound a KindInt value (inclusive).
	Min, Max int
	// NonZero refuses a zero KindDuration or KindMemory value.
	NonZero bool
	// Seconds makes a bare number of a KindDuration key seconds, as
	// Flink's form for the key, rather than milliseconds.
	Seconds bool
	// Values are a KindEnum key's values.
	Values []string
	// Default is the value used when the key is unset, as text; empty
	// when the default is computed (e.g. the number of CPUs) or none.
	Default string
	// Doc is one line on what the key does.
	Doc string
}

// maxInt is the largest int an int key takes.
const maxInt = int(^uint(0) >> 1)

// Expected describes the form the key's value must take, for errors.
func (k Key) Expected() string {
	switch k.Kind {
	case KindBool:
		return "true or false"
	case KindInt:
		switch {
		case k.Min == 1 && k.Max == maxInt:
			return "a positive integer"
		case k.Min == 0 && k.Max == maxInt:
			return "an integer, 0 or more"
		case k.Max == maxInt:
			return fmt.Sprintf("an integer, %d or more", k.Min)
		}
		return fmt.Sprintf("an integer from %d to %d", k.Min, k.Max)
	case KindDuration:
		s, bare := "a duration", "milliseconds"
		if k.NonZero {
			s = "a duration above zero"
		}
		if k.Seconds {
			bare = "seconds"
		}
		return s + ": " + bare + ", or a number and a unit such as \"10 s\", \"5 min\" or \"1m30s\""
	case KindMemory:
		s := "a memory size: bytes, or a number and a unit such as \"512m\", \"64 kb\" or \"1g\""
		if k.NonZero {
			s = "a memory size above zero: bytes, or a number and a unit such as \"512m\", \"64 kb\" or \"1g\""
		}
		return s
	case KindEnum:
		return "one of " + strings.Join(k.Values, ", ")
	}
	return "text"
}

// Check returns an error naming the key, the value and the expected form
// if value is not of the key's form. An empty value means unset and is
// accepted.
func (k Key) Check(value string) error {
	v := strings.TrimSpace(value)
	if v == "" {
		return nil
	}
	ok := true
	switch k.Kind {
	case KindBool:
		_, ok = parseBool(v)
	case KindInt:
		n, err := strconv.Atoi(v)
		ok = err == nil && n >= k.Min && n <= k.Max
	case KindDuration:
		d, err := k.parseDuration(v)
		ok = err == nil && (!k.NonZero || d > 0)
	case KindMemory:
		n, err := ParseBytes(v)
		ok = err == nil && (!k.NonZero || n > 0)
	case KindEnum:
		ok = slices.ContainsFunc(k.Values, func(s string) bool { return strings.EqualFold(s, v) })
	}
	if !ok {
		return &ValueError{Key: k.Name, Value: value, Expected: k.Expected()}
	}
	return nil
}

// parseDuration parses a duration as ParseDuration does, but a bare
// number is seconds for a Seconds key.
func (k Key) parseDuration(v string) (time.Duration, error) {
	if k.Seconds {
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			if n < 0 || n > math.MaxInt64/int64(time.Second) {
				return 0, fmt.Errorf("duration %q is out of range", v)
			}
			return time.Duration(n) * time.Second, nil
		}
	}
	return ParseDuration(v)
}

// ValueError is a malformed configuration value.
type ValueError struct {
	Key, Value, Expected string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("configuration %s = %q: want %s", e.Key, e.Value, e.Expected)
}

// parseBool reads true or false in any case, as Flink does (not 1, t or
// yes).
func parseBool(v string) (bool, bool) {
	switch {
	case strings.EqualFold(v, "true"):
		return true, true
	case strings.EqualFold(v, "false"):
		return false, true
	}
	return false, false
}

// freeFormPrefixes start keys whose rest is chosen by the user: they are
// known whatever follows.
var freeFormPrefixes = []string{TaskManagerEnvPrefix}

// registry holds every key Spate reads. The keys of other packages are
// spelled out here rather than imported (config is at the bottom of the
// layers); those packages define their own constants.
var registry = func() map[string]Key {
	keys := []Key{
		// A job's plan (the root package).
		{Name: ParallelismDefault, Kind: KindInt, Min: 1, Max: 1 << 15, Doc: "default parallelism of a job's operators; the number of CPUs if unset"},
		{Name: MaxParallelism, Kind: KindInt, Min: 1, Max: 1 << 15, Default: "128", Doc: "number of key groups, the upper bound of a keyed operator's parallelism"},
		{Name: EncodeExchanges, Kind: KindBool, Default: "false", Doc: "force local exchanges through the records' codecs, as between processes"},
		{Name: BufferRecords, Kind: KindInt, Min: 1, Max: 1 << 20, Default: "512", Doc: "records per exchanged batch"},
		{Name: QueueBatches, Kind: KindInt, Min: 1, Max: 1 << 20, Default: "4", Doc: "capacity of a subtask's inbox, in batches per input channel"},
		{Name: NetworkCredits, Kind: KindInt, Min: 1, Max: 1 << 16, Default: "8", Doc: "batches a channel from another worker may have in flight (credit-based flow control)"},

		// The JobManager (internal/jobmanager).
		{Name: "jobmanager.rpc.address", Kind: KindString, Default: "localhost", Doc: "the JobManager's RPC host"},
		{Name: "jobmanager.rpc.port", Kind: KindInt, Min: 0, Max: 65535, Default: "6123", Doc: "the JobManager's RPC port; 0 picks a free one"},
		{Name: "rest.address", Kind: KindString, Doc: "the REST API's host; jobmanager.rpc.address if unset"},
		{Name: "rest.port", Kind: KindInt, Min: 0, Max: 65535, Default: "8081", Doc: "the REST API's port; 0 picks a free one"},
		{Name: "heartbeat.interval", Kind: KindDuration, NonZero: true, Default: "10 s", Doc: "how often TaskManagers and the JobManager exchange heartbeats"},
		{Name: "heartbeat.timeout", Kind: KindDuration, NonZero: true, Default: "50 s", Doc: "how long without a heartbeat before a peer is taken as lost"},
		{Name: "slot.request.timeout", Kind: KindDuration, NonZero: true, Default: "5 min", Doc: "how long a job waits for its slots before it fails"},
		{Name: "blob.storage.directory", Kind: KindString, Doc: "directory of the JobManager's uploaded binaries; if unset, work/blobs in its cluster directory, or one of its own under $TMPDIR/spate-<uid>"},
		{Name: "blob.max-size", Kind: KindMemory, NonZero: true, Default: "512m", Doc: "largest binary the JobManager accepts"},
		{Name: "execution.shutdown-on-application-finish", Kind: KindBool, Default: "true", Doc: "end an application cluster with its application"},
		{Name: "resourcemanager.taskmanager-timeout", Kind: KindDuration, NonZero: true, Default: "30 s", Doc: "how long a provider's idle TaskManager is kept"},

		// The TaskManager (internal/taskmanager).
		{Name: "taskmanager.numberOfTaskSlots", Kind: KindInt, Min: 1, Max: maxInt, Default: "1", Doc: "task slots a TaskManager offers"},
		{Name: "taskmanager.host", Kind: KindString, Default: "127.0.0.1", Doc: "address the workers' data-plane listeners bind and peers dial"},
		{Name: "taskmanager.resource-id", Kind: KindString, Doc: "the TaskManager's name; host:pid if unset"},
		{Name: "taskmanager.tmp.dirs", Kind: KindString, Doc: "the TaskManager's work directory (artifact cache, jobs' files); if unset, one of its own under $TMPDIR/spate-<uid>"},
		{Name: "taskmanager.worker.memory-limit", Kind: KindMemory, Default: "0", Doc: "resident memory above which a job's worker is killed, whatever its slots; 0 for its slots' share of taskmanager.memory.process.size"},

		// Keys other helpers of issue 10 are adding, as their branches
		// define them (the packages named hold the constants); to be
		// reconciled when they land.
		{Name: "jobstore.max-capacity", Kind: KindInt, Min: 1, Max: maxInt, Default: "100", Doc: "ended jobs a JobManager keeps for the REST API; the oldest is forgotten beyond it (jobmanager, issue 10)"},
		{Name: "jobstore.expiration-time", Kind: KindDuration, NonZero: true, Seconds: true, Default: "3600", Doc: "how long an ended job is kept (jobmanager, issue 10)"},
		{Name: "slotmanager.number-of-slots.max", Kind: KindInt, Min: 1, Max: maxInt, Default: "32", Doc: "most slots the cluster allocates; a job needing more is refused (jobmanager, issue 10)"},
		{Name: "jobmanager.worker.deployment-timeout", Kind: KindDuration, NonZero: true, Default: "2 min", Doc: "how long a job's workers have to report ready before the job fails (jobmanager, issue 10)"},
		{Name: "pipeline.auto-watermark-interval", Kind: KindDuration, Default: "200 ms", Doc: "processing-time interval of periodic watermarks; 0 disables them (root package, issue 10)"},
		{Name: "blob.service.cleanup.interval", Kind: KindDuration, NonZero: true, Seconds: true, Default: "3600", Doc: "how long an artifact no running job references is kept, in the blob store and the TaskManagers' caches, before it is deleted"},
		{Name: "taskmanager.memory.process.size", Kind: KindMemory, NonZero: true, Default: "1728m", Doc: "a TaskManager's memory, shared by its workers in proportion to their slots (taskmanager, issue 10)"},

		// The Kubernetes provider (internal/provider/kubernetes, issue 12),
		// Flink's names.
		{Name: "kubernetes.cluster-id", Kind: KindString, Doc: "the Kubernetes cluster's name, at most 45 characters of [a-z]([-a-z0-9]*[a-z0-9]); generated if unset"},
		{Name: "kubernetes.namespace", Kind: KindString, Default: "default", Doc: "the namespace of the cluster's objects"},
		{Name: "kubernetes.container.image", Kind: KindString, Default: "spate:latest", Doc: "the image of the JobManager and TaskManager pods"},
		{Name: "kubernetes.container.image.pull-policy", Kind: KindEnum, Values: []string{"IfNotPresent", "Always", "Never"}, Default: "IfNotPresent", Doc: "the pods' image pull policy"},
		{Name: "kubernetes.jobmanager.cpu", Kind: KindString, Default: "1.0", Doc: "CPUs of the JobManager pod (requests and limits), a positive number"},
		{Name: "kubernetes.jobmanager.memory", Kind: KindMemory, NonZero: true, Default: "1600m", Doc: "memory of the JobManager pod (requests and limits)"},
		{Name: "kubernetes.taskmanager.cpu", Kind: KindString, Default: "1.0", Doc: "CPUs of a TaskManager pod (requests and limits), a positive number"},
		{Name: "kubernetes.taskmanager.memory", Kind: KindMemory, NonZero: true, Default: "1728m", Doc: "memory of a TaskManager pod (requests and limits)"},
		{Name: "kubernetes.service-account", Kind: KindString, Default: "default", Doc: "the service account of the cluster's pods; the JobManager's needs the Role of deploy/kubernetes"},
		{Name: "kubernetes.rest-service.exposed.type", Kind: KindEnum, Values: []string{"ClusterIP", "NodePort", "LoadBalancer"}, Default: "ClusterIP", Doc: "the type of the REST Service <cluster-id>-rest"},
		{Name: "kubernetes.pod-template-file.jobmanager", Kind: KindString, Doc: "a Pod manifest merged into the JobManager pod (labels, env, volumes, sidecars)"},
		{Name: "kubernetes.pod-template-file.taskmanager", Kind: KindString, Doc: "a Pod manifest merged into the TaskManager pods (labels, env, volumes, sidecars)"},
		{Name: "kubernetes.entry.path", Kind: KindString, Default: "/opt/spate/bin/spate", Doc: "the spate executable in the image"},
		{Name: "kubernetes.config.file", Kind: KindString, Doc: "the kubeconfig the client reads; $KUBECONFIG, ~/.kube/config or the pod's in-cluster configuration if unset"},

		// Fault tolerance (issue 11, core): checkpoint coordination
		// (internal/checkpoint), checkpoint storage and restart
		// strategies (internal/restart), Flink's names and defaults.
		{Name: "execution.checkpointing.interval", Kind: KindDuration, Doc: "interval of periodic checkpoints; none (and no checkpoints) if unset, as in Flink"},
		{Name: "execution.checkpointing.mode", Kind: KindEnum, Values: []string{"EXACTLY_ONCE", "AT_LEAST_ONCE"}, Default: "EXACTLY_ONCE", Doc: "EXACTLY_ONCE aligns barriers at subtasks with several inputs, AT_LEAST_ONCE does not"},
		{Name: "execution.checkpointing.timeout", Kind: KindDuration, NonZero: true, Default: "10 min", Doc: "a checkpoint not complete within it is aborted"},
		{Name: "execution.checkpointing.min-pause", Kind: KindDuration, Default: "0", Doc: "least time from a checkpoint's completion to the next trigger"},
		{Name: "execution.checkpointing.max-concurrent-checkpoints", Kind: KindInt, Min: 1, Max: maxInt, Default: "1", Doc: "checkpoints that may be pending at once"},
		{Name: "execution.checkpointing.tolerable-failed-checkpoints", Kind: KindInt, Min: 0, Max: maxInt, Default: "0", Doc: "checkpoint failures in a row (timeouts, declines, failed writes) a job survives; one more fails it over"},
		{Name: "state.checkpoints.dir", Kind: KindString, Doc: "where checkpoints are stored, a URL (file:///path, s3://bucket/prefix) or a path; <dir>/<job-id>/chk-<n>/; if unset, checkpoints in the JobManager's cluster directory"},
		{Name: "execution.checkpointing.savepoint-dir", Kind: KindString, Doc: "default directory of savepoints (spate savepoint, spate stop --savepoint), a URL (file:///path, s3://bucket/prefix) or a path; each goes to <dir>/savepoint-<job>-<random>/"},
		{Name: "execution.checkpointing.externalized-checkpoint-retention", Kind: KindEnum, Values: []string{"DELETE_ON_CANCELLATION", "RETAIN_ON_CANCELLATION", "NO_EXTERNALIZED_CHECKPOINTS"}, Default: "DELETE_ON_CANCELLATION", Doc: "what becomes of a job's checkpoints when it ends: DELETE_ON_CANCELLATION keeps a failed job's, RETAIN_ON_CANCELLATION a cancelled one's too, NO_EXTERNALIZED_CHECKPOINTS none; a finished job's are deleted; a retained one restores with spate run -s <dir>/<job>/chk-<n>"},
		{Name: "execution.savepoint.path", Kind: KindString, Doc: "the savepoint or retained checkpoint a job starts from (spate run -s PATH); its operators' state is matched by uid"},
		{Name: "execution.savepoint.ignore-unclaimed-state", Kind: KindBool, Default: "false", Doc: "start from a savepoint even if it holds state of operators the job no longer has (spate run --allow-non-restored-state)"},
		{Name: "state.checkpoints.num-retained", Kind: KindInt, Min: 1, Max: maxInt, Default: "1", Doc: "completed checkpoints kept; older ones are deleted"},
		{Name: "task.checkpoint.alignment.max-size", Kind: KindMemory, Default: "0", Doc: "most that an EXACTLY_ONCE barrier alignment holds of a subtask's blocked input channels (records after a barrier, waiting for the other inputs' barriers); past it the subtask declines the checkpoint (alignment-failed, counted by execution.checkpointing.tolerable-failed-checkpoints) and goes on; 0 for no bound, as Flink's former key of this name"},

		// Checkpoint storage in S3-compatible object stores
		// (internal/checkpoint/storage/s3.go, issue 14), Flink's names.
		{Name: "s3.endpoint", Kind: KindString, Doc: "endpoint of the object store of s3:// checkpoint storage, http(s)://host[:port] or host[:port] (HTTPS); AWS S3 (s3.amazonaws.com) if unset"},
		{Name: "s3.region", Kind: KindString, Doc: "region of the s3:// checkpoint bucket; asked of the store if unset"},
		{Name: "s3.access-key", Kind: KindString, Doc: "access key of s3:// checkpoint storage; if unset, AWS_ACCESS_KEY_ID (and AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), ~/.aws/credentials, then the instance's or pod's role"},
		{Name: "s3.secret-key", Kind: KindString, Doc: "secret key of s3:// checkpoint storage, with s3.access-key"},
		{Name: "s3.path.style.access", Kind: KindBool, Default: "false", Doc: "address s3:// buckets as endpoint/bucket rather than bucket.endpoint (most stores other than AWS need it)"},
		{Name: "s3.upload.min.part.size", Kind: KindMemory, NonZero: true, Default: "8m", Doc: "part size of the multipart uploads of s3:// state files, at least 5m; a smaller object goes up in one request"},
		{Name: "s3.request.timeout", Kind: KindDuration, NonZero: true, Default: "2 min", Doc: "bound on each request to an s3:// store, its retries included: a store that stalls fails the checkpoint write"},
		{Name: "restart-strategy.type", Kind: KindEnum, Values: []string{"none", "off", "disable", "fixed-delay", "fixeddelay", "failure-rate", "failurerate", "exponential-delay", "exponentialdelay"}, Doc: "how a failed job restarts; exponential-delay if checkpointing is on, none otherwise, if unset"},
		{Name: "restart-strategy.fixed-delay.attempts", Kind: KindInt, Min: 0, Max: maxInt, Default: "1", Doc: "restarts of fixed-delay before the job fails"},
		{Name: "restart-strategy.fixed-delay.delay", Kind: KindDuration, Default: "1 s", Doc: "delay of each fixed-delay restart"},
		{Name: "restart-strategy.failure-rate.max-failures-per-interval", Kind: KindInt, Min: 0, Max: maxInt, Default: "1", Doc: "failures within the interval that failure-rate restarts; one more fails the job"},
		{Name: "restart-strategy.failure-rate.failure-rate-interval", Kind: KindDuration, NonZero: true, Default: "1 min", Doc: "interval over which failure-rate counts failures"},
		{Name: "restart-strategy.failure-rate.delay", Kind: KindDuration, Default: "1 s", Doc: "delay of each failure-rate restart"},
		{Name: "restart-strategy.exponential-delay.initial-backoff", Kind: KindDuration, NonZero: true, Default: "1 s", Doc: "first backoff of exponential-delay"},
		{Name: "restart-strategy.exponential-delay.max-backoff", Kind: KindDuration, NonZero: true, Default: "1 min", Doc: "largest backoff of exponential-delay"},
		{Name: "restart-strategy.exponential-delay.backoff-multiplier", Kind: KindString, Default: "1.5", Doc: "factor of each next backoff of exponential-delay (a number, 1 or more)"},
		{Name: "restart-strategy.exponential-delay.reset-backoff-threshold", Kind: KindDuration, NonZero: true, Default: "1 h", Doc: "a failure this long after the previous one starts the backoff over"},
		{Name: "restart-strategy.exponential-delay.jitter-factor", Kind: KindString, Default: "0.1", Doc: "each backoff is spread by up to this fraction of it, either way (a number from 0 to 1)"},
		{Name: "restart-strategy.exponential-delay.attempts-before-reset-backoff", Kind: KindInt, Min: 0, Max: maxInt, Doc: "restarts of exponential-delay before the job fails, counted since the backoff was last reset; unbounded if unset"},

		// Metrics (internal/metrics, issue 13): the Prometheus reporter of
		// the JobManager and the TaskManagers.
		{Name: "metrics.reporters", Kind: KindString, Default: "prom", Doc: "reporters a daemon starts, comma-separated: prom serves Prometheus' /metrics; empty for none"},
		{Name: OperatorMetrics, Kind: KindBool, Default: "false", Doc: "a job's operators each count the records and watermarks they emit (operator-scope numRecordsIn/Out, currentOutputWatermark); costs about 2.5 ns per record per chained operator, so off unless set; subtask figures are always there"},
		{Name: "metrics.reporter.prom.port", Kind: KindString, Default: "9249-9260", Doc: "port, or range lo-hi of ports, of a daemon's /metrics: the first free one is taken, so that several daemons share a host; 0 picks any free port"},

		// Security (issue 15: internal/pki, internal/rest/auth.go,
		// internal/jobmanager/security.go, docs/security.md).
		{Name: "security.ssl.internal.enabled", Kind: KindBool, Default: "true", Doc: "mutual TLS 1.3 on the cluster's internal connections (RPC, data plane); a standalone daemon refuses to start without keystore and truststore unless this is false"},
		{Name: "security.ssl.internal.keystore", Kind: KindString, Doc: "PEM file (mode 0600) with this daemon's certificate, its chain and its private key, for internal connections; the process provider makes its own"},
		{Name: "security.ssl.internal.truststore", Kind: KindString, Doc: "PEM file with the CA certificates that sign the cluster members' certificates"},
		{Name: "rest.authentication.token-file", Kind: KindString, Doc: "file (mode 0600) holding the bearer token the REST API requires; clients read it too"},
		{Name: "rest.authentication.enabled", Kind: KindBool, Default: "true", Doc: "require authentication on a REST API bound to a non-loopback address; false serves it to anyone, logged loudly"},
		{Name: "security.ssl.rest.enabled", Kind: KindBool, Default: "false", Doc: "serve the JobManager's REST API over HTTPS (TLS 1.3); clients (the CLI, programs it runs, the Go client) speak HTTPS to it"},
		{Name: "security.ssl.rest.keystore", Kind: KindString, Doc: "PEM file (mode 0600) with the REST API's certificate, its chain and its private key on the JobManager; on a client, its own certificate, presented when authentication-enabled is true"},
		{Name: "security.ssl.rest.truststore", Kind: KindString, Doc: "PEM file with CA certificates: on the JobManager, those clients' certificates must chain to (authentication-enabled); on a client, those the JobManager's must chain to (no host name check; the system's roots and host names without it)"},
		{Name: "security.ssl.rest.authentication-enabled", Kind: KindBool, Default: "false", Doc: "mutual TLS on the REST API: the JobManager requires a client certificate its truststore verifies, which authenticates a REST API on a non-loopback address without a token"},
		{Name: "rest.upload.max-concurrent", Kind: KindInt, Min: 1, Max: 1 << 16, Default: "4", Doc: "uploads one client (token or address) may have in flight; more are answered 429"},
		{Name: "taskmanager.worker.uid-range", Kind: KindString, Default: "auto", Doc: "uids (first-last, e.g. 100000-165535) the workers of a TaskManager running as root run under, each worker its own with a private 0700 directory; auto takes root's range of /etc/subuid and /etc/subgid, else 1879048192-1879113727; none runs them as root, logged as a SECURITY WARNING"},
	}
	m := make(map[string]Key, len(keys))
	for _, k := range keys {
		if _, dup := m[k.Name]; dup {
			panic("config: key " + k.Name + " registered twice")
		}
		m[k.Name] = k
	}
	return m
}()

// Lookup returns the registered key named name.
func Lookup(name string) (Key, bool) {
	k, ok := registry[name]
	return k, ok
}

// Keys returns every registered key, sorted by name.
func Keys() []Key {
	return slices.SortedFunc(maps.Values(registry), func(a, b Key) int { return cmp.Compare(a.Name, b.Name) })
}

// Known tells whether name is a registered key or lies under a prefix
// whose keys are free-form (containerized.taskmanager.env.NAME).
func Known(name string) bool {
	if _, ok := registry[name]; ok {
		return true
	}
	for _, p := range freeFormPrefixes {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	return false
}

// namespaces are the first parts of the keys of Spate and of Flink: a key
// under one of them that is not registered is a typo or a Flink option
// Spate lacks, never a job's own key.
var namespaces = func() map[string]bool {
	m := map[string]bool{}
	for _, ns := range []string{
		// Flink's, beyond those of the registered keys.
		"akka", "pekko", "checkpointing", "classloader", "client", "cluster", "env", "fs",
		"high-availability", "historyserver", "io", "kubernetes", "metrics", "process",
		"python", "queryable-state", "restart-strategy", "s3", "security", "sql-client",
		"state", "table", "web", "yarn",
	} {
		m[ns] = true
	}
	for name := range registry {
		ns, _, _ := strings.Cut(name, ".")
		m[ns] = true
	}
	return m
}()

// Unknown tells whether name is a key to warn about: not a key Spate
// knows, and either under one of Spate's or Flink's namespaces
// (taskmanager., state., ...) or close to a known key, a likely typo
// (suggestion is then that key). A key outside them, such as app.region,
// is a job's own and not unknown.
func Unknown(name string) (suggestion string, unknown bool) {
	if Known(name) {
		return "", false
	}
	if s, ok := Suggest(name); ok {
		return s, true
	}
	ns, _, _ := strings.Cut(name, ".")
	return "", namespaces[ns]
}

// Suggest returns the registered key closest to an unknown name, if one is
// close enough to be a likely typo: the same but for case, or a few edits
// away.
func Suggest(name string) (string, bool) {
	lower := strings.ToLower(name)
	best, bestDist := "", -1
	for _, k := range Keys() {
		d := editDistance(lower, strings.ToLower(k.Name))
		if bestDist < 0 || d < bestDist {
			best, bestDist = k.Name, d
		}
	}
	if bestDist < 0 || bestDist > max(2, len(name)/8) || best == name {
		return "", false
	}
	return best, true
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Validate checks every entry of c under a registered key and returns all
// malformed ones, each naming the key, the value and the expected form.
// Entries under keys Spate does not know (a job's own keys) are only
// checked to be text (valid UTF-8).
func (c Config) Validate() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.m)) {
		if !utf8.ValidString(name) || !utf8.ValidString(c.m[name]) {
			// Entries travel as JSON text to a job's workers, which
			// would replace the invalid bytes.
			errs = append(errs, fmt.Errorf("configuration entry %q: not valid UTF-8 text; configuration keys and values are text", name))
			continue
		}
		if k, ok := registry[name]; ok {
			if err := k.Check(c.m[name]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		for _, check := range constraints {
			if err := check(c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// constraints relate keys to each other; they run once every entry is
// well-formed.
var constraints = []func(c Config) error{
	func(c Config) error {
		interval, timeout := c.orDefault("heartbeat.interval"), c.orDefault("heartbeat.timeout")
		iv, err1 := ParseDuration(interval)
		to, err2 := ParseDuration(timeout)
		if err1 == nil && err2 == nil && to <= iv {
			return fmt.Errorf("configuration heartbeat.timeout = %q must be longer than heartbeat.interval = %q: a peer would be taken as lost between two heartbeats", timeout, interval)
		}
		return nil
	},
}

// orDefault returns the value of a registered key, its default if unset.
func (c Config) orDefault(key string) string {
	if v, ok := c.m[key]; ok && strings.TrimSpace(v) != "" {
		return v
	}
	return registry[key].Default
}

// UnknownKeys returns c's keys that Unknown warns about, sorted.
func (c Config) UnknownKeys() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(c.m)) {
		if _, unknown := Unknown(name); unknown {
			out = append(out, name)
		}
	}
	return out
}
