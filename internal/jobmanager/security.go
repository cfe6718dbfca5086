package jobmanager

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/pki"
	"github.com/spate-dev/spate/internal/rest"
	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// The RPC port's defences.
//
// Deadlines: a connection must finish its TLS and HTTP/2 handshakes
// within Config.RPCHandshakeTimeout; an idle connection is closed after
// rpcMaxIdle, a silent one once keepalive pings go unanswered; a unary
// call runs for at most its method's bound (rpcCallBound), whatever
// deadline its caller set; a TaskManager session must say hello within
// the handshake timeout.
//
// Authentication (with Config.TLS): every connection is TLS 1.3 with a
// client certificate. A certificate the cluster's truststore verifies is
// a member's (JobManager or TaskManager): it may register a TaskManager,
// hold a session, fetch artifacts and have workers' certificates signed.
// A certificate of the JobManager's worker CA names one worker of one
// job: it may make the worker calls (WorkerReady, ReportTasks,
// WorkerHeartbeat, AwaitPublish, collect pushes) for that job and that
// worker only. Anything else is refused with PermissionDenied.

// Defaults of the RPC defences.
const (
	DefaultRPCHandshakeTimeout = 10 * time.Second
	rpcMaxIdle                 = 10 * time.Minute
	rpcKeepaliveTime           = 30 * time.Second
	rpcKeepaliveTimeout        = 20 * time.Second
	rpcMaxStreams              = 1024
	rpcMaxRecvBytes            = 16 << 20
)

// rpcCallBound bounds a unary call of method.
func rpcCallBound(method string) time.Duration {
	switch method {
	case rpcpb.JobManager_WorkerReady_FullMethodName:
		return readyCallBound
	case rpcpb.JobManager_AwaitPublish_FullMethodName:
		return 2 * time.Minute
	}
	return time.Minute
}

// readyCallBound bounds WorkerReady: a worker waits in it for the job's
// other workers (the worker's own bound is 5 min).
const readyCallBound = 6 * time.Minute

// Method classes for authorisation.
var memberMethods = map[string]bool{
	rpcpb.JobManager_RegisterTaskManager_FullMethodName:         true,
	rpcpb.JobManager_Connect_FullMethodName:                     true,
	rpcpb.ClusterSecurity_IssueWorkerCertificate_FullMethodName: true,
	rpcpb.ClusterSecurity_FetchArtifact_FullMethodName:          true,
}

// workerMethods are the calls of a job's workers; a member may not make
// them. A worker may make any call (but the members') whose request names
// its own job and worker.
var workerMethods = map[string]bool{
	rpcpb.JobManager_WorkerReady_FullMethodName:                      true,
	rpcpb.JobManager_ReportTasks_FullMethodName:                      true,
	rpcpb.JobManager_WorkerHeartbeat_FullMethodName:                  true,
	rpcpb.JobManager_AwaitPublish_FullMethodName:                     true,
	rpcpb.CollectRelay_Push_FullMethodName:                           true,
	rpcpb.CheckpointCoordinator_Subscribe_FullMethodName:             true,
	rpcpb.CheckpointCoordinator_AcknowledgeCheckpoint_FullMethodName: true,
	rpcpb.CheckpointCoordinator_DeclineCheckpoint_FullMethodName:     true,
}

// workerRequest is a worker call's request: it names the job and the
// worker it speaks for.
type workerRequest interface {
	GetJobId() string
	GetWorkerId() string
}

// rpcSecurity is the JobManager's TLS state: its material and the worker
// CA, which lives in memory only.
type rpcSecurity struct {
	m        *pki.Material
	workerCA *pki.CA
	// clientCAs verifies members and workers alike; the handler tells
	// them apart.
	clientCAs *x509.CertPool
}

func newRPCSecurity(m *pki.Material) (*rpcSecurity, error) {
	ca, err := pki.NewCA("spate worker CA")
	if err != nil {
		return nil, err
	}
	pool := m.Roots.Clone()
	pool.AddCert(ca.Cert)
	return &rpcSecurity{m: m, workerCA: ca, clientCAs: pool}, nil
}

