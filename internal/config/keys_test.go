package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKeyCheck(t *testing.T) {
	port := Key{Name: "rest.port", Kind: KindInt, Min: 0, Max: 65535}
	positive := Key{Name: "p", Kind: KindInt, Min: 1, Max: maxInt}
	mode := Key{Name: "execution.runtime-mode", Kind: KindEnum, Values: []string{"STREAMING", "BATCH", "AUTOMATIC"}}
	interval := Key{Name: "heartbeat.interval", Kind: KindDuration, NonZero: true}
	anyDuration := Key{Name: "pipeline.auto-watermark-interval", Kind: KindDuration}
	size := Key{Name: "blob.max-size", Kind: KindMemory, NonZero: true}
	limit := Key{Name: "taskmanager.worker.memory-limit", Kind: KindMemory}
	flag := Key{Name: "execution.exchange.encode", Kind: KindBool}
	text := Key{Name: "rest.address", Kind: KindString}
	tests := []struct {
		name      string
		key       Key
		value     string
		wantError string // empty: valid
	}{
		{"int in range", port, "8081", ""},
		{"int at min", port, "0", ""},
		{"int with spaces", port, " 80 ", ""},
		{"int above max", port, "65536", "want an integer from 0 to 65535"},
		{"int not a number", port, "http", "want an integer from 0 to 65535"},
		{"positive zero", positive, "0", "want a positive integer"},
		{"positive negative", positive, "-3", "want a positive integer"},
		{"positive float", positive, "2.5", "want a positive integer"},
		{"enum any case", mode, "batch", ""},
		{"enum unknown", mode, "fast", "want one of STREAMING, BATCH, AUTOMATIC"},
		{"duration unit", interval, "10 s", ""},
		{"duration millis", interval, "500", ""},
		{"duration go form", interval, "1m30s", ""},
		{"duration word", interval, "soon", "want a duration above zero"},
		{"duration zero refused", interval, "0", "want a duration above zero"},
		{"duration zero allowed", anyDuration, "0 ms", ""},
		{"duration negative", anyDuration, "-1 s", "want a duration: milliseconds"},
		{"memory m", size, "512m", ""},
		{"memory g", size, "1g", ""},
		{"memory spaced unit", size, "64 kb", ""},
		{"memory bytes", size, "1048576", ""},
		{"memory word", size, "big", "want a memory size above zero"},
		{"memory zero refused", size, "0", "want a memory size above zero"},
		{"memory zero allowed", limit, "0", ""},
		{"memory fraction", limit, "1.5g", "want a memory size"},
		{"bool true", flag, "true", ""},
		{"bool case", flag, "FALSE", ""},
		{"bool yes", flag, "yes", "want true or false"},
		{"bool one", flag, "1", "want true or false"},
		{"string anything", text, "::1", ""},
		{"empty is unset", port, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.key.Check(tt.value)
			if tt.wantError == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", tt.value, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%q) = nil, want an error", tt.value)
			}
			for _, want := range []string{tt.key.Name, `"` + tt.value + `"`, tt.wantError} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check(%q) = %q, want it to name %s", tt.value, err, want)
				}
			}
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Key != tt.key.Name || ve.Value != tt.value {
				t.Errorf("Check(%q) = %#v, want a *ValueError", tt.value, err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	var c Config
	c.Set(ParallelismDefault, "abc")
	c.Set(MaxParallelism, "0")
	c.Set("heartbeat.timeout", "soon")
	c.Set("app.threshold", "not checked") // a job's own key
	c.Set(TaskManagerEnvPrefix+"PASSWORD", "s3cret")
	c.Set("rest.port", "8081")
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted malformed values")
	}
	for _, want := range []string{
		`configuration parallelism.default = "abc": want an integer from 1 to 32768`,
		`configuration pipeline.max-parallelism = "0": want an integer from 1 to 32768`,
		`configuration heartbeat.timeout = "soon": want a duration above zero`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %q, want it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "app.threshold") || strings.Contains(err.Error(), "rest.port") {
		t.Errorf("Validate = %q, complains about a valid or free-form entry", err)
	}
	for _, tt := range []struct {
		interval, timeout string
		wantErr           bool
	}{
		{"60 s", "", true},    // above the default timeout, 50 s
		{"", "5 s", true},     // below the default interval, 10 s
		{"2 s", "2000", true}, // equal
		{"2 s", "3 s", false},
		{"", "", false},
	} {
		var c Config
		c.Set("heartbeat.interval", tt.interval)
		c.Set("heartbeat.timeout", tt.timeout)
		err := c.Validate()
		if (err != nil) != tt.wantErr || err != nil && !strings.Contains(err.Error(), "heartbeat.timeout") {
			t.Errorf("heartbeat.interval %q, heartbeat.timeout %q: Validate = %v, want error %v", tt.interval, tt.timeout, err, tt.wantErr)
		}
	}
	var binary Config
	binary.Set("app.secret", "\xfc\x00")
	if err := binary.Validate(); err == nil || !strings.Contains(err.Error(), `"app.secret": not valid UTF-8`) {
		t.Errorf("Validate of a value that is not text = %v", err)
	}
	var ok Config
	ok.Set(ParallelismDefault, "4")
	ok.Set("app.threshold", "whatever")
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate of valid entries = %v", err)
	}
}

