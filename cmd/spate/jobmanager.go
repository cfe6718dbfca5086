package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spate-dev/spate/internal/jobmanager"
)

// jobmanagerCmd runs a JobManager until interrupted.
func jobmanagerCmd(args []string) error {
	fs := flag.NewFlagSet("jobmanager", flag.ContinueOnError)
	var cf confFlags
	cf.register(fs)
	host := fs.String("host", "", "address to bind (jobmanager.rpc.address, default localhost)")
	rpcPort := fs.Int("rpc-port", -1, "RPC port (jobmanager.rpc.port, default 6123; 0 picks a free one)")
	restPort := fs.Int("rest-port", -1, "REST port (rest.port, default 8081; 0 picks a free one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("jobmanager: unexpected argument %q", fs.Arg(0))
	}
	conf, err := cf.load()
	if err != nil {
		return fmt.Errorf("jobmanager: %w", err)
	}
	if *host != "" {
		conf.Set(jobmanager.KeyRPCAddress, *host)
	}
	if *rpcPort >= 0 {
		conf.Set(jobmanager.KeyRPCPort, strconv.Itoa(*rpcPort))
	}
	if *restPort >= 0 {
		conf.Set(jobmanager.KeyRESTPort, strconv.Itoa(*restPort))
	}
	cfg, err := jobmanager.ConfigFrom(conf)
	if err != nil {
		return fmt.Errorf("jobmanager: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	jm, err := jobmanager.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("JobManager RPC at %s, REST at http://%s\n", jm.RPCAddr(), jm.RESTAddr())
	return jm.Run(ctx)
}