// caller is who made a call, from its certificate.
type caller struct {
	member bool
	worker pki.Identity // set for a worker
}

// callerOf returns the caller of ctx's call; without TLS every caller is
// a member and may speak for any worker.
func (s *rpcSecurity) callerOf(ctx context.Context) (caller, error) {
	if s == nil {
		return caller{member: true}, nil
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return caller{}, status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return caller{}, status.Error(codes.Unauthenticated, "no client certificate")
	}
	leaf := ti.State.PeerCertificates[0]
	if leaf.CheckSignatureFrom(s.workerCA.Cert) == nil {
		id, ok := pki.IdentityOf(leaf)
		if !ok || id.Role != pki.RoleWorker {
			return caller{}, status.Error(codes.PermissionDenied, "a worker certificate without a worker identity")
		}
		return caller{worker: id}, nil
	}
	// The handshake verified the chain against members' roots or the
	// worker CA; not the worker CA's, it is a member's.
	return caller{member: true}, nil
}

// authorize checks that the caller of method may make it with req.
func (s *rpcSecurity) authorize(ctx context.Context, method string, req any) error {
	if s == nil {
		return nil
	}
	c, err := s.callerOf(ctx)
	if err != nil {
		return err
	}
	if memberMethods[method] {
		if !c.member {
			return status.Errorf(codes.PermissionDenied, "%s is for the cluster's TaskManagers, not for %s", method, c.worker)
		}
		return nil
	}
	if c.member {
		if workerMethods[method] {
			// A TaskManager has no business in the worker calls.
			return status.Errorf(codes.PermissionDenied, "%s is for a job's workers: call it with the worker's certificate", method)
		}
		// Other calls (a TaskManager's metrics, say) are the members'.
		return nil
	}
	wr, ok := req.(workerRequest)
	if !ok {
		return status.Errorf(codes.PermissionDenied, "%s is not open to workers", method)
	}
	if wr.GetJobId() != c.worker.Job || wr.GetWorkerId() != c.worker.Worker {
		return status.Errorf(codes.PermissionDenied, "worker %s of job %s may not speak for worker %s of job %s",
			c.worker.Worker, c.worker.Job, wr.GetWorkerId(), wr.GetJobId())
	}
	return nil
}

// rpcServerOptions are the RPC server's options: its credentials,
// deadlines, limits and the authorisation of every call.
func (jm *JobManager) rpcServerOptions() []grpc.ServerOption {
	sec := jm.sec
	opts := []grpc.ServerOption{
		grpc.ConnectionTimeout(jm.cfg.RPCHandshakeTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: rpcMaxIdle, Time: rpcKeepaliveTime, Timeout: rpcKeepaliveTimeout}),
		grpc.MaxConcurrentStreams(rpcMaxStreams),
		grpc.MaxRecvMsgSize(rpcMaxRecvBytes),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := sec.authorize(ctx, info.FullMethod, req); err != nil {
				jm.log.Warn("jobmanager: RPC refused", "method", info.FullMethod, "err", status.Convert(err).Message())
				return nil, err
			}
			ctx, cancel := context.WithTimeout(ctx, rpcCallBound(info.FullMethod))
			defer cancel()
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if memberMethods[info.FullMethod] || sec == nil {
				if err := sec.authorize(ss.Context(), info.FullMethod, nil); err != nil {
					jm.log.Warn("jobmanager: RPC refused", "method", info.FullMethod, "err", status.Convert(err).Message())
					return err
				}
				return h(srv, ss)
			}
			// A worker's stream (checkpoint orders): its request names the
			// worker, checked as it is received.
			return h(srv, &authorizedStream{ServerStream: ss, check: func(m any) error {
				err := sec.authorize(ss.Context(), info.FullMethod, m)
				if err != nil {
					jm.log.Warn("jobmanager: RPC refused", "method", info.FullMethod, "err", status.Convert(err).Message())
				}
				return err
			}})
		}),
	}
	if sec != nil {
		cfg := pki.ServerConfig(sec.m.Cert, sec.clientCAs, nil)
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	return opts
}

