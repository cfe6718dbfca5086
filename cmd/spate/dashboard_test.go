package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	v1 "github.com/spate-dev/spate/api/v1"
)

// The dashboard tests drive a real headless Chromium (Debian's chromium
// package; .ci/run installs it) through the DevTools protocol against a
// real cluster of child processes running a job.

// chromium finds the browser: $SPATE_CHROMIUM, else chromium or
// google-chrome on the PATH. The test is skipped, saying how to install
// it, when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SPATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium to drive: install it (apt-get install -y chromium) or set SPATE_CHROMIUM to its path")
	return ""
}

// artifactDir is where a test's screenshots go: $SPATE_TEST_ARTIFACTS/NAME
// when set (CI keeps it), else a directory removed with the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if root := os.Getenv("SPATE_TEST_ARTIFACTS"); root != "" {
		dir = filepath.Join(root, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// browser is one headless Chromium tab and what its console said.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	mu   sync.Mutex
	errs []string
}

// newBrowser starts Chromium with a fresh profile, headless and with no
// network of its own (no background requests, no QUIC, no component
// updates), and collects every console error, uncaught exception and
// error entry of the browser log.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		// Its shared memory files and the like go with the test's files,
		// on a short path (its sockets' paths are limited to 108 bytes).
		chromedp.Env("TMPDIR=" + shortTempDir(t)),
		chromedp.WindowSize(1360, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute)
	b := &browser{t: t, ctx: ctx, dir: artifactDir(t)}
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
	})
	// Starts the browser, so that the console is there to subscribe to.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errs = append(b.errs, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// consoleErrors is what the console showed as errors so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// waitJS polls a JavaScript expression until it is truthy (30 s at most)
// and decodes its value into T.
func waitJS[T any](b *browser, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		b.t.Fatalf("waiting for %s: %v\nconsole errors: %q", what, err, b.consoleErrors())
	}
	return v
}

// screenshot saves the whole page as NAME.png among the test's
// artifacts, and the viewport at also if not empty (README.md's image).
func (b *browser) screenshot(name, also string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot of %s: %s", name, path)
	if also == "" {
		return
	}
	if png, err = chromedp.Run(b.ctx, chromedp.CaptureScreenshot()); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(also, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("viewport of %s: %s", name, also)
}

// graphNode is a vertex as the job graph draws it.
type graphNode struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Text string `json:"text"`
	// Kind is how the node is coloured: idle, busy, backpressured, or
	// unknown without busy and backpressured figures.
	Kind string `json:"kind"`
}

