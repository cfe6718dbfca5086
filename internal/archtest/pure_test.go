package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// purePackages are the state machines of STYLE.md §1: events in, effects
// out, no sockets, no goroutines, no clock (§6). Their library files (not
// their tests) are checked by TestPurePackages.
var purePackages = []string{
	"internal/scheduler",
	"internal/checkpoint",
	"internal/restart",
	"internal/jobmaster",
	"internal/heartbeat",
}

// impureImports are packages a pure package must not import: I/O and
// processes.
var impureImports = map[string]bool{
	"net": true, "net/http": true, "os": true, "os/exec": true, "io/fs": true,
	"google.golang.org/grpc": true, "log/slog": true,
}

// impureTimeCalls are the functions of package time that read the clock
// or wait.
var impureTimeCalls = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "NewTimer": true, "NewTicker": true, "Tick": true,
}

// TestPurePackages fails on an impure import, a go statement or a call
// that reads the clock in a pure package's library files.
func TestPurePackages(t *testing.T) {
	for _, rel := range purePackages {
		dir := filepath.Join(moduleRoot, rel)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("read %s: %v", rel, err)
		}
		fset := token.NewFileSet()
		checked := 0
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			for _, v := range impurities(fset, f) {
				t.Errorf("%s/%s: %s: a pure package takes time and I/O from its caller (STYLE.md §1, §6)", rel, name, v)
			}
		}
		if checked == 0 {
			t.Errorf("%s has no library file to check", rel)
		}
	}
}

// impurities lists what makes f impure, with positions.
func impurities(fset *token.FileSet, f *ast.File) []string {
	var out []string
	timePkg := ""
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if impureImports[p] {
			out = append(out, fmt.Sprintf("%s: imports %s", fset.Position(imp.Pos()), p))
		}
		if p == "time" {
			timePkg = "time"
			if imp.Name != nil {
				timePkg = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			out = append(out, fmt.Sprintf("%s: starts a goroutine", fset.Position(n.Pos())))
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && timePkg != "" && id.Name == timePkg && impureTimeCalls[n.Sel.Name] {
				out = append(out, fmt.Sprintf("%s: calls %s.%s", fset.Position(n.Pos()), timePkg, n.Sel.Name))
			}
		}
		return true
	})
	sort.Strings(out)
	return out
}

// TestImpuritiesFound pins the check on a file with one of each.
func TestImpuritiesFound(t *testing.T) {
	src := `package p

import (
	"net"
	clock "time"
)

func f() {
	go func() {}()
	_ = clock.Now()
	_ = clock.Duration(0)
	_ = net.IPv4len
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := impurities(fset, f)
	want := []string{"p.go:10:6: calls clock.Now", "p.go:4:2: imports net", "p.go:9:2: starts a goroutine"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("impurities:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