// securityServer serves ClusterSecurity to the TaskManagers.
type securityServer struct {
	rpcpb.UnimplementedClusterSecurityServer
	jm *JobManager
}

// IssueWorkerCertificate signs a worker's key for the TaskManager the
// worker was deployed on.
func (s securityServer) IssueWorkerCertificate(ctx context.Context, req *rpcpb.IssueWorkerCertificateRequest) (*rpcpb.IssueWorkerCertificateResponse, error) {
	jm := s.jm
	if jm.sec == nil {
		return nil, status.Error(codes.FailedPrecondition, "the cluster's internal connections are not encrypted (security.ssl.internal.enabled is false): workers need no certificate")
	}
	jm.mu.Lock()
	_, w, err := jm.workerLocked(req.JobId, req.WorkerId)
	var onTM string
	if err == nil {
		onTM = w.tm.id
	}
	jm.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if onTM != req.TaskmanagerId {
		return nil, status.Errorf(codes.PermissionDenied, "worker %s of job %s was deployed on TaskManager %s, not on %s", req.WorkerId, req.JobId, onTM, req.TaskmanagerId)
	}
	pub, err := x509.ParsePKIXPublicKey(req.PublicKey)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "public key of worker %s: %v", req.WorkerId, err)
	}
	der, err := jm.sec.workerCA.Sign(pub, pki.Identity{Role: pki.RoleWorker, Job: req.JobId, Worker: req.WorkerId}, nil, 0)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &rpcpb.IssueWorkerCertificateResponse{Certificate: der, WorkerCa: jm.sec.workerCA.Cert.Raw}, nil
}

// artifactChunk is the size of FetchArtifact's chunks.
const artifactChunk = 1 << 20

