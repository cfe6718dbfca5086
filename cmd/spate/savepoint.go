package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/savepoint"
)

// savepointCmd triggers a savepoint of a running job and prints its path
// once written: spate savepoint JOBID [DIR].
func savepointCmd(args []string) error {
	fs := flag.NewFlagSet("savepoint", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	var jm string
	fs.StringVar(&jm, "jobmanager", "", "the JobManager's REST address host:port (default localhost:8081)")
	fs.StringVar(&jm, "m", "", "shorthand for --jobmanager")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the savepoint")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fmt.Errorf("savepoint: spate savepoint JOBID [DIR] (DIR defaults to %s)", savepoint.Key)
	}
	dir, err := targetDir(fs.Arg(1))
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	c, err := newClient(restAddress(jm, conf), conf)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	ctx, stop := context.WithTimeout(context.Background(), *timeout)
	defer stop()
	id := fs.Arg(0)
	fmt.Printf("Triggering savepoint for job %s.\n", id)
	trigger, err := c.TriggerSavepoint(ctx, id, dir)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	fmt.Println("Waiting for response...")
	path, err := c.WaitSavepoint(ctx, id, trigger, 100*time.Millisecond)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	fmt.Printf("Savepoint completed. Path: %s\n", path)
	fmt.Printf("You can resume your program from this savepoint with the run command (spate run -s %s ...).\n", path)
	return nil
}

// targetDir makes a savepoint directory given on the command line
// absolute: the JobManager resolves paths in its own working directory.
func targetDir(dir string) (string, error) {
	if dir == "" || strings.Contains(dir, "://") {
		return dir, nil
	}
	return filepath.Abs(dir)
}

// savepointFlags are the flags of the commands that start jobs from a
// savepoint or retained checkpoint (Flink's -s and
// --allowNonRestoredState).
type savepointFlags struct {
	path  string
	allow bool
}

func (s *savepointFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.path, "from-savepoint", "", "start the program's jobs from this savepoint, or retained checkpoint (<state.checkpoints.dir>/<job>/chk-<n>): "+savepoint.KeyPath)
	fs.StringVar(&s.path, "s", "", "shorthand for --from-savepoint")
	fs.BoolVar(&s.allow, "allow-non-restored-state", false, "start even if the savepoint holds state of operators the job no longer has: "+savepoint.KeyAllowNonRestored)
}

// apply sets the flags' configuration keys in conf.
func (s *savepointFlags) apply(conf *config.Config) error {
	if s.path != "" {
		p, err := targetDir(s.path)
		if err != nil {
			return fmt.Errorf("--from-savepoint: %w", err)
		}
		conf.Set(savepoint.KeyPath, p)
	}
	if s.allow {
		conf.Set(savepoint.KeyAllowNonRestored, strconv.FormatBool(s.allow))
	}
	return nil
}
