package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	if n, err := c.Int(ParallelismDefault, 0); n != 5 || err != nil {
		t.Errorf("parallelism.default = %d, %v; want 5 (SPATE_PROPERTIES overrides the file)", n, err)
	}
	if n, err := c.Int(MaxParallelism, 0); n != 256 || err != nil {
		t.Errorf("pipeline.max-parallelism = %d, %v; want 256", n, err)
	}
	if b, err := c.Bool(EncodeExchanges, false); !b || err != nil {
		t.Errorf("execution.exchange.encode = %v, %v; want true", b, err)
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

func TestParseDurationAndBytes(t *testing.T) {
	durations := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "10000", want: 10 * time.Second},
		{in: "10 s", want: 10 * time.Second},
		{in: "5 min", want: 5 * time.Minute},
		{in: "100ms", want: 100 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: "1.5 s", want: 1500 * time.Millisecond},
		{in: "-5", wantErr: true},
		{in: "soon", wantErr: true},
		{in: "5 fortnights", wantErr: true},
	}
	for _, tt := range durations {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	sizes := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "1024", want: 1024},
		{in: "512 mb", want: 512 << 20},
		{in: "1g", want: 1 << 30},
		{in: "64KiB", want: 64 << 10},
		{in: "2t", want: 2 << 40},
		{in: "3 mebibytes", want: 3 << 20},
		{in: "lots", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "99999999999g", wantErr: true},
	}
	for _, tt := range sizes {
		got, err := ParseBytes(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseBytes(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
