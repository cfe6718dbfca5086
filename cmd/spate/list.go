package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/client"
)

// list prints the cluster's jobs.
func list(args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	var jm string
	fs.StringVar(&jm, "jobmanager", "", "the JobManager's REST address host:port (default localhost:8081)")
	fs.StringVar(&jm, "m", "", "shorthand for --jobmanager")
	all := fs.Bool("all", false, "also list jobs that ended")
	fs.BoolVar(all, "a", false, "shorthand for --all")
	output := fs.String("output", "text", "output format: text or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("list: --output %q: want text or json", *output)
	}
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	c, err := newClient(restAddress(jm, conf), conf)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ov, err := c.JobsOverview(ctx)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	jobs := []v1.JobOverview{}
	for _, j := range ov.Jobs {
		if *all || !v1.TerminalJobStatus(j.State) {
			jobs = append(jobs, j)
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v1.JobsOverview{Jobs: jobs})
	}
	if len(jobs) == 0 {
		fmt.Println("No jobs.")
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "JOB ID\tNAME\tSTATE\tSTARTED\tDURATION\tRECORDS IN\tRECORDS OUT\tIN/S (AVG)")
	details := jobDetails(ctx, c, jobs)
	for i, j := range jobs {
		dur := time.Duration(j.Duration) * time.Millisecond
		in, out, avg := "–", "–", "–"
		// The records read by the job's sources and received by its sinks.
		if d := details[i]; d != nil {
			nin, nout := jobRecords(*d)
			in, out = countString(nin), countString(nout)
			if dur > 0 {
				avg = rateString(float64(nin) / dur.Seconds())
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.JID, j.Name, j.State,
			time.UnixMilli(j.StartTime).Format("2006-01-02 15:04:05"), shortDuration(dur), in, out, avg)
	}
	return w.Flush()
}

// jobDetails reads the details of jobs, a few at a time; a job whose
// details could not be read has nil.
func jobDetails(ctx context.Context, c *client.Client, jobs []v1.JobOverview) []*v1.JobDetails {
	out := make([]*v1.JobDetails, len(jobs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if d, err := c.Job(ctx, j.JID); err == nil {
				out[i] = &d
			}
		}()
	}
	wg.Wait()
	return out
}
