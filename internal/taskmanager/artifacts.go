package taskmanager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// artifact returns the path of the binary id, downloading it from the
// JobManager's blob store the first time and checking its hash.
func (tm *TaskManager) artifact(ctx context.Context, restAddr, id string) (string, error) {
	tm.artifactMu.Lock()
	defer tm.artifactMu.Unlock()
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+restAddr+"/v1/artifacts/"+id, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch artifact %s: %w", shortID(id), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return "", fmt.Errorf("fetch artifact %s: %s: %s", shortID(id), resp.Status, strings.TrimSpace(string(b)))
	}
	tmp, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), resp.Body); err != nil {
		tmp.Close()
		return "", fmt.Errorf("fetch artifact %s: %w", shortID(id), err)
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
