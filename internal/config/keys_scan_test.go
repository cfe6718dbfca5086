package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// keyLike matches a dotted configuration key such as heartbeat.timeout.
var keyLike = regexp.MustCompile(`^[a-z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+)+$`)

// readKeys returns the configuration keys the module's code names: the
// values of constants named Key* (and of this package's key constants),
// and dotted literals passed to a configuration getter or setter.
func readKeys(t *testing.T, root string) map[string]string {
	t.Helper()
	found := map[string]string{} // key -> where
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "testdata" || name == "examples" || strings.HasPrefix(name, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".pb.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		inConfig := f.Name.Name == "config"
		add := func(lit ast.Expr) {
			bl, ok := lit.(*ast.BasicLit)
			if !ok || bl.Kind != token.STRING {
				return
			}
			v, err := strconv.Unquote(bl.Value)
			if err != nil || !keyLike.MatchString(v) {
				return
			}
			found[v] = fset.Position(bl.Pos()).String()
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if i < len(n.Values) && (strings.HasPrefix(name.Name, "Key") || inConfig && name.IsExported()) {
						add(n.Values[i])
					}
				}
			case *ast.CallExpr:
				fun := ""
				switch f := n.Fun.(type) {
				case *ast.SelectorExpr:
					fun = f.Sel.Name
				case *ast.Ident:
					fun = f.Name
				}
				switch fun {
				case "Get", "Set", "Int", "Bool", "Duration", "Bytes", "String", "positiveInt":
					// The key is a getter's first argument; other APIs'
					// Get (client-go's takes a context first) don't match.
					if len(n.Args) > 0 {
						add(n.Args[0])
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestEveryReadKeyIsRegistered: a key the code reads but the registry
// lacks would escape validation; register it in keys.go.
func TestEveryReadKeyIsRegistered(t *testing.T) {
	found := readKeys(t, filepath.Join("..", ".."))
	for _, want := range []string{ParallelismDefault, "heartbeat.timeout", "taskmanager.numberOfTaskSlots", "resourcemanager.taskmanager-timeout"} {
		if _, ok := found[want]; !ok {
			t.Errorf("the scan missed %s: it finds too little to be trusted", want)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(found)) {
		if _, ok := Lookup(k); !ok {
			t.Errorf("%s: key %s is read but not registered in internal/config/keys.go", found[k], k)
		}
	}
}
