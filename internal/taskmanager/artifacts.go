package taskmanager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

// The cache holds each program binary a job of this TaskManager ran, in
// WorkDir/artifacts under its SHA-256, downloaded once. A binary no worker
// runs is deleted ArtifactGrace (blob.service.cleanup.interval) after its
// last worker exited, as Flink's blob cache does, so that a long-lived
// TaskManager holds only what it runs.

// artifactCache is the cache's state.
type artifactCache struct {
	fetchMu sync.Mutex // serialises downloads
	mu      struct {
		sync.Mutex
		// users counts the workers, started or starting, that run each
		// artifact.
		users map[string]int
	}
}

// useArtifact records that a worker is about to run artifact id, so the
// sweep leaves it alone, and returns the function to call once the worker
// is gone: the artifact's grace starts then.
func (tm *TaskManager) useArtifact(id string) (done func()) {
	c := &tm.artifacts
	c.mu.Lock()
	if c.mu.users == nil {
		c.mu.users = map[string]int{}
	}
	c.mu.users[id]++
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.mu.users[id]--; c.mu.users[id] <= 0 {
			delete(c.mu.users, id)
			now := time.Now()
			os.Chtimes(filepath.Join(tm.workDir, "artifacts", id), now, now)
		}
	}
}

// sweepArtifacts deletes, every half grace until ctx ends, the cached
// artifacts no worker has run for a grace.
func (tm *TaskManager) sweepArtifacts(ctx context.Context) {
	defer tm.wg.Done()
	grace := tm.cfg.ArtifactGrace
	tick := time.NewTicker(max(grace/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, id := range tm.sweepArtifactsOnce(now.Add(-grace)) {
				tm.log.Info("taskmanager: cached artifact deleted: no worker ran it for blob.service.cleanup.interval", "artifact", id, "interval", grace)
			}
		}
	}
}

// sweepArtifactsOnce deletes the cached artifacts no worker runs that were
// last used before cutoff.
func (tm *TaskManager) sweepArtifactsOnce(cutoff time.Time) []string {
	c := &tm.artifacts
	c.mu.Lock()
	defer c.mu.Unlock()
	dir := filepath.Join(tm.workDir, "artifacts")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		id := e.Name()
		if strings.HasPrefix(id, ".") || c.mu.users[id] > 0 {
			continue
		}
		if info, err := e.Info(); err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, id)); err != nil {
			tm.log.Warn("taskmanager: delete cached artifact", "artifact", id, "err", err)
			continue
		}
		removed = append(removed, id)
	}
	return removed
}

// artifact returns the path of the binary id, downloading it from the
// JobManager's blob store the first time and checking its hash.
func (tm *TaskManager) artifact(ctx context.Context, conn *grpc.ClientConn, id string) (string, error) {
	tm.artifacts.fetchMu.Lock()
	defer tm.artifacts.fetchMu.Unlock()
	if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("artifact id %q is not a SHA-256", id)
	}
	dir := filepath.Join(tm.workDir, "artifacts")
	path := filepath.Join(dir, id)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// Over the cluster's RPC (mutual TLS), not the REST API, which is
	// for clients.
	stream, err := rpcpb.NewClusterSecurityClient(conn).FetchArtifact(ctx, &rpcpb.FetchArtifactRequest{Artifact: id})
	if err != nil {
		return "", fmt.Errorf("fetch artifact %s: %w", shortID(id), err)
	}
	tmp, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	for {
		c, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err == nil {
			_, err = w.Write(c.Data)
		}
		if err != nil {
			tmp.Close()
			return "", fmt.Errorf("fetch artifact %s: %w", shortID(id), err)
		}
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != id {
		return "", fmt.Errorf("fetch artifact %s: content hashes to %s: download corrupted", shortID(id), shortID(got))
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}
