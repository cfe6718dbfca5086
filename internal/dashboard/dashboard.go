// Package dashboard is the JobManager's web dashboard: a few hand-written
// HTML, CSS and JavaScript modules, embedded in the binary with go:embed
// and served at the REST port's root, as Apache Flink serves its web UI.
//
// The page is a client of the REST API alone: it polls the JSON routes of
// api/v1 (every 1.5 s) and draws the cluster, its jobs (the job graph as a
// layered DAG in SVG, coloured by busy and backpressured time as Flink
// 1.13+ does), their subtasks, checkpoints, restarts and exceptions, the
// TaskManagers with their output, and the configuration. Nothing is built
// at `go build` time and nothing is fetched from the internet: the files
// under web/ are the whole front end.
//
// Routes the REST API may lack (the metric routes, checkpoints) are not
// guessed at: the page reads the list of routes the API serves from
// RoutesPath first and shows "not available" where one is missing, so it
// makes no request that must fail.
//
// Where the REST API takes a bearer token, the page asks for it when
// RoutesPath answers 401 and sends it with every request from then on;
// the files Handler serves hold no data and are meant to be served without
// it.
//
// Handler serves the files; the REST handler (internal/rest) mounts it on
// IndexPattern and AssetsPattern and serves RoutesPath itself.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// Route patterns (net/http.ServeMux syntax) the dashboard is served on.
const (
	// IndexPattern is the dashboard's page, the root of the REST port.
	IndexPattern = "GET /{$}"
	// AssetsPattern holds its scripts and style sheets.
	AssetsPattern = "GET /web/"
	// RoutesPath is where the REST handler lists the routes it serves,
	// as a JSON Routes.
	RoutesPath = "/web/routes.json"
)

// Routes is the body of RoutesPath: the REST API's route patterns, such
// as "GET /v1/jobs/{id}".
type Routes struct {
	Routes []string `json:"routes"`
}

//go:embed web
var files embed.FS

// contentSecurityPolicy lets the page load its own files and call its own
// API, and nothing else: no inline script, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the dashboard: index.html at "/", the files of web/ under
// "/web/". Mount it on IndexPattern and AssetsPattern.
func Handler() http.Handler {
	web, err := fs.Sub(files, "web")
	if err != nil {
		panic("dashboard: embedded files: " + err.Error())
	}
	assets := http.StripPrefix("/web/", http.FileServerFS(web))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary only, and are small: revalidate.
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == "/" {
			http.ServeFileFS(w, r, web, "index.html")
			return
		}
		if strings.HasSuffix(r.URL.Path, "/") {
			// No directory listings.
			http.NotFound(w, r)
			return
		}
		assets.ServeHTTP(w, r)
	})
}
