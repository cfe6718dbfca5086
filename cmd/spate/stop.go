package main

import (
	"context"
	"flag"
	"fmt"
	"time"
)

// stop stops a job with a savepoint: a final savepoint, the sinks
// commit, then the job is FINISHED. spate stop JOBID [--savepoint DIR].
func stop(args []string) error {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	var jm, dir string
	fs.StringVar(&jm, "jobmanager", "", "the JobManager's REST address host:port (default localhost:8081)")
	fs.StringVar(&jm, "m", "", "shorthand for --jobmanager")
	fs.StringVar(&dir, "savepoint", "", "directory of the final savepoint (default execution.checkpointing.savepoint-dir)")
	fs.StringVar(&dir, "p", "", "shorthand for --savepoint")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the savepoint and the job's end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("stop: name one job: spate stop JOBID [--savepoint DIR] (spate list shows them)")
	}
	dir, err := targetDir(dir)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	c, err := newClient(restAddress(jm, conf), conf)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	id := fs.Arg(0)
	fmt.Printf("Suspending job %s.\n", id)
	trigger, err := c.StopWithSavepoint(ctx, id, dir)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	path, err := c.WaitSavepoint(ctx, id, trigger, 100*time.Millisecond)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	fmt.Printf("Savepoint completed. Path: %s\n", path)
	return nil
}
