package blob

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/config"
)

func TestStore(t *testing.T) {
	s, err := Open(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("binary"))
	wantID := hex.EncodeToString(sum[:])
	tests := []struct {
		name    string
		body    string
		want    string
		wantErr error
		wantSub string
	}{
		{name: "ok", body: "binary"},
		{name: "announced hash", body: "binary", want: wantID},
		{name: "same again", body: "binary"},
		{name: "too large", body: "0123456789x", wantErr: ErrTooLarge},
		{name: "empty", body: "", wantSub: "empty upload"},
		{name: "corrupted", body: "binarY", want: wantID, wantSub: "corrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, n, err := s.Put(strings.NewReader(tt.body), tt.want)
			if tt.wantErr != nil || tt.wantSub != "" {
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantSub) {
					t.Fatalf("Put = %v, want error %v containing %q", err, tt.wantErr, tt.wantSub)
				}
				return
			}
			if err != nil || id != wantID || n != 6 {
				t.Fatalf("Put = %s, %d, %v; want %s, 6", id, n, err, wantID)
			}
			r, size, err := s.Open(id)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			b, _ := io.ReadAll(r)
			if string(b) != "binary" || size != 6 {
				t.Fatalf("read back %q (%d)", b, size)
			}
		})
	}
	if _, _, err := s.Open("../etc/passwd"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("Open(bad id) = %v, want ErrInvalidID", err)
	}
	if _, _, err := s.Open(strings.Repeat("a", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(unknown) = %v, want ErrNotFound", err)
	}
}

func TestSweep(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	put := func(body string) string {
		id, _, err := s.Put(strings.NewReader(body), "")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	old, kept, used, fresh := put("old"), put("kept"), put("used"), put("fresh")
	long := time.Now().Add(-time.Hour)
	for _, id := range []string{old, kept, used} {
		if err := os.Chtimes(filepath.Join(dir, id), long, long); err != nil {
			t.Fatal(err)
		}
	}
	// A use (a TaskManager's download, a client's HEAD) restarts the grace.
	if !s.Has(used) {
		t.Fatal("Has(used) = false")
	}
	removed, err := s.Sweep(time.Now().Add(-time.Minute), func(id string) bool { return id == kept })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{old}) {
		t.Errorf("Sweep removed %q, want only %q", removed, old)
	}
	for _, tc := range []struct {
		name, id string
		want     bool
	}{{"old", old, false}, {"kept", kept, true}, {"used", used, true}, {"fresh", fresh, true}} {
		if got := s.Has(tc.id); got != tc.want {
			t.Errorf("after Sweep, Has(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, _, err := s.Open(old); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a swept artifact: %v, want ErrNotFound", err)
	}
	// Uploaded again, it is back.
	if id := put("old"); id != old || !s.Has(old) {
		t.Errorf("re-upload of a swept artifact: id %s, present %v", id, s.Has(old))
	}
}

func TestOpenRemovesPartialUploads(t *testing.T) {
	dir := t.TempDir()
	partial := filepath.Join(dir, ".upload-123")
	if err := os.WriteFile(partial, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial upload left by a previous JobManager still there: %v", err)
	}
}

func TestCleanupInterval(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    time.Duration
		wantErr bool
	}{
		{name: "default", want: DefaultCleanupInterval},
		{name: "seconds as Flink's", value: "30", want: 30 * time.Second},
		{name: "unit", value: "250 ms", want: 250 * time.Millisecond},
		{name: "go duration", value: "1m30s", want: 90 * time.Second},
		{name: "zero", value: "0", wantErr: true},
		{name: "negative", value: "-5", wantErr: true},
		{name: "zero with unit", value: "0 s", wantErr: true},
		{name: "garbage", value: "soon", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c config.Config
			if tc.value != "" {
				c.Set(KeyCleanupInterval, tc.value)
			}
			got, err := CleanupInterval(c)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), KeyCleanupInterval) || !strings.Contains(err.Error(), tc.value) {
					t.Errorf("CleanupInterval(%q) = %v, %v; want an error naming the key and the value", tc.value, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("CleanupInterval(%q) = %v, %v; want %v", tc.value, got, err, tc.want)
			}
		})
	}
}
