package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spate-dev/spate/internal/taskmanager"
)

// taskmanagerCmd runs a TaskManager until interrupted.
func taskmanagerCmd(args []string) error {
	inPod()
	fs := flag.NewFlagSet("taskmanager", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	jmAddr := fs.String("jobmanager", "", "the JobManager's RPC address host:port (default jobmanager.rpc.address:jobmanager.rpc.port, localhost:6123)")
	slots := fs.Int("slots", 0, "task slots to offer (taskmanager.numberOfTaskSlots, default 1)")
	exitOnLoss := fs.Bool("exit-on-jobmanager-loss", false, "exit when the JobManager is lost instead of registering again")
	logFormat := logFormatFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("taskmanager: unexpected argument %q", fs.Arg(0))
	}
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("taskmanager: %w", err)
	}
	if _, ok := conf.Get("taskmanager.host"); !ok && podHost() != "" {
		// In a pod: its IP, which the other TaskManagers dial.
		conf.Set("taskmanager.host", podHost())
	}
	addr := *jmAddr
	if addr == "" {
		host, _ := conf.Get("jobmanager.rpc.address")
		if host == "" {
			host = "localhost"
		}
		port, _ := conf.Get("jobmanager.rpc.port")
		if port == "" {
			port = "6123"
		}
		addr = net.JoinHostPort(host, port)
	}
	cfg, err := taskmanager.ConfigFrom(conf, addr)
	if err != nil {
		return fmt.Errorf("taskmanager: %w", err)
	}
	if *slots > 0 {
		cfg.Slots = *slots
	}
	cfg.ExitOnJobManagerLoss = *exitOnLoss
	if cfg.Logger, err = daemonLogger("taskmanager", *logFormat); err != nil {
		return err
	}
	if cfg.TLS, err = internalTLS(conf, cfg.Logger, "taskmanager"); err != nil {
		return err
	}
	if cfg.WorkDir == "" {
		dir, cleanup, err := taskManagerDir(cfg.Logger)
		if err != nil {
			return err
		}
		defer cleanup()
		cfg.WorkDir = dir
	} else {
		pruneStale(cfg.Logger, "")
	}
	tm, err := taskmanager.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return tm.Run(ctx)
}
