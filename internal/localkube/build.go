package localkube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// The versions the recipe in hack/kube builds. A test checks them against
// hack/kube/build/go.mod and hack/kube/etcd/go.mod.
const (
	// KubeVersion is the Kubernetes release of kube-apiserver and
	// kube-controller-manager, and the name of the cache directory.
	KubeVersion = "v1.37.2"
	// EtcdVersion is the release of go.etcd.io/etcd/server/v3.
	EtcdVersion = "v3.7.3"
)

// The binaries EnsureBinaries builds, by the name of the file in the bin
// directory, with the module directory under hack/kube and the package.
var recipe = []struct{ name, module, pkg string }{
	{"etcd", "etcd", "."},
	{"kube-apiserver", "build", "k8s.io/kubernetes/cmd/kube-apiserver"},
	{"kube-controller-manager", "build", "k8s.io/kubernetes/cmd/kube-controller-manager"},
}

// stampContent is what the stamp file of a complete build holds: a bin
// directory whose stamp differs (or is missing) is rebuilt.
func stampContent() string {
	return fmt.Sprintf("kubernetes %s etcd %s\n", KubeVersion, EtcdVersion)
}

// BuildOptions says where EnsureBinaries finds the recipe and puts the
// binaries. The zero value is the default.
type BuildOptions struct {
	// CacheDir is the directory of the versioned cache; default
	// $XDG_CACHE_HOME/spate/kube (os.UserCacheDir: ~/.cache/spate/kube).
	CacheDir string
	// SourceDir is the repository's hack/kube directory holding the nested
	// modules build/ and etcd/; default: found next to this source file or
	// above the working directory.
	SourceDir string
	// Log receives progress; default slog.Default().
	Log *slog.Logger
	// Output receives the go commands' output; default discarded (it is
	// part of the error when a build fails).
	Output io.Writer
}

// CacheBinDir is the directory where the binaries of KubeVersion are
// cached: <cache>/<KubeVersion>/bin.
func CacheBinDir(cacheDir string) (string, error) {
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("localkube: no cache directory for the Kubernetes binaries (set XDG_CACHE_HOME or HOME): %w", err)
		}
		cacheDir = filepath.Join(base, "spate", "kube")
	}
	return filepath.Join(cacheDir, KubeVersion, "bin"), nil
}

// Cached reports whether a complete build of KubeVersion is in the cache,
// and its bin directory.
func Cached(cacheDir string) (string, bool) {
	bin, err := CacheBinDir(cacheDir)
	if err != nil {
		return "", false
	}
	return bin, cachedIn(bin)
}

func cachedIn(bin string) bool {
	b, err := os.ReadFile(filepath.Join(bin, "..", "stamp"))
	if err != nil || string(b) != stampContent() {
		return false
	}
	for _, r := range recipe {
		if fi, err := os.Stat(filepath.Join(bin, r.name)); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// EnsureBinaries returns the directory holding etcd, kube-apiserver and
// kube-controller-manager of KubeVersion, building them with the recipe in
// hack/kube when the cache has no complete build. Concurrent callers, in
// this process or others, wait for one build (a lock file in the cache).
// The stamp file is written only after every binary built, so an
// interrupted build is never reused. A cold build takes 10 to 30 minutes
// on 2 cores; see the package doc for the measured figures.
func EnsureBinaries(ctx context.Context, o BuildOptions) (string, error) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	bin, err := CacheBinDir(o.CacheDir)
	if err != nil {
		return "", err
	}
	if cachedIn(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", fmt.Errorf("localkube: create the cache directory: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(bin, "..", "lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if cachedIn(bin) { // built by whoever held the lock
		return bin, nil
	}
	src := o.SourceDir
	if src == "" {
		if src, err = findRecipe(); err != nil {
			return "", err
		}
	}
	os.Remove(filepath.Join(bin, "..", "stamp"))
	start := time.Now()
	log.Info("localkube: building the Kubernetes binaries (cold: 10 to 30 minutes on 2 cores; cached afterwards)", "version", KubeVersion, "into", bin)
	for _, r := range recipe {
		t0 := time.Now()
		if err := goBuild(ctx, filepath.Join(src, r.module), r, bin, o.Output); err != nil {
			return "", err
		}
		log.Info("localkube: built", "binary", r.name, "took", time.Since(t0).Round(time.Second))
	}
	if err := os.WriteFile(filepath.Join(bin, "..", "stamp"), []byte(stampContent()), 0o644); err != nil {
		return "", fmt.Errorf("localkube: write the build stamp: %w", err)
	}
	log.Info("localkube: Kubernetes binaries built", "took", time.Since(start).Round(time.Second))
	return bin, nil
}

// goBuild builds one binary of the recipe into a temporary file in bin
// and renames it into place.
func goBuild(ctx context.Context, moduleDir string, r struct{ name, module, pkg string }, bin string, out io.Writer) error {
	tmp := filepath.Join(bin, "."+r.name+".building")
	ldflags := "-s -w"
	if r.module == "build" {
		// What Kubernetes' own build stamps, so that /version and the
		// clients' discovery see the release rather than v0.0.0.
		v := strings.TrimPrefix(KubeVersion, "v")
		parts := strings.SplitN(v, ".", 3)
		ldflags += fmt.Sprintf(" -X k8s.io/component-base/version.gitVersion=%s -X k8s.io/component-base/version.gitMajor=%s -X k8s.io/component-base/version.gitMinor=%s -X k8s.io/component-base/version.gitTreeState=clean",
			KubeVersion, parts[0], parts[1])
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags="+ldflags, "-o", tmp, r.pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	var buf tail
	w := io.Writer(&buf)
	if out != nil {
		w = io.MultiWriter(&buf, out)
	}
	cmd.Stdout, cmd.Stderr = w, w // one writer: exec copies from one pipe
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		if ctx.Err() != nil {
			return fmt.Errorf("localkube: build %s in %s: interrupted (%w); the Go build cache keeps the progress, run `go run ./hack/localkube -build` to finish it", r.name, moduleDir, ctx.Err())
		}
		return fmt.Errorf("localkube: build %s in %s: %w\n%s", r.name, moduleDir, err, buf.String())
	}
	if err := os.Rename(tmp, filepath.Join(bin, r.name)); err != nil {
		return fmt.Errorf("localkube: install %s: %w", r.name, err)
	}
	return nil
}

// findRecipe finds hack/kube: next to this source file (tests, go run) or
// above the working directory.
func findRecipe() (string, error) {
	var tried []string
	if _, file, _, ok := runtime.Caller(0); ok {
		d := filepath.Join(filepath.Dir(file), "..", "..", "hack", "kube")
		if isRecipe(d) {
			return filepath.Clean(d), nil
		}
		tried = append(tried, d)
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			k := filepath.Join(d, "hack", "kube")
			if isRecipe(k) {
				return k, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
		tried = append(tried, "above "+wd)
	}
	return "", fmt.Errorf("localkube: cannot find the build recipe hack/kube (tried %s): run from the Spate repository or set BuildOptions.SourceDir", strings.Join(tried, ", "))
}

func isRecipe(d string) bool {
	_, err1 := os.Stat(filepath.Join(d, "build", "go.mod"))
	_, err2 := os.Stat(filepath.Join(d, "etcd", "go.mod"))
	return err1 == nil && err2 == nil
}

// lockFile takes an exclusive flock on path, polling until ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localkube: open the build lock: %w", err)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("localkube: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("localkube: wait for another build of the Kubernetes binaries (lock %s): %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}

// tail keeps the last 8 KiB written to it: the part of a failed build's
// output worth showing.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }
