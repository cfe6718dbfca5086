package archtest

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// module is the module path; the tests read its tree from moduleRoot.
const module = "github.com/spate-dev/spate"

// moduleRoot is the module's directory, two levels above this package.
const moduleRoot = "../.."

// layers maps each package (by path relative to the module; a trailing
// "/..." covers a subtree) to its layer, DESIGN.md §6 as today's packages
// are named. A package may import packages of its own layer or lower ones;
// an import of a higher layer fails the test. The longest matching entry
// wins.
var layers = map[string]int{
	// L0: identifiers, time, configuration, and the wire types that both
	// sides of an API share: no knowledge of any component.
	"api/v1":                   0,
	"internal/config":          0,
	"internal/keygroup":        0,
	"internal/procdir":         0,
	"internal/ids":             0,
	"internal/clock":           0,
	"internal/resource":        0, // what a resource manager asks a provider for (TaskManagerSpec)
	"internal/deployment":      0, // what a TaskManager tells a worker (Deployment, its env variables)
	"internal/localkube/inpod": 0, // what localkube's pod runner gives a program in a pod (paths, DNS)
	"internal/script":          0, // the event-script format of the pure packages' tests
	"internal/pki":             0, // the cluster CA, certificate identities, TLS configurations (standard library only)

	// L1: the plan: stream graph, chaining, fingerprint, encoding.
	"internal/jobgraph": 1,
	"internal/graph":    1,

	// L2: pure protocol logic: events in, effects out; no sockets, no
	// goroutines, no time.Now (TestPurePackages checks them).
	"internal/scheduler":  2, // slots: queue, allocation, TaskManagers to start and stop
	"internal/checkpoint": 2,
	"internal/restart":    2,
	"internal/heartbeat":  2,

	// L3: the runtime pieces and the cluster components. Siblings talk
	// through small interfaces; none of them knows a resource manager's
	// API or which role a process runs.
	"internal/exec":               3, // subtasks (DESIGN's "task")
	"internal/task":               3,
	"internal/operator":           3,
	"internal/state":              3,
	"internal/batchcodec":         3,
	"internal/codec":              3,
	"internal/network":            3,
	"internal/snapshot":           3, // state files, operator snapshots at barriers
	"internal/blob":               3,
	"internal/checkpoint/storage": 3, // checkpoint storage behind a URL (file://)
	"internal/savepoint":          3, // savepoints: canonical format, restore by operator uid
	"internal/rpc/...":            3,
	"internal/rest/...":           3,
	"internal/launcher":           3, // the program <-> CLI socket protocol
	"internal/metrics":            3,
	"internal/dashboard":          3,
	"internal/jobmanager":         3, // dispatcher, job master and resource manager today
	"internal/dispatcher":         3,
	"internal/jobmaster":          3,
	"internal/resourcemanager":    3,
	"internal/taskmanager":        3,
	"client":                      3, // the REST client, a sibling of internal/rest

	// L4: the only places that know a resource manager's API.
	"internal/provider/...": 4,
	"internal/ha/...":       4,

	// L5: wiring: which components a process runs in which role.
	"internal/worker":      5,
	"internal/role":        5,
	"internal/entrypoint":  5,
	"internal/minicluster": 5,
	"internal/localkube":   5, // a local Kubernetes cluster for tests and hack/localkube
	"internal/localexec":   5, // the local executor's checkpoints and restarts

	// L6: what users import.
	"":                6, // package spate
	"connector/...":   6,
	"connector/kafka": 6, // the Kafka source and sink (franz-go)
	"spatetest":       6,
	"nexmark/...":     6,

	// L7: programs: they may import anything.
	"cmd/...":      7,
	"examples/...": 7,
	"hack/...":     7,

	// This package imports nothing of the module.
	"internal/archtest": 7,
}

// layerOf returns the layer of the package at rel (relative to the
// module) and whether the table places it.
func layerOf(rel string) (int, bool) {
	best, layer, ok := -1, 0, false
	for p, l := range layers {
		var match bool
		if sub, isTree := strings.CutSuffix(p, "/..."); isTree {
			match = rel == sub || strings.HasPrefix(rel, sub+"/")
		} else {
			match = rel == p
		}
		if match && len(p) > best {
			best, layer, ok = len(p), l, true
		}
	}
	return layer, ok
}

// pkgFiles is a directory's Go files, with their imports of the module.
type pkgFiles struct {
	rel     string
	imports map[string][]string // module import (relative) -> files
	isMain  bool
}

