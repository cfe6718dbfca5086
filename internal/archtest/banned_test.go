package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoBackgroundContextWithContextInScope fails on context.Background()
// or context.TODO() in library code under internal/ (not package main, not
// tests) inside a function that has a context.Context parameter, or inside
// a function literal nested in one: such a call drops the caller's
// cancellation, deadline and values. Use the context in scope, or
// context.WithoutCancel(ctx) for work that must outlive it (a shutdown).
//
// Its limits: it sees contexts only as parameters (of the function or of
// an enclosing one), not as struct fields or local variables, and it
// trusts the parameter's type as written (context.Context, with the
// context package under any name).
func TestNoBackgroundContextWithContextInScope(t *testing.T) {
	root := filepath.Join(moduleRoot, "internal")
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" {
			return nil
		}
		checked++
		ctxPkg := contextImportName(f)
		if ctxPkg == "" {
			return nil
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			for _, pos := range backgroundCalls(fd.Body, hasContextParam(fd.Type, ctxPkg), ctxPkg) {
				t.Errorf("%s: %s.%s() in %s, which has a context in scope: use it (or context.WithoutCancel(ctx) for work that must outlive it)",
					fset.Position(pos), ctxPkg, callName(fd.Body, pos, ctxPkg), fd.Name.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read internal/: %v", err)
	}
	if checked == 0 {
		t.Fatalf("checked no files under %s", root)
	}
}

// contextImportName is the name the file imports package context under, or
// "" if it does not.
func contextImportName(f *ast.File) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "context" {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return "context"
		}
	}
	return ""
}

// hasContextParam tells whether a function type has a parameter of type
// ctxPkg.Context.
func hasContextParam(ft *ast.FuncType, ctxPkg string) bool {
	if ft.Params == nil {
		return false
	}
	for _, p := range ft.Params.List {
		if isContextType(p.Type, ctxPkg) {
			return true
		}
	}
	return false
}

func isContextType(e ast.Expr, ctxPkg string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == ctxPkg && sel.Sel.Name == "Context"
}

// isBackgroundCall tells whether e is ctxPkg.Background() or ctxPkg.TODO().
func isBackgroundCall(e ast.Node, ctxPkg string) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == ctxPkg && (sel.Sel.Name == "Background" || sel.Sel.Name == "TODO")
}

// backgroundCalls returns the positions of the Background/TODO calls in
// body made while a context is in scope: inScope for body itself, and in
// function literals that have a context parameter of their own.
func backgroundCalls(body ast.Node, inScope bool, ctxPkg string) []token.Pos {
	var found []token.Pos
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			found = append(found, backgroundCalls(n.Body, inScope || hasContextParam(n.Type, ctxPkg), ctxPkg)...)
			return false
		case *ast.CallExpr:
			if inScope && isBackgroundCall(n, ctxPkg) {
				found = append(found, n.Pos())
			}
		}
		return true
	})
	return found
}

func callName(body ast.Node, pos token.Pos, ctxPkg string) string {
	name := "Background"
	ast.Inspect(body, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok && c.Pos() == pos && isBackgroundCall(c, ctxPkg) {
			name = c.Fun.(*ast.SelectorExpr).Sel.Name
			return false
		}
		return true
	})
	return name
}

// TestBackgroundCallsFound pins the check on small sources: what it must
// flag and what it must leave alone.
func TestBackgroundCallsFound(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want int
	}{
		{name: "ctx parameter", src: `func f(ctx context.Context) { g(context.Background()) }`, want: 1},
		{name: "TODO", src: `func f(ctx context.Context) { g(context.TODO()) }`, want: 1},
		{name: "closure inherits scope", src: `func f(ctx context.Context) { go func() { g(context.Background()) }() }`, want: 1},
		{name: "closure with its own ctx", src: `func f() { h(func(ctx context.Context) { g(context.Background()) }) }`, want: 1},
		{name: "no context in scope", src: `func f() { g(context.Background()) }`, want: 0},
		{name: "WithoutCancel is fine", src: `func f(ctx context.Context) { g(context.WithoutCancel(ctx)) }`, want: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := parser.ParseFile(token.NewFileSet(), "x.go", "package x\nimport \"context\"\n"+c.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			fd := f.Decls[1].(*ast.FuncDecl)
			got := len(backgroundCalls(fd.Body, hasContextParam(fd.Type, "context"), "context"))
			if got != c.want {
				t.Errorf("found %d calls, want %d", got, c.want)
			}
		})
	}
}
