package main

import (
	"context"
	"flag"
	"fmt"
	"time"
)

// cancel cancels a job.
func cancel(args []string) error {
	fs := flag.NewFlagSet("cancel", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	var jm string
	fs.StringVar(&jm, "jobmanager", "", "the JobManager's REST address host:port (default localhost:8081)")
	fs.StringVar(&jm, "m", "", "shorthand for --jobmanager")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("cancel: name one job: spate cancel JOBID (spate list shows them)")
	}
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	c, err := newClient(restAddress(jm, conf), conf)
	if err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	id := fs.Arg(0)
	if err := c.CancelJob(ctx, id); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	fmt.Printf("Cancelled job %s.\n", id)
	return nil
}
