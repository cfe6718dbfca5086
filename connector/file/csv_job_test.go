package file

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

// pacedSource reads a RestorableSource at most 10 records a Read with a
// millisecond between Reads, so that checkpoints complete among the reads,
// and keeps the positions its readers were restored at.
type pacedSource[T any] struct {
	spate.RestorableSource[T]
	mu       *sync.Mutex
	restored *[]filePos
}

func (s pacedSource[T]) Open(ctx context.Context, split spate.Split) (spate.SourceReader[T], error) {
	r, err := s.RestorableSource.Open(ctx, split)
	if err != nil {
		return nil, err
	}
	return pacedReader[T]{r.(spate.CheckpointedReader[T])}, nil
}

func (s pacedSource[T]) Restore(ctx context.Context, split spate.Split, splits []spate.SplitState) (spate.SourceReader[T], error) {
	s.mu.Lock()
	for _, sp := range splits {
		p, err := decodePos(sp.Position)
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		*s.restored = append(*s.restored, p)
	}
	s.mu.Unlock()
	r, err := s.RestorableSource.Restore(ctx, split, splits)
	if err != nil {
		return nil, err
	}
	return pacedReader[T]{r.(spate.CheckpointedReader[T])}, nil
}

type pacedReader[T any] struct{ spate.CheckpointedReader[T] }

func (r pacedReader[T]) Read(ctx context.Context, buf []T) (int, error) {
	time.Sleep(time.Millisecond) // pacing the input, not synchronisation
	return r.CheckpointedReader.Read(ctx, buf[:min(len(buf), 10)])
}

// TestCSVJobSurvivesFailures: a job reading CSV files whose cells span
// lines, with checkpoints, fails twice in the local executor; each time its
// CSV readers resume from the latest checkpoint in the middle of their
// files, and the exactly-once file sink commits every row once.
func TestCSVJobSurvivesFailures(t *testing.T) {
	const files, rows = 4, 1500
	in := t.TempDir()
	var want []string
	for f := range files {
		var b strings.Builder
		b.WriteString("n,text,id\r\n")
		for i := range rows {
			id := f*rows + i
			text := fmt.Sprintf("row %d\nof \"file\" %d", i, f)
			if i%3 == 0 {
				text = fmt.Sprintf("row %d, plain", i)
			}
			fmt.Fprintf(&b, "%d,\"%s\",%d\r\n", i, strings.ReplaceAll(text, `"`, `""`), id)
			want = append(want, fmt.Sprintf("%d %q %d", id, text, i))
		}
		write(t, filepath.Join(in, fmt.Sprintf("in-%d.csv", f)), b.String())
	}
	slices.Sort(want)

	var mu sync.Mutex
	var restored []filePos
	src := pacedSource[csvRow]{RestorableSource: CSV[csvRow]([]string{in}).(csvSource[csvRow]), mu: &mu, restored: &restored}
	env := spate.NewEnv(spate.WithParallelism(2), spate.WithConfig(map[string]string{
		"execution.checkpointing.interval":      "10ms",
		"restart-strategy.type":                 "fixed-delay",
		"restart-strategy.fixed-delay.delay":    "0s",
		"restart-strategy.fixed-delay.attempts": "5",
	}))
	var seen, failures atomic.Int64
	rowsIn := spate.FromSource(env, "CSV", spate.Source[csvRow](src), spate.NoWatermarks[csvRow]())
	lines := spate.Map(rowsIn, func(r csvRow) string {
		switch seen.Add(1) {
		case files * rows / 4, files * rows * 2 / 3:
			failures.Add(1)
			panic("injected failure")
		}
		return fmt.Sprintf("%d %q %d", r.ID, r.Text, r.N)
	})
	out := t.TempDir()
	spate.SinkTo(lines, Sink[string](out))
	if err := env.Execute("csv-exactly-once"); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if failures.Load() != 2 {
		t.Fatalf("%d failures injected, want 2", failures.Load())
	}
	mid := 0
	for _, p := range restored {
		if !p.done && p.off > 0 {
			mid++
		}
	}
	if mid == 0 {
		t.Fatalf("no reader resumed in the middle of a file (restored at %+v): the restarts prove nothing", restored)
	}
	got := committedLines(t, out)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		dups := 0
		for i := 1; i < len(got); i++ {
			if got[i] == got[i-1] {
				dups++
			}
		}
		t.Fatalf("committed %d lines (%d duplicates), want the %d rows once each", len(got), dups, len(want))
	}
	t.Logf("%d rows; %d failures; restored positions %+v", len(want), failures.Load(), restored)
}
