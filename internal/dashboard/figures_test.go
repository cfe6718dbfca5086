package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const (
	fakeJob = "0123456789abcdef0123456789abcdef"
	vSrc    = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	vMap    = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	vSink   = "cccccccccccccccccccccccccccccccc"
)

// fakeAPI answers the REST routes the dashboard reads with fixed figures
// in Flink's shapes: a job whose slow sink is busy and whose upstream
// vertices are backpressured, with checkpoints, a restart, and a
// TaskManager with the Go runtime's metrics. It stands in for a cluster
// where the figures cannot be had on demand (a busy sink, completed
// checkpoints); cmd/spate's TestDashboardInBrowser runs a real one.
func fakeAPI(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(fakeHandler())
	t.Cleanup(srv.Close)
	return srv
}

// cancelled counts the cancellations fakeHandler was asked for.
var cancelled atomic.Int32

// fakeHandler serves fakeAPI's answers and the dashboard.
func fakeHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PATCH /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == fakeJob && r.URL.Query().Get("mode") == "cancel" {
			cancelled.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, "{}")
	})
	var routes []string
	var mu sync.Mutex
	now := int64(1_800_000_000_000)
	reply := func(pattern string, f func(r *http.Request) any) {
		routes = append(routes, pattern)
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(f(r))
		})
	}
	type m = map[string]any
	vertex := func(id, name string, p int, in, out int64) m {
		return m{"id": id, "name": name, "parallelism": p, "status": "RUNNING", "start-time": now - 60_000, "end-time": -1, "duration": 60_000,
			"tasks": m{"RUNNING": p}, "metrics": m{"read-records": in, "write-records": out}}
	}
	reply("GET /v1/overview", func(*http.Request) any {
		return m{"taskmanagers": 1, "slots-total": 4, "slots-available": 1, "jobs-running": 1, "spate-version": "test"}
	})
	reply("GET /v1/jobs/overview", func(*http.Request) any {
		return m{"jobs": []m{{"jid": fakeJob, "name": "slow sink", "state": "RUNNING", "start-time": now - 60_000, "end-time": -1, "duration": 60_000, "tasks": m{"RUNNING": 5}}}}
	})
	reply("GET /v1/jobs/{id}", func(*http.Request) any {
		mu.Lock()
		now += 1000
		mu.Unlock()
		return m{"jid": fakeJob, "name": "slow sink", "state": "RUNNING", "start-time": now - 60_000, "end-time": -1, "duration": 60_000, "now": now,
			"timestamps": m{"CREATED": now - 61_000, "RUNNING": now - 60_000, "RESTARTING": now - 30_000},
			"vertices":   []m{vertex(vSrc, "Source: numbers", 2, 0, 90_000), vertex(vMap, "Map", 2, 90_000, 90_000), vertex(vSink, "Sink: slow", 1, 90_000, 0)},
			"plan": m{"vertices": []m{{"id": vSrc, "name": "Source: numbers", "parallelism": 2}, {"id": vMap, "name": "Map", "parallelism": 2}, {"id": vSink, "name": "Sink: slow", "parallelism": 1}},
				"edges": []m{{"source": vSrc, "target": vMap, "partitioning": "HASH"}, {"source": vMap, "target": vSink, "partitioning": "REBALANCE"}}}}
	})
	// busy and backpressured ms per second of each vertex's subtasks.
	load := map[string][2]float64{vSrc: {50, 930}, vMap: {250, 700}, vSink: {980, 0}}
	reply("GET /v1/jobs/{id}/vertices/{vid}/subtasks/metrics", func(r *http.Request) any {
		l := load[r.PathValue("vid")]
		agg := func(id string, v float64) m { return m{"id": id, "min": v, "max": v, "avg": v, "sum": v} }
		return []m{agg("numRecordsInPerSecond", 1500), agg("numRecordsOutPerSecond", 1500), agg("busyTimeMsPerSecond", l[0]),
			agg("backPressuredTimeMsPerSecond", l[1]), agg("idleTimeMsPerSecond", 1000-l[0]-l[1]), agg("currentInputWatermark", float64(now-2500))}
	})
	reply("GET /v1/jobs/{id}/vertices/{vid}/metrics", func(r *http.Request) any {
		l := load[r.PathValue("vid")]
		var out []m
		for _, id := range strings.Split(r.URL.Query().Get("get"), ",") {
			_, name, _ := strings.Cut(id, ".")
			v := map[string]float64{"numRecordsIn": 45_000, "numRecordsOut": 45_000, "numRecordsInPerSecond": 750, "numRecordsOutPerSecond": 750,
				"busyTimeMsPerSecond": l[0], "backPressuredTimeMsPerSecond": l[1], "idleTimeMsPerSecond": 1000 - l[0] - l[1],
				"currentInputWatermark": float64(now - 2500), "currentOutputWatermark": float64(now - 2600), "watermarkLag": 2600}[name]
			out = append(out, m{"id": id, "value": fmt.Sprint(v)})
		}
		return out
	})
	reply("GET /v1/jobs/{id}/vertices/{vid}/backpressure", func(r *http.Request) any {
		return m{"status": "ok", "backpressure-level": "high", "end-timestamp": now, "subtasks": []m{{"subtask": 0, "backpressure-level": "high", "ratio": 0.93}}}
	})
	reply("GET /v1/jobs/{id}/metrics", func(*http.Request) any { return []m{{"id": "numRestarts", "value": "1"}} })
	reply("GET /v1/jobs/{id}/exceptions", func(*http.Request) any {
		return m{"root-exception": "", "exceptionHistory": m{"entries": []m{{"exceptionName": "panic", "stacktrace": "boom", "timestamp": now - 30_000, "taskName": "Map (1/2)"}}}}
	})
	reply("GET /v1/jobs/{id}/checkpoints", func(*http.Request) any {
		cp := func(id int, status string) m {
			return m{"id": id, "status": status, "trigger_timestamp": now - int64(10_000*(4-id)), "latest_ack_timestamp": now - int64(10_000*(4-id)) + 120,
				"end_to_end_duration": 120, "checkpointed_size": 4096, "num_subtasks": 5, "num_acknowledged_subtasks": 5}
		}
		return m{"counts": m{"total": 3, "completed": 2, "failed": 1, "in_progress": 0, "restored": 1},
			"latest":  m{"completed": cp(3, "COMPLETED"), "restored": m{"id": 1, "restore_timestamp": now - 30_000}},
			"history": []m{cp(3, "COMPLETED"), cp(2, "FAILED"), cp(1, "COMPLETED")}, "numRestarts": 1}
	})
	reply("GET /v1/jobs/{id}/checkpoints/config", func(*http.Request) any {
		return m{"mode": "exactly_once", "interval": 10_000, "timeout": 600_000}
	})
	reply("GET /v1/taskmanagers", func(*http.Request) any {
		return m{"taskmanagers": []m{{"id": "tm-1", "path": "host-a", "slotsNumber": 4, "freeSlots": 1, "hardware": m{"cpuCores": 2, "physicalMemory": 8 << 30}, "prometheusAddress": "127.0.0.1:9250"}}}
	})
	tmMetrics := map[string]float64{"Status.Go.Memory.Heap.Used": 64 << 20, "Status.Go.Memory.Total": 128 << 20, "Status.Process.CPU.Load": 0.42, "Status.Go.Goroutines": 77}
	reply("GET /v1/taskmanagers/{id}/metrics", func(r *http.Request) any {
		var out []m
		get := r.URL.Query().Get("get")
		for id, v := range tmMetrics {
			if get == "" {
				out = append(out, m{"id": id})
			} else if strings.Contains(","+get+",", ","+id+",") {
				out = append(out, m{"id": id, "value": fmt.Sprint(v)})
			}
		}
		return out
	})
	routes = append(routes, "GET /v1/taskmanagers/{id}/stdout")
	mux.HandleFunc("GET /v1/taskmanagers/{id}/stdout", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "[job 01234567 w0] hello")
	})
	reply("GET /v1/config", func(*http.Request) any { return m{"config": []m{{"key": "rest.port", "value": "8081"}}} })
	reply("GET /v1/jobmanager/metrics", func(*http.Request) any { return []m{} })
	ui := Handler()
	mux.Handle(IndexPattern, ui)
	mux.Handle(AssetsPattern, ui)
	mux.HandleFunc("GET "+RoutesPath, func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(Routes{Routes: routes})
	})
	return mux
}

