package file

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

// txnWriter opens subtask 0's writer of a sink in dir and begins
// transactions for attempt with the restored committables.
func txnWriter(t *testing.T, dir string, attempt int64, restored [][]byte) *sinkWriter[string] {
	t.Helper()
	return txnSubtaskWriter(t, dir, 0, 1, attempt, restored)
}

// txnSubtaskWriter opens subtask's writer of a sink in dir at parallelism
// and begins transactions for attempt with the restored committables.
func txnSubtaskWriter(t *testing.T, dir string, subtask, parallelism int, attempt int64, restored [][]byte) *sinkWriter[string] {
	t.Helper()
	w, err := Sink[string](dir).Open(context.Background(), spate.SinkInfo{Subtask: subtask, Parallelism: parallelism})
	if err != nil {
		t.Fatal(err)
	}
	sw := w.(*sinkWriter[string])
	if err := sw.Begin(attempt, restored); err != nil {
		t.Fatalf("Begin(%d): %v", attempt, err)
	}
	return sw
}

func writeN(t *testing.T, w *sinkWriter[string], from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := w.Write(fmt.Sprint("line ", i)); err != nil {
			t.Fatal(err)
		}
	}
}

func prepare(t *testing.T, w *sinkWriter[string], id int64) []byte {
	t.Helper()
	c, err := w.PrepareCommit(id)
	if err != nil {
		t.Fatalf("PrepareCommit(%d): %v", id, err)
	}
	return c
}

// committedLines returns the lines of dir's visible files, as a reader of
// the directory sees them.
func committedLines(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	for _, n := range listDir(t, dir) {
		if !strings.HasPrefix(n, ".") {
			lines = append(lines, strings.Split(strings.TrimSuffix(readFile(t, filepath.Join(dir, n)), "\n"), "\n")...)
		}
	}
	return lines
}

// TestSinkTwoPhaseCommit: pre-committed files stay hidden until their
// checkpoint commits; commits are idempotent; a restore commits what the
// restored checkpoint pre-committed and aborts what the failed attempt
// wrote after it, and the output holds every line once.
func TestSinkTwoPhaseCommit(t *testing.T) {
	dir := t.TempDir()
	w := txnWriter(t, dir, 1, nil)
	writeN(t, w, 0, 5)
	c1 := prepare(t, w, 1)
	writeN(t, w, 5, 3)
	c2 := prepare(t, w, 2)
	if got := committedLines(t, dir); len(got) != 0 {
		t.Fatalf("visible before any commit: %v", got)
	}
	for range 2 { // the second commit finds it done
		if err := w.Commit(c1); err != nil {
			t.Fatalf("Commit(checkpoint 1): %v", err)
		}
	}
	if got, want := committedLines(t, dir), []string{"line 0", "line 1", "line 2", "line 3", "line 4"}; !slices.Equal(got, want) {
		t.Fatalf("after checkpoint 1 committed: %v, want %v", got, want)
	}
	if c, err := w.PrepareCommit(3); err != nil || c != nil {
		t.Fatalf("PrepareCommit with nothing written = %q, %v; want nothing", c, err)
	}
	// Attempt 1 writes on after checkpoint 2 and dies before checkpoint 2's
	// completion reached it: the restore from checkpoint 2 commits c2 and
	// aborts the rest.
	writeN(t, w, 100, 2)
	if err := w.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	aborted := filepath.Base(w.path)
	if !strings.HasSuffix(aborted, ".a1.inprogress") {
		t.Fatalf("in-progress file %s does not name its attempt", aborted)
	}
	if pre := hiddenFiles(t, dir, preCommittedSuffix); len(pre) != 1 || !strings.HasSuffix(pre[0], ".a1.pending") {
		t.Fatalf("pre-committed files %v, want checkpoint 2's file, named with its attempt", pre)
	}

	w2 := txnWriter(t, dir, 2, [][]byte{c2})
	if slices.Contains(listDir(t, dir), aborted) {
		t.Fatalf("restore left %s, written after the restored checkpoint", aborted)
	}
	writeN(t, w2, 8, 4)
	c3 := prepare(t, w2, 3)
	if err := w2.Commit(c3); err != nil {
		t.Fatal(err)
	}
	if err := w2.Commit(c2); err != nil { // again, after the restore's commit
		t.Fatalf("Commit(checkpoint 2) again: %v", err)
	}
	var want []string
	for i := range 12 {
		want = append(want, fmt.Sprint("line ", i))
	}
	got := committedLines(t, dir)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
	if err := w2.Close(nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range listDir(t, dir) {
		if strings.HasPrefix(n, ".") {
			t.Errorf("%s left after the job's success", n)
		}
	}
}

// TestSinkCommitNeverOverwrites: a committable whose final file exists
// while its in-progress file does too is refused, and a committable naming
// files outside the directory is refused.
func TestSinkCommitNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	w := txnWriter(t, dir, 1, nil)
	writeN(t, w, 0, 1)
	c := prepare(t, w, 1)
	write(t, filepath.Join(dir, "part-0-0"), "someone else's\n")
	if err := w.Commit(c); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Fatalf("Commit onto an existing file = %v, want a refusal", err)
	}
	if got := readFile(t, filepath.Join(dir, "part-0-0")); got != "someone else's\n" {
		t.Fatalf("the existing file now holds %q", got)
	}
	if err := w.Commit([]byte(`{"files":[{"inProgress":"../x","final":"y"}]}`)); err == nil || !strings.Contains(err.Error(), "not part files") {
		t.Fatalf("Commit of a path outside the directory = %v", err)
	}
}

