package dashboard

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestAssetsComplete checks that every file the page loads (the index's
// script, style sheet and icon, and every module a module imports) is
// embedded and served with its type, and that nothing is loaded from
// another origin.
func TestAssetsComplete(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	get := func(path string) (string, string, int) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.Header.Get("Content-Type"), resp.StatusCode
	}
	index, ct, status := get("/")
	if status != 200 || !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("GET /: %d %q", status, ct)
	}
	if strings.Contains(index, "http://") || strings.Contains(index, "https://") {
		t.Errorf("index.html refers to another origin")
	}
	wantType := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	seen := map[string]bool{}
	queue := []string{}
	for _, m := range regexp.MustCompile(`(?:src|href)="(/web/[^"]+)"`).FindAllStringSubmatch(index, -1) {
		queue = append(queue, m[1])
	}
	importRe := regexp.MustCompile(`(?m)^import .* from '\./([^']+)';`)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		body, ct, status := get(p)
		ext := p[strings.LastIndex(p, "."):]
		if status != 200 || !strings.HasPrefix(ct, wantType[ext]) {
			t.Errorf("GET %s: %d %q, want 200 %s", p, status, ct, wantType[ext])
			continue
		}
		if regexp.MustCompile(`(?:import|url\()\s*['"(]?https?://`).MatchString(body) {
			t.Errorf("%s loads from another origin", p)
		}
		for _, m := range importRe.FindAllStringSubmatch(body, -1) {
			queue = append(queue, "/web/"+m[1])
		}
	}
	// Every embedded file is used.
	fs.WalkDir(files, "web", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path != "web/index.html" && !seen["/"+path] {
			t.Errorf("%s is embedded but nothing loads it", path)
		}
		return nil
	})
	if _, _, status := get("/web/"); status != 404 {
		t.Errorf("GET /web/: %d, want 404 (no listing)", status)
	}
}
