package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/checkpoint"
)

const job = "0123456789abcdef0123456789abcdef"

// writeCheckpoint writes checkpoint id with two subtasks' state files and
// its metadata, as subtasks and the JobManager do.
func writeCheckpoint(t *testing.T, s Store, id checkpoint.ID) checkpoint.Metadata {
	t.Helper()
	ctx := context.Background()
	m := checkpoint.Metadata{ID: id, Attempt: 1, TimestampMs: 1000 * int64(id)}
	for sub := range 2 {
		h, err := WriteState(ctx, s, job, id, fmt.Sprintf("0-%d-1-state", sub), []byte(fmt.Sprintf("state of subtask %d at checkpoint %d", sub, id)))
		if err != nil {
			t.Fatal(err)
		}
		h.Kind = "keyed"
		m.Subtasks = append(m.Subtasks, checkpoint.SubtaskState{Vertex: 0, Subtask: sub, Attempt: 1, States: []checkpoint.Handle{h}})
	}
	// A small state inline, and one handle without a checksum (computed).
	m.Subtasks[0].States = append(m.Subtasks[0].States, checkpoint.Handle{Kind: "source-splits", Inline: []byte("offset=42"), Size: 9})
	m.Subtasks = append(m.Subtasks, checkpoint.SubtaskState{Vertex: 1, Subtask: 0, Finished: true})
	if _, err := WriteMetadata(ctx, s, job, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func open(t *testing.T) (Store, string) {
	dir := t.TempDir()
	s, err := Open("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestOpen(t *testing.T) {
	for _, tt := range []struct{ dir, wantErr string }{
		{dir: "", wantErr: "state.checkpoints.dir"},
		{dir: "gs://bucket/x", wantErr: `scheme "gs" is not supported`},
		{dir: "file://host/x", wantErr: "names no host"},
	} {
		if _, err := Open(tt.dir); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Open(%q) = %v, want an error containing %q", tt.dir, err, tt.wantErr)
		}
	}
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "plain", "path"))
	if err != nil {
		t.Fatal(err)
	}
	if u := s.URL("a/b"); u != "file://"+filepath.Join(dir, "plain", "path", "a", "b") {
		t.Errorf("URL = %s", u)
	}
}

