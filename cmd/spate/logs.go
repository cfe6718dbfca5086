package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
)

// logs prints a job's output lines (its print sinks, its workers' errors)
// as the cluster's TaskManagers wrote them. For a session on this host
// (--session, or the session whose REST address --jobmanager names) it
// reads the TaskManagers' output files in the session's log directory,
// which hold everything, also of TaskManagers released since. Otherwise it
// asks each registered TaskManager for the output it keeps in memory (its
// last 1 MiB), reading a TaskManager's output file instead where that
// memory rotated and the file is on this host. When some of the job's
// output cannot be found it says so and fails.
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
	logDir := ""
	if *sessionID != "" {
		info, err := findSession(*sessionID)
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		addr, logDir = info.REST, filepath.Join(info.Dir, "log")
		info.Credentials.applyTo(&conf)
	} else if info, ok := sessionAt(addr); ok {
		logDir = filepath.Join(info.Dir, "log")
	}
	c, err := newClient(addr, conf)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Job(ctx, id); err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	prefix := "[job " + id[:min(8, len(id))] + " "
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	var files []string
	if logDir != "" {
		files, _ = filepath.Glob(filepath.Join(logDir, "taskmanager-*.out"))
	}
	if len(files) > 0 {
		// Everything the session's TaskManagers printed, released ones too.
		slices.Sort(files)
		for _, f := range files {
			if _, err := copyJobLines(w, f, prefix); err != nil {
				return fmt.Errorf("logs: job %s: %w", id, err)
			}
		}
		return nil
	}
	tms, err := c.TaskManagers(ctx)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	var found int
	var gaps []string
	for _, tm := range tms.TaskManagers {
		text, err := tmStdout(ctx, c.Address(), tm.ID)
		if err != nil {
			gaps = append(gaps, fmt.Sprintf("taskmanager %s did not send its output (%v)", tm.ID, err))
			continue
		}
		if rotated, file := v1.RotatedOutput(text); rotated {
			if file != "" {
				n, err := copyJobLines(w, file, prefix)
				if err == nil {
					found += n
					continue
				}
			}
			where := "its standard output, which it does not write to a file"
			if file != "" {
				where = file + ", which is not readable here"
			}
			gaps = append(gaps, fmt.Sprintf("taskmanager %s keeps only its last 1 MiB of output in memory; the rest is in %s", tm.ID, where))
		}
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, prefix) {
				fmt.Fprintln(w, line)
				found++
			}
		}
	}
	switch {
	case len(gaps) > 0:
		return fmt.Errorf("logs: the output of job %s above may be incomplete: %s", id, strings.Join(gaps, "; "))
	case found == 0:
		return fmt.Errorf("logs: no output of job %s is kept by the cluster's %d TaskManagers: the job printed none, or the TaskManagers that ran it were released or rotated it out; for a session on this host, pass --session to read its TaskManagers' output files", id, len(tms.TaskManagers))
	}
	return nil
}

// sessionAt returns the session of this host whose REST API is at addr.
// It only reads the sessions' records: whether the session runs is for
// the REST calls to find out.
func sessionAt(addr string) (sessionInfo, bool) {
	root, err := sessionsDir()
	if err != nil {
		return sessionInfo{}, false
	}
	records, _ := filepath.Glob(filepath.Join(root, "*", "session.json"))
	for _, r := range records {
		var info sessionInfo
		if b, err := os.ReadFile(r); err == nil && json.Unmarshal(b, &info) == nil && info.REST == addr && info.Dir != "" {
			return info, true
		}
	}
	return sessionInfo{}, false
}

// copyJobLines copies the lines of file that begin with prefix to w and
// returns how many there were.
func copyJobLines(w io.Writer, file, prefix string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	n := 0
	for {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, prefix) {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			if _, werr := io.WriteString(w, line); werr != nil {
				return n, werr
			}
			n++
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read %s: %w", file, err)
		}
	}
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