// TestDashboardInBrowser loads the dashboard of a cluster running a job
// into headless Chromium and checks what a person would look at: the job
// graph with every vertex and its live rates, a vertex's subtasks, the
// other tabs, the overview, the TaskManagers with their output, the
// JobManager's configuration, and no error in the browser's console. It
// saves a screenshot of each page (SPATE_README_SCREENSHOT=PATH also
// writes the job page's, as README.md shows it).
func TestDashboardInBrowser(t *testing.T) {
	b := newBrowser(t)
	c := startCluster(t, 2, 2)
	// A slow sink makes its vertex busy and the clicks' backpressured.
	dashjob(t)
	out, id, err := c.run(t, []string{"--detached"}, "dashjob", "-rate", "3000", "-slow", "2ms")
	if err != nil || id == "" {
		t.Fatalf("submit dashjob: %v\n%s", err, out)
	}
	d := c.waitStatus(t, id, v1.JobRunning)
	if len(d.Vertices) < 4 {
		t.Fatalf("dashjob has %d vertices, want 4 or more: %+v", len(d.Vertices), d.Vertices)
	}
	var routes struct {
		Routes []string `json:"routes"`
	}
	if err := c.get(t, "/web/routes.json", &routes); err != nil {
		t.Fatal(err)
	}
	metrics := slices.Contains(routes.Routes, "GET /v1/jobs/{id}/vertices/{vid}/subtasks/metrics")
	base := "http://" + c.rest + "/"

	// The job page: one node per vertex, each with its name, parallelism
	// and live rates: the sources emit, every later vertex receives.
	b.do("open the job page", chromedp.Navigate(base+"#/jobs/"+id))
	nodes := waitJS[[]graphNode](b, "the job graph with live rates on every vertex", fmt.Sprintf(`(() => {
		const ns = [...document.querySelectorAll('svg.graph g.node')].map((g) => ({
			id: g.dataset.vertex, name: g.querySelector('title').textContent,
			text: [...g.querySelectorAll('text')].map((t) => t.textContent).join(' | '),
			kind: g.querySelector('rect').dataset.kind || '' }));
		if (ns.length !== %d) return false;
		const rate = (s, l) => { const m = s.match(new RegExp(l + ' ([0-9.,]+)([kM]?)/s')); return m ? Number(m[1].replace(/,/g, '')) : 0; };
		const fed = new Set(%s);
		return ns.every((n) => fed.has(n.id) ? rate(n.text, 'In') > 0 : rate(n.text, 'Out') > 0) ? ns : false;
	})()`, len(d.Vertices), jsStringArray(fedVertices(d))))
	byID := map[string]graphNode{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	for _, v := range d.Vertices {
		n, ok := byID[v.ID]
		switch {
		case !ok:
			t.Errorf("vertex %s (%s) is not in the job graph", v.ID, v.Name)
		case n.Name != v.Name:
			t.Errorf("vertex %s is named %q in the graph, want %q", v.ID, n.Name, v.Name)
		case !strings.Contains(n.Text, fmt.Sprintf("Parallelism %d", v.Parallelism)):
			t.Errorf("vertex %s shows %q, want its parallelism %d", v.Name, n.Text, v.Parallelism)
		case strings.Contains(n.Text, "Busy –") != (n.Kind == "unknown"):
			t.Errorf("vertex %s is coloured %q while it shows %q", v.Name, n.Kind, n.Text)
		}
	}
	// With the metric routes, the graph is coloured as Flink colours a
	// slow sink's job: the sink busy (red), the source backpressured.
	if metrics {
		vid := func(name string) string {
			for _, v := range d.Vertices {
				if v.Name == name {
					return v.ID
				}
			}
			t.Fatalf("no vertex %q in %+v", name, d.Vertices)
			return ""
		}
		waitJS[bool](b, "the slow sink busy and the clicks backpressured", fmt.Sprintf(`(() => {
			const kind = (id) => { const r = document.querySelector('g.node[data-vertex="' + id + '"] rect'); return r && r.dataset.kind; };
			return kind(%q) === 'busy' && kind(%q) === 'backpressured';
		})()`, vid("Slow sink"), vid("Clicks -> Map")))
	}
	// The figures are live: a later poll shows a longer duration.
	first := waitJS[string](b, "the job's duration", `document.querySelector('#tile-duration .tile-value').textContent`)
	waitJS[bool](b, "the job's duration to change", fmt.Sprintf(`document.querySelector('#tile-duration .tile-value').textContent !== %q`, first))
	b.screenshot("job", os.Getenv("SPATE_README_SCREENSHOT"))

	// A vertex's subtasks.
	win := d.Vertices[1]
	b.do("open a vertex", chromedp.Navigate(base+"#/jobs/"+id+"/vertices/"+win.ID))
	// With the metric routes, a row per subtask; without, a note saying so.
	want := "s.textContent.includes('Per-subtask metrics are not available')"
	if slices.Contains(routes.Routes, "GET /v1/jobs/{id}/vertices/{vid}/metrics") {
		want = fmt.Sprintf("s.querySelectorAll('tr[data-subtask]').length === %d", win.Parallelism)
	}
	waitJS[bool](b, "the vertex's subtasks", fmt.Sprintf(`(() => {
		const s = document.getElementById('subtasks');
		return s !== null && s.querySelector('h2').textContent === %q && %s;
	})()`, "Subtasks of "+win.Name, want))
	b.screenshot("vertex", "")

	// The other tabs render, saying what is not available.
	for _, tab := range []struct{ name, want string }{
		{"exceptions", "The job has had no failure."},
		{"checkpoints", "heckpoint"},
		{"restarts", "RUNNING"},
	} {
		b.do("open the "+tab.name+" tab", chromedp.Navigate(base+"#/jobs/"+id+"/"+tab.name))
		waitJS[bool](b, "the "+tab.name+" tab", fmt.Sprintf(`(() => {
			const h = document.getElementById('pane-h');
			return h !== null && h.closest('section').textContent.includes(%q);
		})()`, tab.want))
		b.screenshot("job-"+tab.name, "")
	}

	// The overview counts the TaskManagers and the running job.
	b.do("open the overview", chromedp.Navigate(base+"#/overview"))
	waitJS[bool](b, "the overview", fmt.Sprintf(`(() => {
		const v = (id) => { const e = document.querySelector('#' + id + ' .tile-value'); return e && e.textContent; };
		return v('tile-taskmanagers') === '2' && v('tile-running') === '1' && document.querySelector('[data-job=%q]') !== null;
	})()`, id))
	b.screenshot("overview", "")

	// The TaskManagers, and the one that runs the sink with the job's
	// output.
	b.do("open the TaskManagers", chromedp.Navigate(base+"#/taskmanagers"))
	waitJS[bool](b, "both TaskManagers listed", `document.querySelectorAll('tr[data-taskmanager]').length === 2`)
	b.screenshot("taskmanagers", "")
	var tms v1.TaskManagers
	if err := c.get(t, "/v1/taskmanagers", &tms); err != nil {
		t.Fatal(err)
	}
	tag := "[job " + id[:8] + " "
	printer := ""
	waitFor(t, 30*time.Second, "a TaskManager to show the job's output", func() bool {
		for _, tm := range tms.TaskManagers {
			if text, err := tmStdout(context.Background(), c.rest, tm.ID); err == nil && strings.Contains(text, tag) {
				printer = tm.ID
				return true
			}
		}
		return false
	})
	b.do("open a TaskManager", chromedp.Navigate(base+"#/taskmanagers/"+printer))
	waitJS[bool](b, "the TaskManager's page with the job's output", fmt.Sprintf(`(() => {
		const out = document.getElementById('tm-stdout');
		const tiles = document.getElementById('tm-tiles');
		return out !== null && out.textContent.includes(%q) && tiles.textContent.includes('CPU cores') && tiles.textContent.includes('Physical memory');
	})()`, tag))
	b.screenshot("taskmanager", "")

	// The JobManager's configuration.
	b.do("open the JobManager", chromedp.Navigate(base+"#/jobmanager"))
	waitJS[bool](b, "the configuration", `document.body.textContent.includes('jobmanager.rpc.address') && document.body.textContent.includes('rest.port')`)
	b.screenshot("jobmanager", "")

	// An unknown job says so.
	b.do("open an unknown job", chromedp.Navigate(base+"#/jobs/"+strings.Repeat("0", 32)))
	waitJS[bool](b, "the unknown job's message", `(() => { const a = document.querySelector('[role=alert]'); return a !== null && !a.hidden && a.textContent.includes('There is no job'); })()`)

	if errs := b.consoleErrors(); len(errs) > 0 {
		// The unknown job's 404 is the one error the page asks for.
		var other []string
		for _, e := range errs {
			if !strings.Contains(e, "404") || !strings.Contains(e, "/v1/jobs/"+strings.Repeat("0", 32)) {
				other = append(other, e)
			}
		}
		if len(other) > 0 {
			t.Errorf("the browser's console shows errors:\n%s", strings.Join(other, "\n"))
		}
	}
}

// fedVertices are the ids of the vertices with an input edge in the job's
// plan.
func fedVertices(d v1.JobDetails) []string {
	var plan struct {
		Edges []struct {
			Target string `json:"target"`
		} `json:"edges"`
	}
	if err := json.Unmarshal(d.Plan, &plan); err != nil {
		return nil
	}
	var ids []string
	for _, e := range plan.Edges {
		ids = append(ids, e.Target)
	}
	return ids
}

func jsStringArray(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ",") + "]"
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

var (
	dashjobOnce sync.Once
	dashjobErr  error
)

// dashjob builds testdata/dashjob, the job the dashboard and progress
// tests watch, next to binaries' programs, and returns its path.
func dashjob(t testing.TB) string {
	t.Helper()
	dir := binaries(t)
	path := filepath.Join(dir, "dashjob")
	dashjobOnce.Do(func() {
		if out, err := exec.Command("go", "build", "-o", path, "./testdata/dashjob").CombinedOutput(); err != nil {
			dashjobErr = fmt.Errorf("build ./testdata/dashjob: %v\n%s", err, out)
		}
	})
	if dashjobErr != nil {
		t.Fatal(dashjobErr)
	}
	return path
}

// TestDashboardWithToken runs a JobManager whose REST API needs a token
// (rest.authentication.token-file): the dashboard's page and scripts load
// without it, the page asks for the token, refuses a wrong one, and with
// the right one shows the cluster.
func TestDashboardWithToken(t *testing.T) {
	b := newBrowser(t)
	path, tok := restToken(t)
	jm := start(t, "jobmanager", "--rpc-port", "0", "--rest-port", "0", "--host", "127.0.0.1", "-D", "rest.authentication.token-file="+path)
	var rest string
	waitFor(t, 20*time.Second, "the JobManager to listen", func() bool {
		m := addrLine.FindStringSubmatch(jm.stdout())
		if m != nil {
			rest = m[2]
		}
		return m != nil
	})
	b.do("open the dashboard", chromedp.Navigate("http://"+rest+"/#/overview"))
	waitJS[bool](b, "the token form", `document.getElementById('token') !== null`)
	b.do("send a wrong token", chromedp.SendKeys(chromedp.ID("token"), strings.Repeat("0", len(tok))), chromedp.Click(chromedp.CSS(".token-form button")))
	waitJS[bool](b, "the refusal", `(() => { const a = document.querySelector('.token-form [role=alert]'); return a !== null && a.textContent.includes('refused'); })()`)
	b.do("send the token", chromedp.SendKeys(chromedp.ID("token"), tok), chromedp.Click(chromedp.CSS(".token-form button")))
	waitJS[bool](b, "the overview, with the token", `(() => { const e = document.querySelector('#tile-taskmanagers .tile-value'); return e !== null && e.textContent === '0'; })()`)
	b.screenshot("token-overview", "")
	// Only the 401s of the wrong token's attempt and the first load are
	// expected on the console.
	for _, e := range b.consoleErrors() {
		if !strings.Contains(e, "401") {
			t.Errorf("console error: %s", e)
		}
	}
}
