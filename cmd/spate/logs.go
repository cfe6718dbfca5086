package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spate-dev/spate/client"
)

// logs prints a job's output lines (its print sinks, its workers' errors)
// as the cluster's TaskManagers kept them.
func logs(args []string) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	var jm string
	fs.StringVar(&jm, "jobmanager", "", "the JobManager's REST address host:port (default localhost:8081)")
	fs.StringVar(&jm, "m", "", "shorthand for --jobmanager")
	sessionID := fs.String("session", "", "the session cluster the job ran on (spate session list)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("logs: name one job: spate logs JOBID (spate list --all shows them)")
	}
	id := fs.Arg(0)
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	addr := restAddress(jm, conf)
	if *sessionID != "" {
		info, err := findSession(*sessionID)
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		addr = info.REST
	}
	c, err := client.New(addr)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Job(ctx, id); err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	tms, err := c.TaskManagers(ctx)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	prefix := "[job " + id[:min(8, len(id))] + " "
	for _, tm := range tms.TaskManagers {
		text, err := tmStdout(ctx, c.Address(), tm.ID)
		if err != nil {
			fmt.Fprintf(os.Stderr, "spate logs: taskmanager %s: %v\n", tm.ID, err)
			continue
		}
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, prefix) {
				fmt.Println(line)
			}
		}
	}
	return nil
}

// tmStdout fetches GET /v1/taskmanagers/{id}/stdout.
func tmStdout(ctx context.Context, base, id string) (string, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/taskmanagers/"+id+"/stdout", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