// TestDashboardWithFigures shows what the job and TaskManager pages make
// of the figures the metric and checkpoint routes give: the graph
// coloured as Flink colours a slow sink's job (the sink busy, red; its
// upstream backpressured, grey to black), the subtasks' figures, the
// checkpoints, the restart, the TaskManager's memory and CPU.
func TestDashboardWithFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
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
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	var mu sync.Mutex
	var errs []string
	messages := chromedp.Console(ctx)
	go func() {
		for msg, err := range messages {
			if err != nil {
				return
			}
			if msg.Type == chromedp.ConsoleError || msg.IsException() {
				mu.Lock()
				errs = append(errs, msg.String())
				mu.Unlock()
			}
		}
	}()
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("waiting for %s: %v (console errors: %q)", what, err, errs)
		}
	}
	open := func(hash string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"+hash)); err != nil {
			t.Fatal(err)
		}
	}

	open("#/jobs/" + fakeJob + "/vertices/" + vSink)
	wait("the graph coloured by busy and backpressured time", fmt.Sprintf(`(() => {
		const kind = (id) => { const r = document.querySelector('g.node[data-vertex="' + id + '"] rect'); return r && r.dataset.kind; };
		return kind(%q) === 'backpressured' && kind(%q) === 'backpressured' && kind(%q) === 'busy';
	})()`, vSrc, vMap, vSink))
	wait("the darker shade for the more backpressured source", fmt.Sprintf(`(() => {
		const fill = (id) => document.querySelector('g.node[data-vertex="' + id + '"] rect').getAttribute('fill');
		const light = (f) => Number(f.match(/(\d+)%%\)$/)[1]);
		return light(fill(%q)) < light(fill(%q));
	})()`, vSrc, vMap))
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if root := os.Getenv("SPATE_TEST_ARTIFACTS"); root != "" {
			dir = filepath.Join(root, t.Name())
			os.MkdirAll(dir, 0o755)
		}
		path := filepath.Join(dir, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of %s: %s", name, path)
	}
	wait("the sink's subtask figures", `(() => {
		const row = document.querySelector('#subtasks tr[data-subtask="0"]');
		return row !== null && row.textContent.includes('98%') && row.textContent.includes('HIGH') && row.textContent.includes('2.6s');
	})()`)
	wait("the restart and checkpoint tiles", `(() => {
		const t = document.getElementById('job-tiles').textContent;
		return t.includes('2 completed') && t.includes('1Restarts') && t.includes('2.5sEvent-time lag');
	})()`)

	shot("job")

	// Cancel job asks first; accepted, it sends PATCH ?mode=cancel.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	asked := make(chan string, 1)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			asked <- ev.Message
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			return
		}
	}()
	before := cancelled.Load()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("button.danger"))); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-asked:
		if !strings.Contains(msg, "Cancel job slow sink?") {
			t.Errorf("the cancel dialog asks %q", msg)
		}
	case <-ctx.Done():
		t.Fatal("no dialog before cancelling")
	}
	waitFor := time.Now().Add(10 * time.Second)
	for cancelled.Load() == before && time.Now().Before(waitFor) {
		time.Sleep(20 * time.Millisecond)
	}
	if cancelled.Load() == before {
		t.Error("Cancel job sent no PATCH /v1/jobs/{id}?mode=cancel")
	}

	// The keyboard reaches a vertex: Tab to its node, Enter opens it.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(`g.node[data-vertex="`+vSrc+`"] .node-hit`)), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	wait("Enter on a node to open its vertex", fmt.Sprintf(`location.hash.endsWith('/vertices/%s') && document.querySelector('#subtasks h2').textContent === 'Subtasks of Source: numbers'`, vSrc))

	open("#/jobs/" + fakeJob + "/checkpoints")
	wait("the checkpoints tab", `(() => {
		const p = document.getElementById('pane-h');
		const s = p && p.closest('section').textContent;
		return s && s.includes('Latest completed: #3') && s.includes('FAILED') && s.includes('interval 10s') && s.includes('Restored from #1');
	})()`)

	open("#/jobs/" + fakeJob + "/restarts")
	wait("the restarts tab", `(() => {
		const p = document.getElementById('pane-h');
		const s = p && p.closest('section').textContent;
		return s && s.includes('RESTARTING') && s.includes('1 failure recorded');
	})()`)

	open("#/taskmanagers/tm-1")
	wait("the TaskManager's memory and CPU", `(() => {
		const t = document.getElementById('tm-tiles').textContent;
		const prom = document.querySelector('#tm-tiles a[href="http://127.0.0.1:9250/metrics"]');
		return t.includes('64 MiBHeap in use') && t.includes('42%CPU load') && t.includes('77Goroutines') && prom !== null;
	})()`)
	shot("taskmanager")
	open("#/taskmanagers")
	wait("the TaskManagers' memory and CPU", `(() => {
		const r = document.querySelector('tr[data-taskmanager="tm-1"]');
		return r !== null && r.textContent.includes('64 MiB') && r.textContent.includes('42%');
	})()`)

	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// TestDashboardAsksForToken: a JobManager whose REST API needs a bearer
