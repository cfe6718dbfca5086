package dashboard

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardAccessible runs axe-core, the accessibility rules engine
// (WCAG 2.x A and AA), on every page of the dashboard as fakeAPI's
// figures fill it, and fails on any violation. axe-core is not vendored:
// $SPATE_AXE_JS names its axe.min.js (.ci/run installs it with npm); the
// test is skipped without it.
func TestDashboardAccessible(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	path := os.Getenv("SPATE_AXE_JS")
	if path == "" {
		t.Skip("SPATE_AXE_JS is not set: npm install axe-core@4.14.1 and set it to node_modules/axe-core/axe.min.js")
	}
	axe, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("SPATE_AXE_JS: %v", err)
	}
	srv := fakeAPI(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1360, 900),
		chromedp.UserDataDir(t.TempDir()), chromedp.Env("TMPDIR="+shortTempDir(t)))
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	type violation struct {
		ID, Impact, Help string
		Nodes            []string
	}
	for _, page := range []struct{ hash, ready string }{
		{"#/overview", "#tile-running"},
		{"#/jobs", "tr[data-job]"},
		{"#/jobs/" + fakeJob + "/vertices/" + vSink, "#subtasks tr[data-subtask]"},
		{"#/jobs/" + fakeJob + "/exceptions", "#pane-h"},
		{"#/jobs/" + fakeJob + "/checkpoints", "#pane-h"},
		{"#/jobs/" + fakeJob + "/restarts", "#pane-h"},
		{"#/taskmanagers", "tr[data-taskmanager]"},
		{"#/taskmanagers/tm-1", "#tm-tiles [data-metric]"},
		{"#/jobmanager", "#jm-config-h"},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"+page.hash)); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf("document.querySelector(%q) !== null", page.ready),
			chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: waiting for %s: %v", page.hash, page.ready, err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](string(axe)+";true")); err != nil {
			t.Fatalf("load axe-core: %v", err)
		}
		vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]violation](`axe.run(document, {resultTypes: ['violations']}).then((r) =>
			r.violations.map((v) => ({ID: v.id, Impact: v.impact || '', Help: v.help, Nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))})))`,
			chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: run axe-core: %v", page.hash, err)
		}
		for _, v := range vs {
			t.Errorf("%s: %s (%s): %s at %s", page.hash, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, ", "))
		}
	}
}
