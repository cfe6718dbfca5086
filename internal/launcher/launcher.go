// Package launcher is the channel between a program and the spate CLI that
// started it (spate run). The CLI serves it on a unix socket in a private
// directory and names the socket in the program's environment (Env). The
// program's client role (package spate) tells it every job it submits,
// and on a per-job target asks it for a dedicated cluster before each
// job: the CLI deploys, follows and removes every cluster, so it stays
// their only owner whatever the program does, and it knows whether the
// program submitted anything at all.
//
// Lifecycle, as the CLI drives it:
//
//	Listen ──Serve(ctx, handler)──▶ program runs: DeployCluster*,
//	  Submitted*, ReleaseCluster* ──program exits──▶ Close (socket and
//	  directory removed)
//
// The protocol is JSON over HTTP on the socket:
//
//	POST /clusters         ClusterRequest -> Cluster
//	DELETE /clusters/{id}  the program will not submit to cluster id
//	POST /jobs             Submission
package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Env is the environment variable that holds the socket's path in a
// program the CLI started.
const Env = "SPATE_LAUNCHER"

// maxSocketPath is the longest path a unix socket may have on Linux
// (sun_path less its terminating NUL).
const maxSocketPath = 107

// ClusterRequest asks for a cluster dedicated to one job.
type ClusterRequest struct {
	// JobName and JobOrdinal say which job of the program the cluster is
	// for (JobOrdinal as in v1.JobSubmitRequest).
	JobName    string `json:"jobName"`
	JobOrdinal int    `json:"jobOrdinal"`
}

// Cluster is a cluster the CLI deployed for a job.
type Cluster struct {
	// ID names the cluster in ReleaseCluster and Submission.
	ID string `json:"id"`
	// REST is the cluster's REST address, host:port.
	REST string `json:"rest"`
}

// Submission tells the CLI that the program submitted a job.
type Submission struct {
	JobID      string `json:"jobId"`
	JobName    string `json:"jobName"`
	JobOrdinal int    `json:"jobOrdinal"`
	// REST is the address of the JobManager the job went to.
	REST string `json:"rest"`
	// Cluster is the id of the cluster deployed for the job, if any.
	Cluster string `json:"cluster,omitempty"`
}

// Handler is what the CLI does for its program. Its methods may be called
// concurrently.
type Handler interface {
	// DeployCluster starts a cluster for one job and returns once its
	// REST API answers.
	DeployCluster(ctx context.Context, req ClusterRequest) (Cluster, error)
	// ReleaseCluster removes a cluster the program will not submit to.
	ReleaseCluster(ctx context.Context, id string) error
	// Submitted records a job the program submitted.
	Submitted(s Submission)
}

// Server serves a Handler on a unix socket.
type Server struct {
	dir       string
	ln        net.Listener
	closeOnce sync.Once
}

// Listen opens the socket in a new private directory under the system's
// temporary directory, or under /tmp if the path would be too long for a
// socket there.
func Listen() (*Server, error) {
	base := os.TempDir()
	if len(filepath.Join(base, "spate-run-0123456789", "launcher.sock")) > maxSocketPath {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "spate-run-")
	if err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	path := filepath.Join(dir, "launcher.sock")
	if len(path) > maxSocketPath {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("launcher: socket path %s is longer than a unix socket allows (%d bytes): set TMPDIR to a shorter directory", path, maxSocketPath)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("launcher: %w", err)
	}
	return &Server{dir: dir, ln: ln}, nil
}

// Path is the socket's path, the value of Env for the program.
func (s *Server) Path() string { return s.ln.Addr().String() }

// Serve answers the program's requests with h until ctx ends or Close is
// called. A request in progress when ctx ends sees its context cancelled.
func (s *Server) Serve(ctx context.Context, h Handler) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /clusters", func(w http.ResponseWriter, r *http.Request) {
		var req ClusterRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("decode cluster request: %w", err))
			return
		}
		c, err := h.DeployCluster(r.Context(), req)
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, err)
			return
		}
		writeJSON(w, c)
	})
	mux.HandleFunc("DELETE /clusters/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := h.ReleaseCluster(r.Context(), r.PathValue("id")); err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /jobs", func(w http.ResponseWriter, r *http.Request) {
		var sub Submission
		if err := json.NewDecoder(r.Body).Decode(&sub); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("decode submission: %w", err))
			return
		}
		h.Submitted(sub)
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux, BaseContext: func(net.Listener) context.Context { return ctx }}
	defer srv.Close()
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("launcher: serve %s: %w", s.Path(), err)
	}
	return nil
}

// Close stops serving (Serve returns, cutting off requests in progress)
// and removes the socket and its directory.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.ln.Close()
		os.RemoveAll(s.dir)
	})
	return nil
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// Client is the program's side of the channel.
type Client struct {
	path string
	http *http.Client
}

// Dial returns a client of the CLI listening on the socket at path; it
// connects on each request.
func Dial(path string) *Client {
	var d net.Dialer
	return &Client{path: path, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

// FromEnvironment returns a client of the CLI that started this process,
// or nil if none did.
func FromEnvironment() *Client {
	path := os.Getenv(Env)
	if path == "" {
		return nil
	}
	return Dial(path)
}

// DeployCluster asks the CLI for a cluster dedicated to one job and
// returns once it runs.
func (c *Client) DeployCluster(ctx context.Context, req ClusterRequest) (Cluster, error) {
	var cl Cluster
	if err := c.do(ctx, http.MethodPost, "/clusters", req, &cl); err != nil {
		return Cluster{}, fmt.Errorf("ask the spate CLI for a cluster for job %q: %w", req.JobName, err)
	}
	return cl, nil
}

// ReleaseCluster tells the CLI that the program will not submit to the
// cluster id, which it then removes.
func (c *Client) ReleaseCluster(ctx context.Context, id string) error {
	if err := c.do(ctx, http.MethodDelete, "/clusters/"+id, nil, nil); err != nil {
		return fmt.Errorf("release cluster %s: %w", id, err)
	}
	return nil
}

// Submitted tells the CLI that the program submitted a job.
func (c *Client) Submitted(ctx context.Context, s Submission) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.do(ctx, http.MethodPost, "/jobs", s, nil); err != nil {
		return fmt.Errorf("tell the spate CLI about job %s: %w", s.JobID, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://launcher"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("the CLI at %s (%s) does not answer: %w", c.path, Env, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return errors.New(e.Error)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("decode the CLI's answer: %w", err)
		}
	}
	return nil
}
