package localkube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The versions the code names are those the nested modules build.
func TestRecipeVersions(t *testing.T) {
	src, err := findRecipe()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{filepath.Join(src, "build", "go.mod"), "k8s.io/kubernetes " + KubeVersion},
		{filepath.Join(src, "build", "go.mod"), "k8s.io/apiserver => k8s.io/apiserver v0" + strings.TrimPrefix(KubeVersion, "v1")},
		{filepath.Join(src, "etcd", "go.mod"), "go.etcd.io/etcd/server/v3 " + EtcdVersion},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), c.want) {
			t.Errorf("%s does not require %q: the constants and the recipe disagree", c.file, c.want)
		}
	}
}

// A bin directory counts as cached only with every binary and the stamp of
// this version; EnsureBinaries then returns at once, without building.
func TestCacheNeedsTheStamp(t *testing.T) {
	cache := t.TempDir()
	bin, err := CacheBinDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	if bin != filepath.Join(cache, KubeVersion, "bin") {
		t.Fatalf("CacheBinDir = %s", bin)
	}
	os.MkdirAll(bin, 0o755)
	for _, r := range recipe {
		os.WriteFile(filepath.Join(bin, r.name), []byte("#!/bin/sh\n"), 0o755)
	}
	if _, ok := Cached(cache); ok {
		t.Fatal("cached without a stamp: a half build would be reused")
	}
	os.WriteFile(filepath.Join(bin, "..", "stamp"), []byte("kubernetes v0.0.0 etcd v0.0.0\n"), 0o644)
	if _, ok := Cached(cache); ok {
		t.Fatal("cached with another version's stamp")
	}
	os.WriteFile(filepath.Join(bin, "..", "stamp"), []byte(stampContent()), 0o644)
	if _, ok := Cached(cache); !ok {
		t.Fatal("not cached with binaries and stamp")
	}
	// SourceDir points nowhere: EnsureBinaries must not try to build.
	got, err := EnsureBinaries(context.Background(), BuildOptions{CacheDir: cache, SourceDir: "/nonexistent"})
	if err != nil || got != bin {
		t.Fatalf("EnsureBinaries on a complete cache = %s, %v; want %s", got, err, bin)
	}
	os.Remove(filepath.Join(bin, "kube-apiserver"))
	if _, ok := Cached(cache); ok {
		t.Fatal("cached with a binary missing")
	}
}

// A build that fails leaves no stamp and no binary: the next call builds
// again instead of reusing half a build.
func TestFailedBuildLeavesNoStamp(t *testing.T) {
	src := t.TempDir()
	for _, m := range []struct{ dir, main string }{
		{"etcd", "package main\nfunc main() {}\n"},
		{"build", "package main\nfunc main() { not go }\n"},
	} {
		os.MkdirAll(filepath.Join(src, m.dir), 0o755)
		os.WriteFile(filepath.Join(src, m.dir, "go.mod"), []byte("module example.com/"+m.dir+"\n\ngo 1.26.0\n"), 0o644)
		os.WriteFile(filepath.Join(src, m.dir, "main.go"), []byte(m.main), 0o644)
	}
	cache := t.TempDir()
	saved := recipe
	recipe = []struct{ name, module, pkg string }{{"etcd", "etcd", "."}, {"kube-apiserver", "build", "."}}
	defer func() { recipe = saved }()
	_, err := EnsureBinaries(context.Background(), BuildOptions{CacheDir: cache, SourceDir: src})
	if err == nil || !strings.Contains(err.Error(), "build kube-apiserver") {
		t.Fatalf("EnsureBinaries with a broken recipe: %v, want an error naming kube-apiserver", err)
	}
	bin, _ := CacheBinDir(cache)
	if _, err := os.Stat(filepath.Join(bin, "..", "stamp")); !os.IsNotExist(err) {
		t.Errorf("a stamp after a failed build (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(bin, "kube-apiserver")); !os.IsNotExist(err) {
		t.Errorf("a kube-apiserver binary after its build failed (%v)", err)
	}
	if _, ok := Cached(cache); ok {
		t.Error("a failed build counts as cached")
	}
}

// A second build waits for the lock of the first, until its context ends.
func TestBuildLockIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := lockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, path); err == nil || !strings.Contains(err.Error(), "wait for another build") {
		t.Fatalf("second lock while the first is held: %v, want a wait that ends with the context", err)
	}
	unlock()
	unlock2, err := lockFile(context.Background(), path)
	if err != nil {
		t.Fatalf("lock after the first was released: %v", err)
	}
	unlock2()
}