// token (rest.authentication.token-file) answers the page's first request
// 401; the page asks for the token, keeps it for the tab, sends it with
// every request, and asks again, saying so, when it is refused.
func TestDashboardAsksForToken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	const token = "a-token-of-some-length"
	api := fakeHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As the REST handler guards its routes; the page's files are open.
		if (strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == RoutesPath) && r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":["authentication required"]}`)
			return
		}
		api.ServeHTTP(w, r)
	}))
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
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/#/overview")); err != nil {
		t.Fatal(err)
	}
	wait("the token form", `document.getElementById('token') !== null && document.activeElement.id === 'token'`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), "wrong-token-wrong-token"), chromedp.Click(chromedp.CSS(".token-form button"))); err != nil {
		t.Fatal(err)
	}
	wait("the refusal", `(() => { const a = document.querySelector('.token-form [role=alert]'); return a !== null && a.textContent.includes('refused'); })()`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.CSS(".token-form button"))); err != nil {
		t.Fatal(err)
	}
	wait("the overview, with the token", `(() => { const e = document.querySelector('#tile-running .tile-value'); return e !== null && e.textContent === '1'; })()`)
	wait("the token kept for the tab", fmt.Sprintf(`sessionStorage.getItem('spate.rest.token') === %q`, token))
}
