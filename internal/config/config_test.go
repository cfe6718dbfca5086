package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("# Spate\nparallelism.default: 3\npipeline.max-parallelism: \"256\"\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ConfDirEnv, dir)
	t.Setenv(PropertiesEnv, "parallelism.default=5, execution.exchange.encode=true")
	c, err := FromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Int(ParallelismDefault); n != 5 {
		t.Errorf("parallelism.default = %d, want 5 (SPATE_PROPERTIES overrides the file)", n)
	}
	if n, _ := c.Int(MaxParallelism); n != 256 {
		t.Errorf("pipeline.max-parallelism = %d, want 256", n)
	}
	if !c.Bool(EncodeExchanges) {
		t.Error("execution.exchange.encode not read")
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ConfDirEnv, dir)
	if _, err := FromEnvironment(); err == nil || !strings.Contains(err.Error(), ConfDirEnv) {
		t.Errorf("missing file: %v, want an error naming %s", err, ConfDirEnv)
	}
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("parallelism.default 3\n"), 0o644)
	if _, err := FromEnvironment(); err == nil || !strings.Contains(err.Error(), "config.yaml:1") {
		t.Errorf("malformed line: %v, want file:line", err)
	}
	t.Setenv(ConfDirEnv, "")
	t.Setenv(PropertiesEnv, "novalue")
	if _, err := FromEnvironment(); err == nil || !strings.Contains(err.Error(), "key=value") {
		t.Errorf("malformed property: %v", err)
	}
}
