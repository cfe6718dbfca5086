package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spate-dev/spate"
)

func info(args []string) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	format := fs.String("format", "json", "plan format: json or dot")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("info: name the program, e.g. spate info ./examples/wordcount FILE")
	}
	if *format != "json" && *format != "dot" {
		return fmt.Errorf("info: -format %q: want json or dot", *format)
	}
	prog, cleanup, err := executable(fs.Arg(0))
	if err != nil {
		return err
	}
	defer cleanup()
	cmd := exec.Command(prog, fs.Args()[1:]...)
	cmd.Env = append(os.Environ(), spate.InfoEnv+"="+*format)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("info: run %s: %w", fs.Arg(0), err)
	}
	return nil
}

// executable returns a runnable path for prog: prog itself if it is an
// executable file, else the binary `go build` makes of the package.
func executable(prog string) (string, func(), error) {
	if st, err := os.Stat(prog); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return prog, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "spate-info-")
	if err != nil {
		return "", nil, fmt.Errorf("build %s: %w", prog, err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	bin := filepath.Join(dir, "prog")
	pkg := prog
	if !strings.HasPrefix(pkg, ".") && !filepath.IsAbs(pkg) && !strings.Contains(pkg, ".") {
		pkg = "./" + pkg
	}
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("build %s: %w", prog, err)
	}
	// go build -o writes a package archive for a package that is not
	// main: there is no program to run.
	if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 {
		cleanup()
		return "", nil, fmt.Errorf("%s is not a main package: spate runs a program, a package main whose main calls Env.Execute (or an executable built from one)", prog)
	}
	return bin, cleanup, nil
}
