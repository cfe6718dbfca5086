// Command wordcount counts the words of text files: one word and its count
// per output line, the words being the maximal runs of letters and digits.
//
//	go run ./examples/wordcount [-p N] FILE...
//
// The counts are keyed state; each word's final count is emitted when the
// bounded input ends (a timer at the end of time fires on the final
// watermark).
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"unicode"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/file"
)

// WordCount is a word and how often it occurred.
type WordCount struct {
	Word  string
	Count int
}

func (w WordCount) String() string { return fmt.Sprintf("%d %s", w.Count, w.Word) }

func main() {
	p := flag.Int("p", 0, "parallelism (default: parallelism.default from the configuration, else the number of CPUs)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: wordcount [-p N] FILE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	env := spate.NewEnv(spate.WithParallelism(*p))
	spate.SinkTo(Pipeline(env, flag.Args()...), spate.Print[WordCount]()).Parallelism(1)
	if err := env.Execute("wordcount"); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

// Pipeline declares the word count of paths on env and returns the final
// counts.
func Pipeline(env *spate.Env, paths ...string) spate.Stream[WordCount] {
	lines := spate.FromSource(env, "Files", file.Lines(paths...), spate.NoWatermarks[string]())
	words := spate.FlatMap(lines, func(line string, emit func(string)) {
		for _, w := range strings.FieldsFunc(line, func(r rune) bool { return !isWordRune(r) }) {
			emit(w)
		}
	}).Name("Split")
	keyed := spate.KeyBy(words, func(w string) string { return w })
	return spate.KeyedProcess(keyed, func() spate.KeyedProcessFunction[string, string, WordCount] { return &counter{} }).Name("Count")
}

// isWordRune matches tr's [:alnum:] in the C locale: ASCII letters and
// digits.
func isWordRune(r rune) bool {
	return r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

type counter struct {
	count *spate.ValueState[string, int]
}

func (c *counter) Open(ctx *spate.KeyedContext[string, WordCount]) error {
	c.count = spate.NewValueState[int](ctx.State(), "count")
	return nil
}

func (c *counter) ProcessElement(ctx *spate.KeyedContext[string, WordCount], w string) error {
	n, seen := c.count.Value()
	if !seen {
		ctx.RegisterEventTimeTimer(math.MaxInt64) // fires when the input ends
	}
	c.count.Update(n + 1)
	return nil
}

func (c *counter) OnTimer(ctx *spate.KeyedContext[string, WordCount], _ int64) error {
	n, _ := c.count.Value()
	ctx.Collect(WordCount{Word: ctx.Key(), Count: n})
	c.count.Clear()
	return nil
}
