// Command localkube starts a local Kubernetes cluster for people and for
// CI: etcd, kube-apiserver, kube-controller-manager and the pod runner of
// package internal/localkube, which runs pods as local processes.
//
//	go run ./hack/localkube -dir DIR [-image-root DIR] [-entrypoint /opt/spate/bin/spate]
//
// It writes DIR/kubeconfig, prints the line
// `localkube ready: KUBECONFIG=DIR/kubeconfig`, and runs until SIGINT or
// SIGTERM, then stops everything it started and exits. With -build it
// only builds (or finds cached) the Kubernetes binaries and prints their
// directory: .ci/run does that before the tests.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spate-dev/spate/internal/localkube"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "localkube:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "", "the cluster's directory (kubeconfig, logs, pods); required unless -build")
	build := flag.Bool("build", false, "only build the Kubernetes binaries (or find them cached), print their directory and exit")
	imageRoot := flag.String("image-root", "", "the container image's file system: local:// paths and pod files resolve through it")
	entrypoint := flag.String("entrypoint", "", "the image's ENTRYPOINT (space-separated), for containers without a command")
	nodeCPU := flag.String("node-cpu", "", "the Node's allocatable CPU (default 64)")
	nodeMem := flag.String("node-memory", "", "the Node's allocatable memory (default 256Gi)")
	quiet := flag.Bool("quiet", false, "do not copy the pods' output to stderr")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *build {
		bin, err := localkube.EnsureBinaries(ctx, localkube.BuildOptions{Log: log, Output: os.Stderr})
		if err != nil {
			return err
		}
		fmt.Println(bin)
		return nil
	}
	if *dir == "" {
		return fmt.Errorf("-dir is required (the cluster's directory)")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	o := localkube.Options{
		Dir: abs, ImageRoot: *imageRoot, NodeCPU: *nodeCPU, NodeMemory: *nodeMem, Log: log,
		Build: localkube.BuildOptions{Log: log, Output: os.Stderr},
	}
	if *entrypoint != "" {
		o.Entrypoint = strings.Fields(*entrypoint)
	}
	if !*quiet {
		o.PodOutput = os.Stderr
	}
	c, err := localkube.Start(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("localkube ready: KUBECONFIG=%s\n", c.Kubeconfig)
	<-ctx.Done()
	log.Info("localkube: stopping")
	c.Close()
	log.Info("localkube: stopped")
	return nil
}
