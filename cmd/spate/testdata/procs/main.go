// Command procs is a job whose operator does what a TaskManager must
// survive, for the process tests: -mode longline prints one line of -bytes
// bytes and then more lines; -mode lines prints -lines numbered lines of
// 100 bytes; -mode inherit starts `sleep 30` with the
// worker's standard output and writes its pid to -pidfile; -mode effects
// appends a line to -file every few milliseconds forever, ignoring
// cancellation, as user code with side effects may. -main-child starts
// `sleep 30` from main itself (not in a worker) with main's standard
// output and error, and writes its pid to the file named.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate"
)

func main() {
	mode := flag.String("mode", "longline", "longline, lines, inherit or effects")
	lines := flag.Int("lines", 40000, "how many lines -mode lines prints")
	size := flag.Int("bytes", 3<<19, "the long line's length, for -mode longline")
	pidFile := flag.String("pidfile", "", "where -mode inherit writes its child's pid")
	file := flag.String("file", "", "the file -mode effects appends to")
	mainChild := flag.String("main-child", "", "start a child from main and write its pid to this file")
	flag.Parse()
	if *mainChild != "" && os.Getenv("SPATE_WORKER_DEPLOYMENT") == "" {
		sleep(*mainChild)
	}
	env := spate.NewEnv(spate.WithParallelism(1))
	src := spate.FromSlice(env, []int{1})
	out := spate.Map(src, func(int) int {
		switch *mode {
		case "longline":
			// One line, no newline inside, then three short ones.
			fmt.Println(longLine(*size))
			for i := 1; i <= 3; i++ {
				fmt.Printf("after the long line %d\n", i)
			}
		case "lines":
			for i := range *lines {
				fmt.Printf("line %06d %s\n", i, strings.Repeat("x", 88))
			}
		case "inherit":
			fmt.Println("started sleep", sleep(*pidFile))
		case "effects":
			f, err := os.OpenFile(*file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				panic(err)
			}
			for i := 0; ; i++ {
				fmt.Fprintf(f, "%d effect %d\n", os.Getpid(), i)
				time.Sleep(5 * time.Millisecond)
			}
		}
		return 0
	})
	spate.SinkTo(spate.Filter(out, func(int) bool { return false }), spate.Print[int]())
	if err := env.Execute("procs-" + *mode); err != nil {
		fmt.Fprintln(os.Stderr, "procs:", err)
		os.Exit(1)
	}
}

// sleep starts `sleep 30` with this process's standard output and error,
// writes its pid to pidFile and returns it.
func sleep(pidFile string) int {
	cmd := exec.Command("sleep", "30")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		panic(err)
	}
	return cmd.Process.Pid
}

// longLine is n bytes of digits, each 10-byte block numbered, so that a
// reader can tell a lost or reordered piece.
func longLine(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%09d.", i)
	}
	return b.String()[:n]
}