// TestGettersRefuseMalformed: no getter replaces a malformed value by its
// default.
func TestGettersRefuseMalformed(t *testing.T) {
	var c Config
	c.Set(ParallelismDefault, "abc")
	c.Set(MaxParallelism, "0")
	c.Set(EncodeExchanges, "yes")
	c.Set("heartbeat.timeout", "soon")
	c.Set("blob.max-size", "big")
	c.Set("app.count", "x")
	if n, err := c.Int(ParallelismDefault, 7); err == nil || !strings.Contains(err.Error(), ParallelismDefault) {
		t.Errorf("Int(parallelism.default=abc) = %d, %v; want an error naming the key", n, err)
	}
	if n, err := c.Int(MaxParallelism, 128); err == nil || !strings.Contains(err.Error(), "from 1 to 32768") {
		t.Errorf("Int(pipeline.max-parallelism=0) = %d, %v; want a range error", n, err)
	}
	if n, err := c.Int("app.count", 1); err == nil || !strings.Contains(err.Error(), "app.count") {
		t.Errorf("Int(app.count=x) = %d, %v; want an error naming the key", n, err)
	}
	if b, err := c.Bool(EncodeExchanges, false); err == nil || !strings.Contains(err.Error(), "true or false") {
		t.Errorf("Bool(yes) = %v, %v; want an error", b, err)
	}
	if d, err := c.Duration("heartbeat.timeout", time.Second); err == nil || !strings.Contains(err.Error(), `"soon"`) {
		t.Errorf("Duration(soon) = %v, %v; want an error", d, err)
	}
	// A bare number is seconds for a key whose Flink form is seconds.
	c.Set("jobstore.expiration-time", "90")
	if d, err := c.Duration("jobstore.expiration-time", time.Hour); d != 90*time.Second || err != nil {
		t.Errorf("Duration(jobstore.expiration-time=90) = %v, %v; want 90s", d, err)
	}
	c.Set("heartbeat.interval", "90")
	if d, err := c.Duration("heartbeat.interval", time.Hour); d != 90*time.Millisecond || err != nil {
		t.Errorf("Duration(heartbeat.interval=90) = %v, %v; want 90ms", d, err)
	}
	if n, err := c.Bytes("blob.max-size", 1); err == nil || !strings.Contains(err.Error(), "blob.max-size") {
		t.Errorf("Bytes(big) = %v, %v; want an error", n, err)
	}
	// Unset and empty take the default.
	c.Set("rest.port", "")
	if n, err := c.Int("rest.port", 8081); n != 8081 || err != nil {
		t.Errorf("Int(empty) = %d, %v; want the default", n, err)
	}
	if n, err := c.Int("jobmanager.rpc.port", 6123); n != 6123 || err != nil {
		t.Errorf("Int(unset) = %d, %v; want the default", n, err)
	}
	if got := c.String("rest.address", "localhost"); got != "localhost" {
		t.Errorf("String(unset) = %q", got)
	}
}

func TestKnownAndSuggest(t *testing.T) {
	for _, k := range []string{ParallelismDefault, "taskmanager.numberOfTaskSlots", "heartbeat.timeout", TaskManagerEnvPrefix + "DB_PASSWORD", "jobstore.max-capacity"} {
		if !Known(k) {
			t.Errorf("Known(%q) = false", k)
		}
	}
	for _, k := range []string{"app.greeting", TaskManagerEnvPrefix, "paralelism.default"} {
		if Known(k) {
			t.Errorf("Known(%q) = true", k)
		}
	}
	unknown := []struct {
		name           string
		wantUnknown    bool
		wantSuggestion string
	}{
		{"app.region", false, ""},
		{"myjob.threshold", false, ""},
		{ParallelismDefault, false, ""},
		{TaskManagerEnvPrefix + "TOKEN", false, ""},
		{"paralelism.default", true, ParallelismDefault},
		{"taskmanager.slots", true, ""},
		{"state.backend.type", true, ""},
		{"kubernetes.hadoop.conf.config-map.name", true, ""},
	}
	for _, tt := range unknown {
		s, u := Unknown(tt.name)
		if u != tt.wantUnknown || s != tt.wantSuggestion {
			t.Errorf("Unknown(%q) = %q, %v; want %q, %v", tt.name, s, u, tt.wantSuggestion, tt.wantUnknown)
		}
	}
	tests := []struct{ in, want string }{
		{"paralelism.default", ParallelismDefault},
		{"taskmanager.numberoftaskslots", "taskmanager.numberOfTaskSlots"},
		{"heartbeat.timout", "heartbeat.timeout"},
		{"pipeline.max-paralelism", MaxParallelism},
		{"app.greeting", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		got, ok := Suggest(tt.in)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("Suggest(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

// TestRegistry: every key has a doc line, and its default is of its own
// form.
func TestRegistry(t *testing.T) {
	for _, k := range Keys() {
		if k.Doc == "" {
			t.Errorf("key %s has no doc", k.Name)
		}
		if err := k.Check(k.Default); err != nil {
			t.Errorf("default of %s: %v", k.Name, err)
		}
		if k.Kind == KindInt && k.Min > k.Max {
			t.Errorf("key %s: range %d..%d", k.Name, k.Min, k.Max)
		}
	}
}
