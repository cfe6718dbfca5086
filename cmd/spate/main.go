// Command spate is Spate's command-line tool. This version has one
// subcommand:
//
//	spate info [-format json|dot] ./prog [args...]
//
// info builds the program (a package path or directory, or an executable)
// and prints the plan of each job it would execute, without running it: the
// program's Execute sees SPATE_INFO and prints its JobGraph instead.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "nexmark":
		err = nexmark(os.Args[2:])
	case "info":
		err = info(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "spate: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "spate:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: spate <command> [arguments]

commands:
  info [-format json|dot] ./prog [args...]   print the plan of a program's jobs`)
}
