package blob

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
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
