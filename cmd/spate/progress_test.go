package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/client"
	nx "github.com/spate-dev/spate/nexmark"
	"github.com/spate-dev/spate/nexmark/queries"
)

func TestStatusLines(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef"
	running := jobStatus{State: "RUNNING", Duration: 12300 * time.Millisecond, In: 36900, Out: 12,
		InRate: 3000, OutRate: 2.6, Lag: 1200 * time.Millisecond, Checkpoints: 3, Restarts: 0}
	bare := jobStatus{State: "RUNNING", Duration: 2 * time.Second, In: 10, Out: 0,
		InRate: math.NaN(), OutRate: math.NaN(), Lag: -1, Checkpoints: -1, Restarts: -1}
	done := jobStatus{State: "FINISHED", Duration: 4 * time.Second, In: 12000, Out: 15,
		InRate: math.NaN(), OutRate: math.NaN(), Lag: -1, Checkpoints: -1, Restarts: 2}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"live running", statusLine(id, "demo", running),
			"● 01234567 demo  RUNNING  12.3s  in 3.0k/s  out 3/s  lag 1.2s  checkpoints 3  restarts 0"},
		{"live without optional figures", statusLine(id, "demo", bare),
			"● 01234567 demo  RUNNING  2.0s  in –/s  out –/s"},
		{"live finished", statusLine(id, "demo", done),
			"✔ 01234567 demo  FINISHED  4.0s  12,000 records in, 15 out  restarts 2"},
		{"plain running", plainLine(id, "demo", running),
			"Job " + id + " (demo): RUNNING for 12.3s, 36,900 records in (3.0k/s), 12 out (3/s), event-time lag 1.2s, 3 checkpoints, 0 restarts"},
		{"plain end", plainEndLine(id, "demo", done),
			"Job " + id + " (demo) FINISHED after 4.0s: 12,000 records in, 15 out (3.0k/s in on average), 2 restarts"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, tt.got, tt.want)
		}
	}
	for _, tt := range []struct {
		in   float64
		want string
	}{{0, "0/s"}, {999, "999/s"}, {1500, "1.5k/s"}, {2.5e6, "2.5M/s"}, {math.NaN(), "–/s"}} {
		if got := rateString(tt.in); got != tt.want {
			t.Errorf("rateString(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{{850 * time.Millisecond, "850ms"}, {245 * time.Second, "4m05s"}, {123 * time.Minute, "2h03m"}} {
		if got := shortDuration(tt.in); got != tt.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := cut("● abcdef", 5); got != "● ab…" {
		t.Errorf("cut = %q", got)
	}
}

func TestRateMeter(t *testing.T) {
	var m rateMeter
	t0 := time.UnixMilli(1_000_000)
	if r := m.rate(); !math.IsNaN(r) {
		t.Errorf("rate of nothing = %v", r)
	}
	m.add(t0, 0)
	m.add(t0.Add(500*time.Millisecond), 100)
	if r := m.rate(); !math.IsNaN(r) {
		t.Errorf("rate over half a second = %v, want NaN (too short)", r)
	}
	for i := 1; i <= 10; i++ {
		m.add(t0.Add(time.Duration(i)*time.Second), int64(i*1000))
	}
	m.add(t0.Add(10*time.Second), 99999) // same time: ignored
	if r := m.rate(); r != 1000 {
		t.Errorf("rate = %v, want 1000", r)
	}
	if first := m.samples[0].t; first.Before(t0.Add(10*time.Second - rateWindow)) {
		t.Errorf("samples kept from %v, beyond the window", first)
	}
}

// TestProgressWriterKeepsStatusBelow: on a live display, output lines go
// above the status lines, which are erased and drawn again around them;
// a line's start waits for its end.
func TestProgressWriterKeepsStatusBelow(t *testing.T) {
	var screen bytes.Buffer
	p := &progress{w: &screen, live: true, width: func() int { return 30 }}
	p.mu.jobs = []*followedJob{{id: "0123456789abcdef", name: "demo",
		st: jobStatus{State: "RUNNING", InRate: 5, OutRate: 1, Lag: -1, Checkpoints: -1, Restarts: -1}}}
	w := &progressWriter{p: p, w: &screen}
	p.show(false)
	io.WriteString(w, "hello\nwor")
	io.WriteString(w, "ld\n")
	status := "● 01234567 demo  RUNNING  in…\x1b[K\n"
	erase := "\r\x1b[1A\x1b[J"
	want := status + erase + "hello\n" + status + erase + "world\n" + status
	if got := screen.String(); got != want {
		t.Errorf("screen:\n got %q\nwant %q", got, want)
	}
}

// TestProgressModes: --progress auto is live on a terminal and plain on a
// pipe; a wrong mode or interval is an error; off and not following show
// nothing.
func TestProgressModes(t *testing.T) {
	tty, _ := openPTY(t)
	r, pipe, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer pipe.Close()
	t.Setenv("TERM", "xterm")
	for _, tt := range []struct {
		name     string
		flags    progressFlags
		w        *os.File
		follow   bool
		wantNil  bool
		wantLive bool
		wantErr  string
	}{
		{name: "auto on a terminal", flags: progressFlags{mode: "auto", interval: time.Second}, w: tty, follow: true, wantLive: true},
		{name: "auto on a pipe", flags: progressFlags{mode: "auto", interval: time.Second}, w: pipe, follow: true},
		{name: "plain on a terminal", flags: progressFlags{mode: "plain", interval: time.Second}, w: tty, follow: true},
		{name: "live on a pipe", flags: progressFlags{mode: "live", interval: time.Second}, w: pipe, follow: true, wantLive: true},
		{name: "off", flags: progressFlags{mode: "off", interval: time.Second}, w: tty, follow: true, wantNil: true},
		{name: "nothing to follow", flags: progressFlags{mode: "auto", interval: time.Second}, w: tty, wantNil: true},
		{name: "bad mode", flags: progressFlags{mode: "fancy", interval: time.Second}, w: tty, wantErr: `--progress "fancy"`},
		{name: "bad interval", flags: progressFlags{mode: "plain", interval: 0}, w: tty, follow: true, wantErr: "--progress-interval 0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.flags.start(tt.w, tt.follow)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if (p == nil) != tt.wantNil {
				t.Fatalf("progress = %v, want nil %v", p, tt.wantNil)
			}
			if p != nil && p.live != tt.wantLive {
				t.Errorf("live = %v, want %v", p.live, tt.wantLive)
			}
			// Output passes through a live display only where it is a terminal.
			if p != nil {
				if _, wrapped := p.output(tt.w).(*progressWriter); wrapped != (tt.wantLive && tt.w == tty) {
					t.Errorf("output wrapped %v", wrapped)
				}
			}
		})
	}
}

