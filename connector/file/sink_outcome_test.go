package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/spate-dev/spate"
)

// published returns the final part files of dir, sorted, and the number of
// lines they hold.
func published(t testing.TB, dir string) (names []string, lines int) {
	t.Helper()
	for _, n := range listDir(t, dir) {
		if strings.HasPrefix(n, "part-") {
			names = append(names, n)
			lines += strings.Count(readFile(t, filepath.Join(dir, n)), "\n")
		}
	}
	return names, lines
}

// TestSinkCloseOutcome: a writer publishes its part files only when closed
// with nil; closed with the job's failure or cancellation it leaves them
// aside under their in-progress names, with what was written.
func TestSinkCloseOutcome(t *testing.T) {
	cases := []struct {
		name          string
		err           error
		wantPublished []string
		wantAside     []string
	}{
		{name: "success", err: nil, wantPublished: []string{"part-0-0", "part-0-1", "part-0-2", "part-0-3"}},
		{name: "failure", err: errors.New("operator \"Map\" (subtask 1/1) failed: boom"),
			wantAside: []string{".part-0-0.inprogress", ".part-0-1.inprogress", ".part-0-2.inprogress", ".part-0-3.inprogress"}},
		{name: "cancel", err: context.Canceled,
			wantAside: []string{".part-0-0.inprogress", ".part-0-1.inprogress", ".part-0-2.inprogress", ".part-0-3.inprogress"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Sink[string](dir, RollSize(20)).Open(context.Background(), spate.SinkInfo{Parallelism: 1})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 { // 9 bytes each: files of 3, 3, 3 and 1 records
				if err := w.Write(fmt.Sprintf("record-%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(tc.err); err != nil {
				t.Fatalf("Close(%v) = %v", tc.err, err)
			}
			names, lines := published(t, dir)
			if !slices.Equal(names, tc.wantPublished) {
				t.Errorf("published %v, want %v", names, tc.wantPublished)
			}
			var aside []string
			total := lines
			for _, n := range listDir(t, dir) {
				if strings.HasPrefix(n, ".") {
					aside = append(aside, n)
					total += strings.Count(readFile(t, filepath.Join(dir, n)), "\n")
				}
			}
			if !slices.Equal(aside, tc.wantAside) {
				t.Errorf("left aside %v, want %v", aside, tc.wantAside)
			}
			if total != 10 {
				t.Errorf("the files hold %d records, want all 10 written", total)
			}
			// A reader of the directory sees all or nothing.
			res := drainAll(t, Lines(dir), 16)
			if want := lines; len(res.recs) != want || tc.err == nil && want != 10 {
				t.Errorf("Lines read %d records, want %d", len(res.recs), want)
			}
		})
	}
}

// failAt panics on record n: the job's operator fails.
func failAt(n int) func(int) string {
	return func(v int) string {
		if v == n {
			panic(fmt.Sprintf("record %d is poisoned", v))
		}
		return fmt.Sprint(v)
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestSinkFailedJobPublishesNothing: a job of 5,000 records whose operator
// fails after about 4,000 leaves no part-* file, also of the sink subtasks
// that had rolled files or saw no failure themselves; the same job without
// the failure publishes every record.
func TestSinkFailedJobPublishesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		poison int // -1: none
	}{{"failed", 3999}, {"succeeded", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			env := spate.NewEnv(spate.WithParallelism(2))
			s := spate.Map(spate.FromSlice(env, seq(5000)), failAt(tc.poison)).Parallelism(1)
			spate.SinkTo(s, Sink[string](dir, RollSize(4096))).Parallelism(2)
			err := env.Execute("poisoned")
			names, lines := published(t, dir)
			if tc.poison < 0 {
				if err != nil {
					t.Fatal(err)
				}
				if lines != 5000 {
					t.Errorf("published %d records in %v, want 5000", lines, names)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "poisoned") {
				t.Fatalf("Execute = %v, want the operator's failure", err)
			}
			if len(names) != 0 {
				t.Errorf("a failed job published %v (%d records)", names, lines)
			}
		})
	}
}

// signalingSource is a slice source whose reader of subtask 1 closes done
// when its subtask ends: the subtask has exhausted its input.
type signalingSource struct {
	recs []int
	done chan struct{}
	once *sync.Once
}

func (s signalingSource) Open(_ context.Context, sp spate.Split) (spate.SourceReader[int], error) {
	return &signalingReader{src: s, split: sp, next: sp.Subtask}, nil
}

type signalingReader struct {
	src   signalingSource
	split spate.Split
	next  int
}

func (r *signalingReader) Read(_ context.Context, buf []int) (int, error) {
	n := 0
	for n < len(buf) && r.next < len(r.src.recs) {
		buf[n] = r.src.recs[r.next]
		n++
		r.next += r.split.Parallelism
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *signalingReader) Close() error {
	if r.split.Subtask == 1 {
		r.src.once.Do(func() { close(r.src.done) })
	}
	return nil
}

// TestSinkSubtaskDoneBeforeFailure: a sink subtask whose own input ended
// does not publish its files when another subtask of the job fails
// afterwards.
func TestSinkSubtaskDoneBeforeFailure(t *testing.T) {
	dir := t.TempDir()
	done := make(chan struct{})
	env := spate.NewEnv(spate.WithParallelism(2))
	src := spate.FromSource(env, "signaling", spate.Source[int](signalingSource{recs: seq(5000), done: done, once: new(sync.Once)}), spate.NoWatermarks[int]())
	mapped := spate.Map(src, func(v int) string {
		if v == 3998 { // subtask 0's, after subtask 1 has ended
			<-done
			panic("subtask 0 fails after subtask 1 finished")
		}
		return fmt.Sprint(v)
	})
	spate.SinkTo(mapped, Sink[string](dir))
	err := env.Execute("late failure")
	if err == nil || !strings.Contains(err.Error(), "subtask 0 fails") {
		t.Fatalf("Execute = %v, want the failure of subtask 0", err)
	}
	if names, lines := published(t, dir); len(names) != 0 {
		t.Errorf("a failed job published %v (%d records)", names, lines)
	}
	if got := listDir(t, dir); !slices.Contains(got, ".part-1-0.inprogress") {
		t.Errorf("files %v: want subtask 1's output left aside as .part-1-0.inprogress", got)
	}
}

// TestSinkCancelledJobPublishesNothing: cancelling a job publishes none of
// its output.
func TestSinkCancelledJobPublishesNothing(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := spate.NewEnv(spate.WithParallelism(1))
	mapped := spate.Map(spate.FromSlice(env, seq(5000)), func(v int) string {
		if v == 4000 {
			cancel()
			<-ctx.Done()
		}
		return fmt.Sprint(v)
	})
	spate.SinkTo(mapped, Sink[string](dir))
	if err := env.ExecuteContext(ctx, "cancelled"); !errors.Is(err, context.Canceled) {
		t.Fatalf("ExecuteContext = %v, want context.Canceled", err)
	}
	if names, lines := published(t, dir); len(names) != 0 {
		t.Errorf("a cancelled job published %v (%d records)", names, lines)
	}
}
