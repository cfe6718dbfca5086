// Command spy is a Spate program for the security tests, in two roles.
//
//	spy victim            a job at parallelism 2 that runs until cancelled,
//	                      its records crossing the data plane
//	spy probe JOB ADDR... a job whose one worker, with the credentials it
//	                      was given, tries to speak for job JOB's worker w0
//	                      to the JobManager, to open JOB's data channels at
//	                      ADDR..., and to read JOB's secret
//	                      ($VICTIM_SECRET) through /proc and JOB's files;
//	                      it prints what it got as a SPY-RESULT line
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/internal/deployment"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: spy victim | spy probe JOB ADDR...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "victim":
		victim()
	case "probe":
		probe(os.Args[2], os.Args[3:])
	}
}

type rec struct{ Key, N int64 }

// ticks emits a record every 10 ms until the job is cancelled.
type ticks struct{}

func (ticks) Open(context.Context, spate.Split) (spate.SourceReader[rec], error) {
	return &tickReader{}, nil
}

type tickReader struct{ n int64 }

func (r *tickReader) Read(ctx context.Context, buf []rec) (int, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(10 * time.Millisecond):
	}
	r.n++
	buf[0] = rec{Key: r.n % 16, N: r.n}
	return 1, nil
}

func (r *tickReader) Close() error { return nil }

type discard struct{}

func (discard) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[rec], error) {
	return discard{}, nil
}
func (discard) Write(rec) error   { return nil }
func (discard) Close(error) error { return nil }

func victim() {
	env := spate.NewEnv(spate.WithParallelism(2))
	src := spate.FromSource(env, "ticks", ticks{}, spate.NoWatermarks[rec]())
	sum := spate.Reduce(spate.KeyBy(src, func(r rec) int64 { return r.Key }), func(a, v rec) rec { a.N += v.N; return a })
	spate.SinkTo(sum, spate.Sink[rec](discard{}))
	if err := env.Execute("victim"); err != nil {
		fmt.Fprintln(os.Stderr, "victim:", err)
		os.Exit(1)
	}
}

// Result is what the probe found.
type Result struct {
	ReportTasks, Heartbeat, Register string
	// Data holds, per address, the outcome of a TLS handshake with the
	// probe's certificate and without one.
	Data         map[string]string
	DataNoCert   map[string]string
	EnvironLeaks []string
	FilesSeen    []string
	FilesRead    []string
	ProcsScanned int
	OwnUID       int
	ProbeErrors  []string
}

func probe(job string, addrs []string) {
	env := spate.NewEnv(spate.WithParallelism(1))
	out := spate.Map(spate.FromSlice(env, []int{1}), func(int) string {
		if os.Getenv(deployment.EnvDeployment) == "" {
			return "SPY-RESULT not in a worker"
		}
		b, _ := json.Marshal(spy(job, addrs))
		return "SPY-RESULT " + string(b)
	})
	spate.SinkTo(out, spate.Print[string]())
	if err := env.Execute("probe"); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func spy(job string, addrs []string) Result {
	r := Result{Data: map[string]string{}, DataNoCert: map[string]string{}, OwnUID: os.Getuid()}
	d, err := deployment.FromEnvironment()
	if err != nil || d == nil || d.TLS == nil {
		r.ProbeErrors = append(r.ProbeErrors, fmt.Sprintf("no deployment with TLS files: %v", err))
		return r
	}
	kb, err := os.ReadFile(d.TLS.Keystore)
	if err != nil {
		r.ProbeErrors = append(r.ProbeErrors, err.Error())
		return r
	}
	kp, err := pki.ParseKeyPair(kb)
	if err != nil {
		r.ProbeErrors = append(r.ProbeErrors, err.Error())
		return r
	}
	cert, _ := kp.TLSCertificate()
	tb, _ := os.ReadFile(d.TLS.Truststore)
	cluster, _, _ := pki.ParsePool(tb)
	pb, _ := os.ReadFile(d.TLS.PeerCA)
	peers, _, _ := pki.ParsePool(pb)

	// The JobManager, with this worker's own (valid) certificate.
	conn, err := grpc.NewClient(d.JobManager, grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientConfig(cert, cluster, nil))))
	if err == nil {
		jm := rpcpb.NewJobManagerClient(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = jm.ReportTasks(ctx, &rpcpb.ReportTasksRequest{JobId: job, WorkerId: "w0",
			Tasks: []*rpcpb.TaskStatus{{Vertex: 0, Subtask: 0, State: "FAILED", Error: "the spy failed you"}}})
		r.ReportTasks = status.Code(err).String()
		_, err = jm.WorkerHeartbeat(ctx, &rpcpb.WorkerHeartbeatRequest{JobId: job, WorkerId: "w0"})
		r.Heartbeat = status.Code(err).String()
		_, err = jm.RegisterTaskManager(ctx, &rpcpb.RegisterTaskManagerRequest{ResourceId: "spy", Slots: 8})
		r.Register = status.Code(err).String()
		cancel()
		conn.Close()
	}

	// The victim's data channels.
	for _, a := range addrs {
		r.Data[a] = handshake(a, pki.ClientConfig(cert, peers, nil))
		r.DataNoCert[a] = handshake(a, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true})
	}

	// The victim's environment, through /proc.
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		r.ProcsScanned++
		if strings.Contains(string(b), "VICTIM_SECRET") && e.Name() != fmt.Sprint(os.Getpid()) {
			r.EnvironLeaks = append(r.EnvironLeaks, e.Name())
		}
	}
	// The victim's files, beside this worker's own directory.
	parent := filepath.Dir(os.Getenv(deployment.EnvJobDir))
	for _, pattern := range []string{job + "-*/deployment.json", job + "-*/tls/keystore.pem", job + "-*/program"} {
		matches, _ := filepath.Glob(filepath.Join(parent, pattern))
		r.FilesSeen = append(r.FilesSeen, matches...)
		for _, m := range matches {
			if _, err := os.ReadFile(m); err == nil {
				r.FilesRead = append(r.FilesRead, m)
			}
		}
	}
	if ents, err := os.ReadDir(parent); err == nil {
		for _, e := range ents {
			r.FilesSeen = append(r.FilesSeen, "listed "+e.Name())
		}
	}
	return r
}

func handshake(addr string, cfg *tls.Config) string {
	c, err := tls.DialWithDialer(&netDialer, "tcp", addr, cfg)
	if err != nil {
		return "refused: " + err.Error()
	}
	defer c.Close()
	// TLS 1.3: a client certificate the server rejects shows at the first
	// read.
	c.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil && !strings.Contains(err.Error(), "timeout") {
		return "refused: " + err.Error()
	}
	return "accepted"
}

var netDialer = net.Dialer{Timeout: time.Second}