// TestRunProgress follows a job of `spate run` on a real cluster: with
// its output on a pipe it prints plain progress lines and the job's end;
// on a terminal it keeps one status line redrawn in place.
func TestRunProgress(t *testing.T) {
	c := startCluster(t, 2)
	bin := binaries(t)
	args := []string{"run", "--target", "remote", "--jobmanager", c.rest}
	job := []string{dashjob(t), "-rate", "4000", "-events", "10000"}

	t.Run("plain", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "spate"), append(append(args, "--progress-interval", "300ms"), job...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("spate run: %v\n%s%s", err, out, stderr.String())
		}
		id := regexpJobID.FindStringSubmatch(string(out))
		if id == nil {
			t.Fatalf("no job id in:\n%s", out)
		}
		text := stderr.String()
		running := regexp.MustCompile(`(?m)^Job ` + id[1] + ` \(dashboard demo\): RUNNING for [0-9.]+m?s, [0-9,]+ records in \([0-9.]+k?/s\), [0-9,]+ out`)
		end := regexp.MustCompile(`(?m)^Job ` + id[1] + ` \(dashboard demo\) FINISHED after [0-9.]+m?s: 10,000 records in, [0-9,]+ out`)
		if !running.MatchString(text) || !end.MatchString(text) {
			t.Errorf("progress lines missing from standard error:\n%s", text)
		}
		if strings.Contains(text, "\x1b[") {
			t.Errorf("terminal escapes on a pipe:\n%q", text)
		}
	})

	// spate list shows how long the jobs ran and their throughput.
	t.Run("list", func(t *testing.T) {
		out, err := spateCLI(t, "list", "--all", "-m", c.rest)
		if err != nil {
			t.Fatalf("spate list: %v\n%s", err, out)
		}
		header := regexp.MustCompile(`(?m)^JOB ID +NAME +STATE +STARTED +DURATION +RECORDS IN +RECORDS OUT +IN/S \(AVG\)$`)
		row := regexp.MustCompile(`(?m)^[0-9a-f]{32} +dashboard demo +FINISHED +[0-9-]+ [0-9:]+ +[0-9.]+m?s +10,000 +[0-9,]+ +[0-9.]+k?/s$`)
		if !header.MatchString(out) || !row.MatchString(out) {
			t.Errorf("spate list --all lacks the job's duration and throughput:\n%s", out)
		}
	})

	t.Run("live", func(t *testing.T) {
		tty, screen := openPTY(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "spate"), append(args, job...)...)
		cmd.Stdout, cmd.Stderr = tty, tty
		cmd.Env = append(os.Environ(), "TERM=xterm")
		var mu sync.Mutex
		var got bytes.Buffer
		read := make(chan struct{})
		go func() {
			defer close(read)
			b := make([]byte, 4096)
			for {
				n, err := screen.Read(b)
				mu.Lock()
				got.Write(b[:n])
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
		if err := cmd.Run(); err != nil {
			t.Fatalf("spate run: %v", err)
		}
		tty.Close()
		// The reader ends with the terminal's last writer.
		var text string
		waitFor(t, 10*time.Second, "the terminal's output", func() bool {
			mu.Lock()
			defer mu.Unlock()
			text = got.String()
			return strings.Contains(text, "FINISHED  ")
		})
		id := regexpJobID.FindStringSubmatch(text)
		if id == nil {
			t.Fatalf("no job id on the terminal:\n%q", text)
		}
		short := id[1][:8]
		// Restarts and checkpoints follow where the cluster reports them.
		running := regexp.MustCompile(`● ` + short + ` dashboard demo  RUNNING  [0-9.]+m?s  in [0-9.]+k?/s  out [0-9.]+k?/s[^\x1b]*\x1b\[K`)
		final := regexp.MustCompile(`✔ ` + short + ` dashboard demo  FINISHED  [0-9.]+m?s  10,000 records in, [0-9,]+ out[^\x1b]*\x1b\[K\r?\n$`)
		if !running.MatchString(text) {
			t.Errorf("no live status line with rates:\n%q", text)
		}
		if !strings.Contains(text, "\r\x1b[1A\x1b[J") {
			t.Errorf("the status line is never redrawn in place:\n%q", text)
		}
		if !final.MatchString(text) {
			t.Errorf("the terminal does not end with the job's final status line:\n%q", text)
		}
		// The program's own lines are above the status line, whole.
		if !regexp.MustCompile(`\x1b\[J(\r?\n)?Job has been submitted with JobID`).MatchString(text) && !strings.HasPrefix(text, "Job has been submitted") {
			t.Errorf("the program's line is not drawn above the status line:\n%q", text)
		}
	})
}

