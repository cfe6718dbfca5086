package inpod

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPathsOffAndOnTheRunner(t *testing.T) {
	t.Setenv(EnvRoot, "")
	for in, want := range map[string]string{"/opt/x": "/opt/x", "local:///opt/app/job": "/opt/app/job", "rel/x": "rel/x"} {
		if got := LocalPath(in); got != want {
			t.Errorf("off the runner: LocalPath(%q) = %q, want %q", in, got, want)
		}
	}
	t.Setenv(EnvRoot, "/pods/p/root")
	for _, c := range []struct{ in, want string }{
		{"local:///opt/app/job", "/pods/p/root/opt/app/job"},
		{"file:///x", "file:///x"},
		{"relative", "relative"},
	} {
		if got := LocalPath(c.in); got != c.want {
			t.Errorf("on the runner: LocalPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := Path("/opt/spate/conf"); got != "/pods/p/root/opt/spate/conf" {
		t.Errorf("on the runner: Path = %q", got)
	}
	if got := Path("rel"); got != "rel" {
		t.Errorf("on the runner: Path(rel) = %q", got)
	}
}

func TestInClusterConfigReadsUnderTheRoot(t *testing.T) {
	root := t.TempDir()
	t.Setenv(EnvRoot, root)
	t.Setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "6443")
	if _, err := InClusterConfig(); err == nil {
		t.Fatal("no token file, yet a configuration")
	}
	os.MkdirAll(filepath.Join(root, filepath.Dir(TokenFile)), 0o755)
	os.WriteFile(filepath.Join(root, TokenFile), []byte("tok"), 0o600)
	cfg, err := InClusterConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.BearerTokenFile != filepath.Join(root, TokenFile) || cfg.TLSClientConfig.CAFile != filepath.Join(root, RootCAFile) {
		t.Errorf("config %+v: want the API server of KUBERNETES_SERVICE_HOST/PORT and the files under %s", cfg, root)
	}
}
