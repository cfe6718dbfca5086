package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// These tests run the dashboard's modules in a real headless Chromium
// (Debian's chromium package) to check the job graph's layout and
// colours; cmd/spate's TestDashboardInBrowser checks the whole dashboard
// against a real cluster.

func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SPATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium to drive: install it (apt-get install -y chromium) or set SPATE_CHROMIUM to its path")
	return ""
}

// evalModule loads graph.js in a page of srv and returns what expr (a
// function of the module m) returns.
func evalModule[T any](t *testing.T, expr string) T {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a browser")
	}
	mux := http.NewServeMux()
	mux.Handle("/web/", Handler())
	mux.HandleFunc("/blank", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!doctype html><title>test</title><body></body>"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.Env("TMPDIR="+shortTempDir(t)))
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T]("import('/web/graph.js').then((m) => ("+expr+")(m))", chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	return v
}

// TestGraphLayout: sources left, sinks right; a vertex sits one layer
// right of its furthest input; vertices of one layer do not overlap.
func TestGraphLayout(t *testing.T) {
	type pos struct{ X, Y float64 }
	got := evalModule[map[string]pos](t, `(m) => {
		const vs = ['src', 'a', 'b', 'join', 'sink', 'side'].map((id) => ({ id }));
		const es = [['src', 'a'], ['src', 'b'], ['a', 'join'], ['b', 'join'], ['join', 'sink'], ['src', 'sink'], ['a', 'side']]
			.map(([source, target]) => ({ source, target }));
		const { nodes } = m.layout(vs, es);
		return Object.fromEntries([...nodes].map(([id, p]) => [id, { X: p.x, Y: p.y }]));
	}`)
	layer := func(id string) float64 { return got[id].X }
	for _, tc := range [][2]string{{"src", "a"}, {"a", "join"}, {"join", "sink"}} {
		if layer(tc[0]) >= layer(tc[1]) {
			t.Errorf("%s (x %v) is not left of %s (x %v)", tc[0], layer(tc[0]), tc[1], layer(tc[1]))
		}
	}
	if layer("a") != layer("b") || got["a"].Y == got["b"].Y {
		t.Errorf("a %v and b %v: want one layer, apart", got["a"], got["b"])
	}
	if layer("sink") <= layer("join") {
		t.Errorf("sink %v is not right of join %v: a vertex goes right of its furthest input", got["sink"], got["join"])
	}
	if len(got) != 6 {
		t.Errorf("%d vertices placed, want 6: %v", len(got), got)
	}
}

// TestGraphColours: as Flink 1.13+, idle is blue, busy is red (darker
// when busier), backpressured is grey to black, unknown is white.
func TestGraphColours(t *testing.T) {
	type c struct{ Fill, Kind string }
	got := evalModule[map[string]c](t, `(m) => {
		const r = {};
		for (const [k, busy, bp] of [['idle', 0, 0], ['busy', 0.5, 0], ['busier', 0.95, 0.01], ['bp', 0.05, 0.6], ['fullbp', 0, 1], ['unknown', undefined, undefined]]) {
			const x = m.colour(busy, bp);
			r[k] = { Fill: x.fill, Kind: x.kind };
		}
		return r;
	}`)
	want := map[string]c{
		"idle":    {"hsl(210, 75%, 88%)", "idle"},
		"busy":    {"hsl(3, 78%, 63%)", "busy"},
		"busier":  {"hsl(3, 78%, 42%)", "busy"},
		"bp":      {"hsl(0, 0%, 38%)", "backpressured"},
		"fullbp":  {"hsl(0, 0%, 10%)", "backpressured"},
		"unknown": {"#ffffff", "unknown"},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %+v, want %+v", k, got[k], w)
		}
	}
}

// shortTempDir is a temporary directory, removed with the test, whose path
// is short enough for a Unix socket's in it.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