// TestNexmarkProgress: a run longer than nexmarkProgressAfter prints how
// many of its events are through, counted as the source reads them.
func TestNexmarkProgress(t *testing.T) {
	defer func(d time.Duration) { nexmarkProgressAfter = d }(nexmarkProgressAfter)
	nexmarkProgressAfter = 0
	var buf lockedBuffer
	show := nexmarkShow{w: &buf, every: 20 * time.Millisecond}
	cfg := nx.DefaultConfig()
	cfg.NumEvents = 200_000
	r, err := runNexmark("q1", generatedEvents(cfg), 2, show, &queries.Discard{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != 200_000 {
		t.Fatalf("events = %d", r.Events)
	}
	if !regexp.MustCompile(`(?m)^q1: [0-9]+% of 200,000 events after [0-9.]+m?s, [0-9.]+[kM]?/s events/s`).MatchString(buf.String()) {
		t.Errorf("no progress line:\n%s", buf.String())
	}
	// The count is the source's: all events, once the run is over.
	cfg.NumEvents = 50_000
	env := spate.NewEnv(spate.WithParallelism(2))
	p := nexmarkShow{off: true}.start("q0", cfg.NumEvents)
	queries.Queries["q0"](env, nexmarkEvents(env, cfg, p), &queries.Discard{})
	if err := env.Execute("counted"); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if n := p.events.Load(); n != 50_000 {
		t.Errorf("counted %d events, want 50,000", n)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunApplicationProgress follows the jobs an application's main
// submits in its cluster, which the client learns from the cluster's job
// list.
func TestRunApplicationProgress(t *testing.T) {
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "spate"), "run-application", "--progress", "plain", "--progress-interval", "300ms",
		dashjob(t), "-rate", "4000", "-events", "10000")
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spate run-application: %v\n%s%s", err, out, stderr.String())
	}
	id := regexpJobID.FindStringSubmatch(string(out))
	if id == nil {
		t.Fatalf("no job id in:\n%s", out)
	}
	running := regexp.MustCompile(`(?m)^Job ` + id[1] + ` \(dashboard demo\): RUNNING for [0-9.]+m?s, [0-9,]+ records in \([0-9.]+k?/s\)`)
	if !running.MatchString(stderr.String()) {
		t.Errorf("no progress line of the application's job:\n%s", stderr.String())
	}
}

// TestPerJobProgress follows a job on its own per-job cluster.
func TestPerJobProgress(t *testing.T) {
	tmp := t.TempDir()
	out, err := runPerJobIn(t, tmp, "--progress", "plain", "--progress-interval", "300ms",
		dashjob(t), "-rate", "4000", "-events", "10000")
	if err != nil {
		t.Fatalf("spate run --target process-per-job: %v\n%s", err, out)
	}
	id := regexpJobID.FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no job id in:\n%s", out)
	}
	running := regexp.MustCompile(`(?m)^Job ` + id[1] + ` \(dashboard demo\): RUNNING for [0-9.]+m?s, [0-9,]+ records in \([0-9.]+k?/s\)`)
	if !running.MatchString(out) {
		t.Errorf("no progress line of the per-job cluster's job:\n%s", out)
	}
	nothingLeftIn(t, tmp)
}