func TestRoundTrip(t *testing.T) {
	s, _ := open(t)
	want := writeCheckpoint(t, s, 3)
	got, err := Load(context.Background(), s, job, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != 3 || len(got.Subtasks) != 3 || !got.Subtasks[2].Finished || got.Size() != want.Size() {
		t.Fatalf("Load = %+v, want %+v", got, want)
	}
	for _, st := range got.Subtasks {
		for _, h := range st.States {
			if h.SHA256 == "" {
				t.Errorf("subtask %d/%d: a handle without a checksum in the metadata: %+v", st.Vertex, st.Subtask, h)
			}
		}
	}
	data, err := ReadState(context.Background(), s, got.Subtasks[1].States[0])
	if err != nil || string(data) != "state of subtask 1 at checkpoint 3" {
		t.Fatalf("ReadState = %q, %v", data, err)
	}
	ids, err := Checkpoints(context.Background(), s, job)
	if err != nil || len(ids) != 1 || ids[0] != 3 {
		t.Fatalf("Checkpoints = %v, %v; want [3]", ids, err)
	}
	if err := Discard(context.Background(), s, job, 3); err != nil {
		t.Fatal(err)
	}
	if ids, _ := Checkpoints(context.Background(), s, job); len(ids) != 0 {
		t.Fatalf("after Discard: %v", ids)
	}
}

// TestDamagedSkipped damages checkpoint 2 in each way and checks that
// LoadLatest skips it with a message naming the damage, and uses 1.
func TestDamagedSkipped(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(t *testing.T, dir string)
		wantSkip []string
	}{
		{name: "truncated metadata", damage: func(t *testing.T, dir string) {
			p := filepath.Join(dir, job, "chk-2", MetadataName)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o600)
		}, wantSkip: []string{"chk-2/_metadata is truncated or corrupt"}},
		{name: "corrupt metadata", damage: func(t *testing.T, dir string) {
			p := filepath.Join(dir, job, "chk-2", MetadataName)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"attempt":1`), []byte(`"attempt":7`), 1), 0o600)
		}, wantSkip: []string{"chk-2/_metadata is corrupt: its checksum does not match"}},
		{name: "missing metadata", damage: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, job, "chk-2", MetadataName))
		}, wantSkip: []string{"checkpoint 2 of job " + job + " has no readable"}},
		{name: "missing state file", damage: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, job, "chk-2", "0-1-1-state"))
		}, wantSkip: []string{"subtask 0/1", "chk-2/0-1-1-state is missing"}},
		{name: "corrupt state file", damage: func(t *testing.T, dir string) {
			p := filepath.Join(dir, job, "chk-2", "0-0-1-state")
			b, _ := os.ReadFile(p)
			b[0] ^= 0xff
			os.WriteFile(p, b, 0o600)
		}, wantSkip: []string{"subtask 0/0", "chk-2/0-0-1-state is corrupt: its SHA-256 is"}},
		{name: "truncated state file", damage: func(t *testing.T, dir string) {
			p := filepath.Join(dir, job, "chk-2", "0-0-1-state")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:3], 0o600)
		}, wantSkip: []string{"chk-2/0-0-1-state has 3 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := open(t)
			writeCheckpoint(t, s, 1)
			writeCheckpoint(t, s, 2)
			tt.damage(t, dir)
			m, path, skipped, ok, err := LoadLatest(context.Background(), s, job, []checkpoint.ID{2, 1}, nil)
			if err != nil || !ok {
				t.Fatalf("LoadLatest = ok %v, %v", ok, err)
			}
			if m.ID != 1 || !strings.HasSuffix(path, "chk-1/_metadata") {
				t.Fatalf("LoadLatest chose %d (%s), want the previous checkpoint 1", m.ID, path)
			}
			if len(skipped) != 1 || !errors.Is(skipped[0], ErrDamaged) {
				t.Fatalf("skipped = %v, want checkpoint 2 as damaged", skipped)
			}
			for _, w := range tt.wantSkip {
				if !strings.Contains(skipped[0].Error(), w) {
					t.Errorf("skip message %q does not name %q", skipped[0], w)
				}
			}
		})
	}
}

// faultyStore fails the Nth write (Create+Write+Close or Publish): it
// writes half the bytes and fails, as a full disk or a lost connection.
type faultyStore struct {
	Store
	failAt, writes int
}

type faultyWriter struct {
	io.WriteCloser
	fail bool
}

func (w *faultyWriter) Write(p []byte) (int, error) {
	if w.fail {
		w.WriteCloser.Write(p[:len(p)/2])
		return len(p) / 2, errors.New("injected write failure: no space left on device")
	}
	return w.WriteCloser.Write(p)
}

func (f *faultyStore) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	w, err := f.Store.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	f.writes++
	return &faultyWriter{WriteCloser: w, fail: f.writes == f.failAt}, nil
}

func (f *faultyStore) Publish(ctx context.Context, name string, data []byte) error {
	w, err := f.Create(ctx, name)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// TestFailedWriteNeverCompletes runs one checkpoint of a job of three
// subtasks through a coordinator and a store that fails its Nth write, for
// every N: the state files' and the metadata's. The checkpoint never
// completes (no notify-complete, nothing to restore), and a later one
// written without faults does.
func TestFailedWriteNeverCompletes(t *testing.T) {
	ctx := context.Background()
	base := time.UnixMilli(0)
	for n := 1; n <= 4; n++ {
		t.Run(fmt.Sprintf("write %d fails", n), func(t *testing.T) {
			inner, dir := open(t)
			s := &faultyStore{Store: inner, failAt: n}
			c := checkpoint.New(checkpoint.Config{Interval: time.Second, Timeout: time.Minute, TolerableFailures: 5}, []checkpoint.Vertex{{Parallelism: 3}})
			c.Deployed(base, 1, nil)
			for i := range 3 {
				c.TaskState(base, 1, checkpoint.Subtask{Vertex: 0, Index: i}, "RUNNING")
			}
			var eff []checkpoint.Effect
			complete := func(at time.Duration) []checkpoint.Effect {
				var all []checkpoint.Effect
				now := base.Add(at)
				eff := c.Tick(now)
				all = append(all, eff...)
				var id checkpoint.ID
				for _, e := range eff {
					if tr, ok := e.(checkpoint.Trigger); ok {
						id = tr.ID
					}
				}
				if id == 0 {
					t.Fatalf("no trigger at %v: %v", at, eff)
				}
				for i := range 3 {
					st := checkpoint.Subtask{Vertex: 0, Index: i}
					h, err := WriteState(ctx, s, job, id, fmt.Sprintf("0-%d-1", i), []byte(strings.Repeat("x", 100+i)))
					if err != nil {
						_, e := c.Decline(now, checkpoint.Decline{Subtask: st, Attempt: 1, ID: id, Reason: checkpoint.SnapshotFailed, Message: err.Error()})
						all = append(all, e...)
						continue
					}
					_, e := c.Acknowledge(now, checkpoint.Ack{Subtask: st, Attempt: 1, ID: id, States: []checkpoint.Handle{h}})
					all = append(all, e...)
					for _, x := range e {
						if wm, ok := x.(checkpoint.WriteMetadata); ok {
							path, err := WriteMetadata(ctx, s, job, wm.Meta)
							_, e := c.MetadataWritten(now, wm.Meta.ID, 1, path, err)
							all = append(all, e...)
						}
					}
				}
				for _, x := range all {
					if d, ok := x.(checkpoint.Discard); ok {
						Discard(ctx, s, job, d.ID)
					}
				}
				return all
			}
			eff = complete(time.Second)
			for _, e := range eff {
				if _, ok := e.(checkpoint.NotifyComplete); ok {
					t.Fatalf("checkpoint 1 completed although write %d failed: %v", n, eff)
				}
			}
			if _, ok := c.Latest(); ok {
				t.Fatal("the coordinator holds a completed checkpoint")
			}
			ids, _ := Checkpoints(ctx, inner, job)
			if _, _, _, ok, _ := LoadLatest(ctx, inner, job, append(ids, 1), nil); ok {
				t.Fatalf("storage yields a checkpoint to restore although write %d failed", n)
			}
			if leftovers, _ := inner.List(ctx, Dir(job, 1)); len(leftovers) != 0 {
				t.Errorf("the failed checkpoint left %v in %s", leftovers, dir)
			}
			// The next one, without a fault, completes and loads.
			eff = complete(2 * time.Second)
			last, ok := c.Latest()
			if !ok || last.ID != 2 {
				t.Fatalf("checkpoint 2 did not complete: %v", eff)
			}
			if m, _, _, ok, err := LoadLatest(ctx, inner, job, []checkpoint.ID{1, 2}, nil); !ok || err != nil || m.ID != 2 {
				t.Fatalf("LoadLatest after checkpoint 2 = %d, %v, %v", m.ID, ok, err)
			}
		})
	}
}

// TestLargeInlineSpilled: an inline state above InlineLimit is written to a
// state file of its own; the metadata names it, and it loads back whole.
func TestLargeInlineSpilled(t *testing.T) {
	s, dir := open(t)
	ctx := context.Background()
	big := bytes.Repeat([]byte("k"), InlineLimit+1)
	m := checkpoint.Metadata{ID: 4, Attempt: 2, Subtasks: []checkpoint.SubtaskState{{Vertex: 1, Subtask: 0, Attempt: 2, States: []checkpoint.Handle{
		{Kind: "subtask", Inline: big, Size: int64(len(big)), KeyGroupStart: 0, KeyGroupEnd: 63},
		{Kind: "subtask", Inline: []byte("small"), Size: 5},
	}}}}
	if _, err := WriteMetadata(ctx, s, job, m); err != nil {
		t.Fatal(err)
	}
	got, err := Load(ctx, s, job, 4)
	if err != nil {
		t.Fatal(err)
	}
	h := got.Subtasks[0].States[0]
	if h.URL == "" || h.Inline != nil || h.KeyGroupEnd != 63 || h.SHA256 == "" {
		t.Fatalf("large state handle = %+v, want a state file", h)
	}
	if fi, err := os.Stat(filepath.Join(dir, job, "chk-4", "1-0-2-inline-0")); err != nil || fi.Size() != int64(len(big)) {
		t.Fatalf("spilled state file: %v", err)
	}
	if data, err := ReadState(ctx, s, h); err != nil || !bytes.Equal(data, big) {
		t.Fatalf("ReadState: %d bytes, %v", len(data), err)
	}
	if small := got.Subtasks[0].States[1]; string(small.Inline) != "small" || small.URL != "" {
		t.Fatalf("small state handle = %+v, want it inline", small)
	}
	// The caller's metadata is not changed.
	if m.Subtasks[0].States[0].URL != "" {
		t.Fatal("WriteMetadata changed its argument")
	}
}