// hiddenFiles returns dir's hidden files whose names end with suffix.
func hiddenFiles(t *testing.T, dir, suffix string) []string {
	t.Helper()
	var names []string
	for _, n := range listDir(t, dir) {
		if strings.HasPrefix(n, ".") && strings.HasSuffix(n, suffix) {
			names = append(names, n)
		}
	}
	return names
}

// TestSinkRescaledRestoreKeepsPreCommitted: a restore at another
// parallelism hands old subtask 0's committable to new subtask 1. New
// subtask 0 begins first and aborts its own in-progress files of the
// earlier attempt, but not the file old subtask 0 pre-committed, which new
// subtask 1 then commits: the line is in the output once, and what old
// subtask 0 wrote after the checkpoint is not.
func TestSinkRescaledRestoreKeepsPreCommitted(t *testing.T) {
	dir := t.TempDir()
	old := txnSubtaskWriter(t, dir, 0, 1, 1, nil)
	writeN(t, old, 0, 3)
	c1 := prepare(t, old, 1)
	writeN(t, old, 100, 2) // after checkpoint 1: aborted by the restore
	if err := old.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	aborted := filepath.Base(old.path)
	// Attempt 1 dies before checkpoint 1's completion reached it; attempt 2
	// restores checkpoint 1 at parallelism 2, old subtask 0's committable
	// going to new subtask 1. New subtask 0 begins first.
	w0 := txnSubtaskWriter(t, dir, 0, 2, 2, [][]byte{})
	if slices.Contains(listDir(t, dir), aborted) {
		t.Fatalf("restore left %s, written after the restored checkpoint", aborted)
	}
	if pre := hiddenFiles(t, dir, preCommittedSuffix); len(pre) != 1 {
		t.Fatalf("after new subtask 0's Begin the pre-committed files are %v, want old subtask 0's one", pre)
	}
	w1 := txnSubtaskWriter(t, dir, 1, 2, 2, [][]byte{c1})
	// Both write on; new subtask 0's counters go on after the file that
	// subtask 1 committed for it, so nothing is overwritten.
	writeN(t, w0, 3, 2)
	writeN(t, w1, 5, 2)
	for _, w := range []*sinkWriter[string]{w0, w1} {
		if err := w.Commit(prepare(t, w, 2)); err != nil {
			t.Fatalf("Commit(checkpoint 2) of subtask %d: %v", w.subtask, err)
		}
	}
	got := committedLines(t, dir)
	slices.Sort(got)
	var want []string
	for i := range 7 {
		want = append(want, fmt.Sprint("line ", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
	if hidden := hiddenFiles(t, dir, ""); len(hidden) != 0 {
		t.Errorf("hidden files %v left after every checkpoint committed", hidden)
	}
}

// TestSinkUncompletedPreCommitStaysAside: a pre-committed file whose
// checkpoint never completed stays aside, hidden, after a restore of an
// earlier checkpoint; the restored attempt's counters go on after it.
func TestSinkUncompletedPreCommitStaysAside(t *testing.T) {
	dir := t.TempDir()
	w := txnWriter(t, dir, 1, nil)
	writeN(t, w, 0, 2)
	c1 := prepare(t, w, 1)
	writeN(t, w, 2, 2)
	prepare(t, w, 2) // checkpoint 2 never completes
	pre := hiddenFiles(t, dir, preCommittedSuffix)
	w2 := txnWriter(t, dir, 2, [][]byte{c1})
	if got := hiddenFiles(t, dir, ""); !slices.Equal(got, pre[1:]) {
		t.Fatalf("after the restore of checkpoint 1 the hidden files are %v, want checkpoint 2's pre-committed %v", got, pre[1:])
	}
	writeN(t, w2, 2, 2)
	if err := w2.Commit(prepare(t, w2, 3)); err != nil {
		t.Fatal(err)
	}
	if got, want := committedLines(t, dir), []string{"line 0", "line 1", "line 2", "line 3"}; !slices.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
	if got := hiddenFiles(t, dir, ""); !slices.Equal(got, pre[1:]) {
		t.Fatalf("hidden files %v, want %v", got, pre[1:])
	}
}
