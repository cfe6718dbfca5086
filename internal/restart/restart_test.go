package restart

import (
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/config"
)

func TestFromConfig(t *testing.T) {
	tests := []struct {
		name          string
		entries       map[string]string
		checkpointing bool
		want          string
		wantErr       string
	}{
		{name: "default without checkpointing", want: "none"},
		{name: "default with checkpointing", checkpointing: true,
			want: "exponential-delay(initial-backoff=1s, max-backoff=1m0s, backoff-multiplier=1.5, reset-backoff-threshold=1h0m0s, jitter-factor=0.1)"},
		{name: "none wins over checkpointing", entries: map[string]string{KeyType: "none"}, checkpointing: true, want: "none"},
		{name: "off", entries: map[string]string{KeyType: "off"}, want: "none"},
		{name: "fixed-delay defaults", entries: map[string]string{KeyType: "fixed-delay"}, want: "fixed-delay(attempts=1, delay=1s)"},
		{name: "fixeddelay alias", entries: map[string]string{KeyType: "FixedDelay", KeyFixedDelayAttempts: "3", KeyFixedDelayDelay: "10 s"}, want: "fixed-delay(attempts=3, delay=10s)"},
		{name: "failure-rate defaults", entries: map[string]string{KeyType: "failure-rate"}, want: "failure-rate(max-failures-per-interval=1, failure-rate-interval=1m0s, delay=1s)"},
		{name: "exponential set", entries: map[string]string{KeyType: "exponential-delay", KeyExpInitialBackoff: "100 ms", KeyExpMaxBackoff: "5 s", KeyExpMultiplier: "2", KeyExpJitter: "0"},
			want: "exponential-delay(initial-backoff=100ms, max-backoff=5s, backoff-multiplier=2, reset-backoff-threshold=1h0m0s, jitter-factor=0)"},
		{name: "unknown type", entries: map[string]string{KeyType: "sometimes"}, wantErr: "restart-strategy.type = \"sometimes\""},
		{name: "bad multiplier", entries: map[string]string{KeyType: "exponential-delay", KeyExpMultiplier: "0.5"}, wantErr: KeyExpMultiplier},
		{name: "bad jitter", entries: map[string]string{KeyType: "exponential-delay", KeyExpJitter: "x"}, wantErr: KeyExpJitter},
		{name: "negative attempts", entries: map[string]string{KeyType: "fixed-delay", KeyFixedDelayAttempts: "-1"}, wantErr: KeyFixedDelayAttempts},
		{name: "bad delay", entries: map[string]string{KeyType: "fixed-delay", KeyFixedDelayDelay: "soon"}, wantErr: KeyFixedDelayDelay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c config.Config
			for k, v := range tt.entries {
				c.Set(k, v)
			}
			s, err := FromConfig(c, tt.checkpointing, func() float64 { return 0.5 })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FromConfig error = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != tt.want {
				t.Errorf("FromConfig = %s, want %s", s, tt.want)
			}
		})
	}
}

func TestDecisions(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		at          time.Duration
		wantRestart bool
		wantDelay   time.Duration
	}
	tests := []struct {
		name  string
		s     Strategy
		steps []step
	}{
		{name: "none", s: NewNone(), steps: []step{{at: 0, wantRestart: false}}},
		{name: "fixed-delay 2", s: NewFixedDelay(2, time.Second), steps: []step{
			{0, true, time.Second}, {time.Hour, true, time.Second}, {2 * time.Hour, false, 0}}},
		{name: "failure-rate 1 per minute", s: NewFailureRate(1, time.Minute, 0), steps: []step{
			{0, true, 0}, {2 * time.Minute, true, 0}, {2*time.Minute + 59*time.Second, false, 0}}},
		{name: "exponential no jitter", s: NewExponential(Exponential{Initial: time.Second, Max: 3 * time.Second, Multiplier: 2, ResetThreshold: time.Hour, Attempts: 100}, nil), steps: []step{
			{0, true, time.Second}, {time.Second, true, 2 * time.Second}, {2 * time.Second, true, 3 * time.Second},
			{3 * time.Second, true, 3 * time.Second}, {2 * time.Hour, true, time.Second}}},
		{name: "exponential jitter", s: NewExponential(Exponential{Initial: time.Second, Max: time.Minute, Multiplier: 1.5, ResetThreshold: time.Hour, Jitter: 0.1, Attempts: 100}, func() float64 { return 0 }), steps: []step{
			{0, true, 900 * time.Millisecond}, {time.Second, true, 1350 * time.Millisecond}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, st := range tt.steps {
				d := tt.s.Failed(at(st.at))
				if d.Restart != st.wantRestart || (d.Restart && d.Delay != st.wantDelay) {
					t.Fatalf("failure %d at %v: %+v, want restart=%v delay=%v", i, st.at, d, st.wantRestart, st.wantDelay)
				}
				if !d.Restart && d.Reason == "" {
					t.Fatalf("failure %d: no restart and no reason", i)
				}
			}
		})
	}
}