// FetchArtifact streams a binary of the blob store.
func (s securityServer) FetchArtifact(req *rpcpb.FetchArtifactRequest, stream rpcpb.ClusterSecurity_FetchArtifactServer) error {
	if len(req.Artifact) != 64 || strings.Trim(req.Artifact, "0123456789abcdef") != "" {
		return status.Errorf(codes.InvalidArgument, "artifact id %q is not a SHA-256", req.Artifact)
	}
	rc, size, err := s.jm.OpenArtifact(stream.Context(), req.Artifact)
	if err != nil {
		return status.Errorf(codes.NotFound, "artifact %s: %v", req.Artifact, err)
	}
	defer rc.Close()
	buf := make([]byte, artifactChunk)
	first := true
	for {
		n, err := io.ReadFull(rc, buf)
		if n > 0 || first {
			c := &rpcpb.ArtifactChunk{Data: buf[:n]}
			if first {
				c.Size, first = size, false
			}
			if serr := stream.Send(c); serr != nil {
				return serr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return status.Errorf(codes.Internal, "read artifact %s: %v", req.Artifact, err)
		}
	}
}

// helloTimeout is how long a TaskManager session may take to say hello.
func (jm *JobManager) helloTimeout() time.Duration { return jm.cfg.RPCHandshakeTimeout }

// recvHello reads the first message of a session within helloTimeout.
func (jm *JobManager) recvHello(stream rpcpb.JobManager_ConnectServer) (*rpcpb.TaskManagerMessage, error) {
	type result struct {
		m   *rpcpb.TaskManagerMessage
		err error
	}
	got := make(chan result, 1)
	go func() {
		m, err := stream.Recv()
		got <- result{m, err}
	}()
	t := time.NewTimer(jm.helloTimeout())
	defer t.Stop()
	select {
	case r := <-got:
		return r.m, r.err
	case <-t.C:
		// Returning ends the stream, which ends the Recv above.
		return nil, status.Errorf(codes.DeadlineExceeded, "no hello within %v", jm.helloTimeout())
	}
}

// Configuration keys of the REST API's authentication and limits.
const (
	KeyRESTTokenFile      = "rest.authentication.token-file"
	KeyRESTAuthentication = "rest.authentication.enabled"
	KeyRESTMaxUploads     = "rest.upload.max-concurrent"
	// The REST API's TLS, as Flink's security.ssl.rest.*; PEM files here,
	// as the internal ones.
	KeySSLRESTEnabled    = "security.ssl.rest.enabled"
	KeySSLRESTKeystore   = "security.ssl.rest.keystore"
	KeySSLRESTTruststore = "security.ssl.rest.truststore"
	KeySSLRESTMutual     = "security.ssl.rest.authentication-enabled"
)

// restSecurityFrom reads the REST API's token, whether it may go
// without authentication, and its upload limit.
func restSecurityFrom(c config.Config, cfg *Config) error {
	if path, _ := c.Get(KeyRESTTokenFile); strings.TrimSpace(path) != "" {
		tok, err := rest.ReadToken(strings.TrimSpace(path))
		if err != nil {
			return err
		}
		cfg.RESTToken, cfg.RESTTokenFile = tok, strings.TrimSpace(path)
	}
	enabled, err := c.Bool(KeyRESTAuthentication, true)
	if err != nil {
		return err
	}
	cfg.RESTUnauthenticated = !enabled
	if cfg.MaxUploadsPerClient, err = positiveInt(c, KeyRESTMaxUploads, rest.DefaultMaxUploadsPerClient, "a number of uploads"); err != nil {
		return err
	}
	return restTLSFrom(c, cfg)
}

// restTLSFrom reads the REST API's TLS: its certificate (keystore) and,
// for mutual TLS, the CAs of its clients' certificates (truststore).
func restTLSFrom(c config.Config, cfg *Config) error {
	enabled, err := c.Bool(KeySSLRESTEnabled, false)
	if err != nil || !enabled {
		return err
	}
	mutual, err := c.Bool(KeySSLRESTMutual, false)
	if err != nil {
		return err
	}
	ks, ts := strings.TrimSpace(get(c, KeySSLRESTKeystore, "")), strings.TrimSpace(get(c, KeySSLRESTTruststore, ""))
	if ks == "" {
		return errors.New(KeySSLRESTEnabled + " is true but " + KeySSLRESTKeystore + " is not set: give the REST API's certificate and private key (PEM, mode 0600)")
	}
	cert, err := pki.LoadKeystore(ks)
	if err != nil {
		return fmt.Errorf("%s: %w", KeySSLRESTKeystore, err)
	}
	var clientCAs *x509.CertPool
	if mutual {
		if ts == "" {
			return errors.New(KeySSLRESTMutual + " is true but " + KeySSLRESTTruststore + " is not set: give the CA certificates (PEM) that clients' certificates must chain to")
		}
		if clientCAs, err = pki.LoadTruststore(ts); err != nil {
			return fmt.Errorf("%s: %w", KeySSLRESTTruststore, err)
		}
	}
	cfg.RESTTLS, cfg.RESTMutualTLS = pki.RESTServerConfig(cert, clientCAs), mutual
	cfg.RESTKeystore, cfg.RESTTruststore = ks, ts
	return nil
}

// checkRESTExposure refuses a REST API open to the network without
// authentication, and says loudly when that is meant.
func (jm *JobManager) checkRESTExposure() error {
	addr := jm.restLn.Addr().String()
	if err := rest.CheckExposure(addr, jm.cfg.RESTToken, jm.cfg.RESTMutualTLS, false); err != nil {
		if !jm.cfg.RESTUnauthenticated {
			return fmt.Errorf("jobmanager: %w", err)
		}
		jm.log.Warn("SECURITY WARNING: " + KeyRESTAuthentication + " is false: the REST API at " + addr + " serves anyone who reaches it, and lets them upload programs every TaskManager runs")
	}
	return nil
}

// authorizedStream checks each message a stream receives.
type authorizedStream struct {
	grpc.ServerStream
	check func(m any) error
}

func (s *authorizedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.check(m)
}