// readModule parses the imports of every Go file in the module, by
// directory. Test files count like the others: a test that reaches up the
// layers couples the packages all the same.
func readModule(t *testing.T) map[string]*pkgFiles {
	t.Helper()
	pkgs := map[string]*pkgFiles{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != moduleRoot && (name == "testdata" || name == "vendor" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if path != moduleRoot {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(moduleRoot, filepath.Dir(path))
		rel := filepath.ToSlash(dir)
		if rel == "." {
			rel = ""
		}
		p := pkgs[rel]
		if p == nil {
			p = &pkgFiles{rel: rel, imports: map[string][]string{}}
			pkgs[rel] = p
		}
		if f.Name.Name == "main" {
			p.isMain = true
		}
		for _, imp := range f.Imports {
			ip, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			var target string
			switch {
			case ip == module:
				target = ""
			case strings.HasPrefix(ip, module+"/"):
				target = strings.TrimPrefix(ip, module+"/")
			default:
				continue
			}
			p.imports[target] = append(p.imports[target], filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the module's sources: %v", err)
	}
	return pkgs
}

func display(rel string) string {
	if rel == "" {
		return "spate (root)"
	}
	return rel
}

// TestImportsPointDown fails on every import of a higher layer and on
// every package the layer table does not place.
func TestImportsPointDown(t *testing.T) {
	pkgs := readModule(t)
	if _, ok := pkgs["internal/exec"]; !ok {
		t.Fatalf("found no package internal/exec under %s: the test must run from internal/archtest", moduleRoot)
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// violations lists, in package order, the packages the layer table does
// not place and the imports that run up the layers.
func violations(pkgs map[string]*pkgFiles) []string {
	var out []string
	var rels []string
	for rel := range pkgs {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		p := pkgs[rel]
		from, ok := layerOf(rel)
		if !ok {
			out = append(out, fmt.Sprintf("package %s is not in the layer table: add it to layers in internal/archtest/layers_test.go at its layer of DESIGN.md §6", display(rel)))
			continue
		}
		var targets []string
		for target := range p.imports {
			targets = append(targets, target)
		}
		sort.Strings(targets)
		for _, target := range targets {
			to, ok := layerOf(target)
			if !ok {
				continue // reported as a package of its own
			}
			if to > from {
				out = append(out, fmt.Sprintf("%s (layer %d) imports %s (layer %d) in %s: imports must point down the layers of DESIGN.md §6; define the interface in %s and wire the implementation in an entrypoint, or move the shared types to a lower package",
					display(rel), from, display(target), to, strings.Join(dedup(p.imports[target]), ", "), display(rel)))
			}
		}
	}
	return out
}

// TestViolationsFound pins the check on the imports that ran up the layers
// before they were fixed (taskmanager -> worker, jobmanager -> provider),
// next to imports that are fine: down, and within a layer.
func TestViolationsFound(t *testing.T) {
	pkgs := map[string]*pkgFiles{
		"internal/taskmanager": {rel: "internal/taskmanager", imports: map[string][]string{
			"internal/worker": {"workers.go"}, "internal/config": {"taskmanager.go"}, "internal/blob": {"artifacts.go"},
		}},
		"internal/jobmanager": {rel: "internal/jobmanager", imports: map[string][]string{"internal/provider": {"resources.go", "jobmanager.go", "resources.go"}}},
		"internal/worker":     {rel: "internal/worker", imports: map[string][]string{"internal/exec": {"run.go"}}},
		"internal/elsewhere":  {rel: "internal/elsewhere", imports: map[string][]string{}},
	}
	got := violations(pkgs)
	want := []string{
		"package internal/elsewhere is not in the layer table",
		"internal/jobmanager (layer 3) imports internal/provider (layer 4) in jobmanager.go, resources.go:",
		"internal/taskmanager (layer 3) imports internal/worker (layer 5) in workers.go:",
	}
	if len(got) != len(want) {
		t.Fatalf("violations:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("violation %d = %q, want it to begin %q", i, got[i], want[i])
		}
	}
}

func dedup(files []string) []string {
	sort.Strings(files)
	out := files[:0]
	for i, f := range files {
		if i == 0 || f != files[i-1] {
			out = append(out, f)
		}
	}
	return out
}

// TestLayerOf pins the table's lookup: the longest entry wins, a subtree
// entry covers its root and its children, and an unknown package is
// unplaced.
func TestLayerOf(t *testing.T) {
	cases := []struct {
		name      string
		rel       string
		wantLayer int
		wantOK    bool
	}{
		{name: "exact", rel: "internal/exec", wantLayer: 3, wantOK: true},
		{name: "subtree root", rel: "internal/provider", wantLayer: 4, wantOK: true},
		{name: "subtree child", rel: "internal/provider/process", wantLayer: 4, wantOK: true},
		{name: "generated child", rel: "internal/rpc/rpcpb", wantLayer: 3, wantOK: true},
		{name: "root package", rel: "", wantLayer: 6, wantOK: true},
		{name: "prefix is not a subtree", rel: "internal/execution", wantOK: false},
		{name: "unknown", rel: "internal/nowhere", wantOK: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, ok := layerOf(c.rel)
			if ok != c.wantOK || (ok && l != c.wantLayer) {
				t.Errorf("layerOf(%q) = %d, %v; want %d, %v", c.rel, l, ok, c.wantLayer, c.wantOK)
			}
		})
	}
}
