package checkpoint

import (
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/config"
)

func TestConfigFrom(t *testing.T) {
	tests := []struct {
		name    string
		entries map[string]string
		want    Config
		wantErr string
	}{
		{name: "defaults: off", want: Config{Timeout: 10 * time.Minute, MaxConcurrent: 1, Retained: 1}},
		{name: "set", entries: map[string]string{KeyInterval: "200 ms", KeyMode: "at_least_once", KeyTimeout: "1 min", KeyMinPause: "50ms",
			KeyMaxConcurrent: "2", KeyTolerableFailures: "3", KeyNumRetained: "4", KeyAlignmentMaxSize: "64 kb"},
			want: Config{Interval: 200 * time.Millisecond, Mode: AtLeastOnce, Timeout: time.Minute, MinPause: 50 * time.Millisecond, MaxConcurrent: 2, TolerableFailures: 3, Retained: 4, MaxAlignedBytes: 64 << 10}},
		{name: "bad alignment size", entries: map[string]string{KeyAlignmentMaxSize: "lots"}, wantErr: KeyAlignmentMaxSize},
		{name: "bad mode", entries: map[string]string{KeyMode: "twice"}, wantErr: KeyMode},
		{name: "bad interval", entries: map[string]string{KeyInterval: "often"}, wantErr: KeyInterval},
		{name: "zero retained", entries: map[string]string{KeyNumRetained: "0"}, wantErr: KeyNumRetained},
		{name: "negative tolerable", entries: map[string]string{KeyTolerableFailures: "-1"}, wantErr: KeyTolerableFailures},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c config.Config
			for k, v := range tt.entries {
				c.Set(k, v)
			}
			got, err := ConfigFrom(c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ConfigFrom error = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ConfigFrom = %+v, want %+v", got, tt.want)
			}
		})
	}
}
