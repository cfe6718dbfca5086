package role

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/launcher"
)

// submit sends the job to a JobManager with this program's binary, then
// follows it to its end unless detached.
func submit(ctx context.Context, p *Job) error {
	c, id, err := SubmitOnly(ctx, p)
	if err != nil {
		return err
	}
	if b, _ := strconv.ParseBool(os.Getenv(DetachedEnv)); b {
		return nil
	}
	return Follow(ctx, c, id, p)
}

// SubmitOnly uploads the binary and submits the job: to the JobManager at
// JobManagerEnv, or on the per-job target to a cluster the launching CLI
// deploys for it. It tells the CLI, if one started the program, what it
// submitted.
func SubmitOnly(ctx context.Context, p *Job) (_ *client.Client, _ string, err error) {
	detached, _ := strconv.ParseBool(os.Getenv(DetachedEnv))
	if err := checkRemoteCollect(p, detached); err != nil {
		return nil, "", err
	}
	// The job's own environment variables and configuration reach its
	// workers only: the TaskManager adds them to those processes alone.
	env, err := p.WorkerEnv()
	if err != nil {
		return nil, "", fmt.Errorf("job %q: %w", p.Name, err)
	}
	if _, err := p.Credits(); err != nil {
		return nil, "", fmt.Errorf("job %q: %w", p.Name, err)
	}
	cli := launcher.FromEnvironment()
	addr, cluster := os.Getenv(JobManagerEnv), ""
	switch {
	case os.Getenv(TargetEnv) == targetPerJob:
		if cli == nil {
			return nil, "", fmt.Errorf("job %q: %s=%s needs the spate CLI that deploys the job's cluster (%s): run the program with spate run --target process-per-job", p.Name, TargetEnv, targetPerJob, launcher.Env)
		}
		cl, err := cli.DeployCluster(ctx, launcher.ClusterRequest{JobName: p.Name, JobOrdinal: p.Ordinal})
		if err != nil {
			return nil, "", fmt.Errorf("job %q: %w", p.Name, err)
		}
		addr, cluster = cl.REST, cl.ID
		defer func() {
			if err != nil {
				// Nothing will run on it: the CLI removes it now.
				if rerr := cli.ReleaseCluster(context.WithoutCancel(ctx), cluster); rerr != nil {
					fmt.Fprintf(os.Stderr, "spate: job %q: %v\n", p.Name, rerr)
				}
			}
		}()
	case addr == "":
		return nil, "", fmt.Errorf("job %q: %s=remote needs %s=host:port, the JobManager's REST address", p.Name, TargetEnv, JobManagerEnv)
	}
	auth, err := client.TokenFromEnvironment()
	if err != nil {
		return nil, "", fmt.Errorf("job %q: %w", p.Name, err)
	}
	tlsOpt, err := client.TLSFromEnvironment()
	if err != nil {
		return nil, "", fmt.Errorf("job %q: %w", p.Name, err)
	}
	c, err := client.New(addr, auth, tlsOpt)
	if err != nil {
		return nil, "", fmt.Errorf("job %q: %w", p.Name, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("job %q: find this program's binary to upload: %w", p.Name, err)
	}
	up, err := c.EnsureArtifact(ctx, exe)
	if err != nil {
		return nil, "", fmt.Errorf("job %q: upload %s: %w", p.Name, exe, err)
	}
	graph, err := p.Graph.Marshal()
	if err != nil {
		return nil, "", fmt.Errorf("job %q: %w", p.Name, err)
	}
	env[config.PropertiesEnv] = p.WorkerProperties()
	id, err := c.SubmitJob(ctx, v1.JobSubmitRequest{
		JobGraph: graph, Artifact: up.ID, Args: os.Args[1:], Env: env, Program: filepath.Base(exe), JobOrdinal: p.Ordinal,
	})
	if err != nil {
		return nil, "", fmt.Errorf("job %q: submit: %w", p.Name, err)
	}
	fmt.Printf("Job has been submitted with JobID %s\n", id)
	if cli != nil {
		// The job runs whatever the CLI hears; it only counts and labels.
		if err := cli.Submitted(ctx, launcher.Submission{JobID: id, JobName: p.Name, JobOrdinal: p.Ordinal, REST: addr, Cluster: cluster}); err != nil {
			fmt.Fprintf(os.Stderr, "spate: job %q (%s): %v\n", p.Name, id, err)
		}
	}
	return c, id, nil
}

// follow waits for a submitted job's end, printing its status changes, and
// returns its failure.
func follow(ctx context.Context, c *client.Client, id, name string) error {
	d, err := c.WatchJob(ctx, id, 100*time.Millisecond, func(prev, cur v1.JobDetails) {
		if cur.NumRestarts > prev.NumRestarts {
			printRestart(ctx, c, id, name, cur.NumRestarts)
		}
		if cur.State != prev.State {
			fmt.Printf("Job %s (%s) is %s\n", id, name, cur.State)
		}
	})
	if err != nil {
		return fmt.Errorf("job %q (%s): %w", name, id, err)
	}
	// Read what the result needs, then say so: a per-job cluster waits
	// for it before it goes.
	defer c.AcknowledgeResult(ctx, id)
	switch d.State {
	case v1.JobFinished:
		return nil
	case v1.JobFailed:
		cause := "see GET /v1/jobs/" + id + "/exceptions"
		if ex, err := c.JobExceptions(ctx, id); err == nil && ex.RootException != "" {
			cause = ex.RootException
		}
		return fmt.Errorf("job %q (%s) failed: %s", name, id, cause)
	default:
		return fmt.Errorf("job %q (%s) ended %s", name, id, d.State)
	}
}

// printRestart tells that job id restarted (the restarts-th time), and why.
func printRestart(ctx context.Context, c *client.Client, id, name string, restarts int) {
	cause := "see GET /v1/jobs/" + id + "/exceptions"
	if ex, err := c.JobExceptions(ctx, id); err == nil && ex.RootException != "" {
		cause = ex.RootException
	}
	fmt.Printf("Job %s (%s) restarted (restart %d) after: %s\n", id, name, restarts, cause)
}