// TestProgressOptionalFigures reads the lag, checkpoints and restarts from
// routes in Flink's shapes (a fake JobManager: no cluster here makes
// checkpoints or restarts on demand), and asks no more a route answered
// 404.
// TestRunProgressWithToken follows a job on a JobManager whose REST API
// needs a token: the progress lines show its records and its end (the
// polls send the token of the command's configuration).
func TestRunProgressWithToken(t *testing.T) {
	path, _ := restToken(t)
	c := startClusterWith(t, []string{"-D", "rest.authentication.token-file=" + path}, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binaries(t), "spate"), "run", "--target", "remote", "--jobmanager", c.rest,
		"-D", "rest.authentication.token-file="+path, "--progress", "plain", "--progress-interval", "300ms",
		dashjob(t), "-rate", "4000", "-events", "6000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spate run: %v\n%s%s", err, out, stderr.String())
	}
	id := regexpJobID.FindStringSubmatch(string(out))
	if id == nil {
		t.Fatalf("no job id in:\n%s", out)
	}
	end := regexp.MustCompile(`(?m)^Job ` + id[1] + ` \(dashboard demo\) FINISHED after [0-9.]+m?s: 6,000 records in, [0-9,]+ out`)
	if !end.MatchString(stderr.String()) {
		t.Errorf("no progress line of the job's end on standard error:\n%s", stderr.String())
	}
}

func TestProgressOptionalFigures(t *testing.T) {
	const job = "0123456789abcdef0123456789abcdef"
	now := int64(1_800_000_000_000)
	var mu sync.Mutex
	asked := map[string]int{}
	serve := func(withFigures bool) *httptest.Server {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"jid": %q, "name": "demo", "state": "RUNNING", "duration": 5000, "now": %d,
				"vertices": [{"id": "src", "metrics": {"write-records": 100}}, {"id": "sink", "metrics": {"read-records": 90}}],
				"plan": {"edges": [{"source": "src", "target": "sink"}]}}`, job, now)
		})
		figure := func(pattern, body string) {
			mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				asked[r.URL.Path]++
				mu.Unlock()
				if !withFigures {
					http.NotFound(w, r)
					return
				}
				io.WriteString(w, body)
			})
		}
		figure("GET /v1/jobs/{id}/vertices/{vid}/subtasks/metrics", fmt.Sprintf(`[{"id": "currentInputWatermark", "min": %d, "max": %d}]`, now-1500, now-200))
		figure("GET /v1/jobs/{id}/checkpoints", `{"counts": {"total": 3, "completed": 2, "failed": 1}, "numRestarts": 1}`)
		figure("GET /v1/jobs/{id}/metrics", `[{"id": "numRestarts", "value": "2"}]`)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	p := &progress{http: &http.Client{Timeout: 5 * time.Second}, width: func() int { return 0 }}
	poll := func(srv *httptest.Server) *followedJob {
		c, err := client.New(strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		j := &followedJob{rest: strings.TrimPrefix(srv.URL, "http://"), id: job, c: c, st: jobStatus{Lag: -1, Checkpoints: -1, Restarts: -1}}
		for range 2 {
			if !p.pollJob(context.Background(), j) {
				t.Fatal("poll failed")
			}
		}
		return j
	}
	j := poll(serve(true))
	if j.st.Lag != 1500*time.Millisecond || j.st.Checkpoints != 2 || j.st.Restarts != 2 || j.st.In != 100 || j.st.Out != 90 {
		t.Errorf("figures %+v, want lag 1.5s (the sinks' smallest input watermark), 2 checkpoints, 2 restarts (the metric), 100 in, 90 out", j.st)
	}
	mu.Lock()
	clear(asked)
	mu.Unlock()
	j = poll(serve(false))
	if j.st.Lag != -1 || j.st.Checkpoints != -1 || j.st.Restarts != -1 || !j.noLag || !j.noCkpt || !j.noRestarts {
		t.Errorf("without the routes: %+v (noLag %v noCkpt %v noRestarts %v), want nothing shown", j.st, j.noLag, j.noCkpt, j.noRestarts)
	}
	mu.Lock()
	defer mu.Unlock()
	for path, n := range asked {
		if n != 1 {
			t.Errorf("%s asked %d times after its 404, want once", path, n)
		}
	}
}
