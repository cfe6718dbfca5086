package nexmark

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/spate-dev/spate"
)

func readAll(t *testing.T, r spate.SourceReader[Event], bufSize int) []Event {
	t.Helper()
	var out []Event
	buf := make([]Event, bufSize)
	for {
		n, err := r.Read(context.Background(), buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			if n != 0 {
				t.Fatalf("io.EOF with %d records", n)
			}
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestSourceSplits(t *testing.T) {
	const total, par = 10_000, 3
	cfg := Config{NumEvents: total}
	src := NewSource(cfg)
	merged := make([]Event, total)
	count := 0
	for k := range par {
		r, err := src.Open(context.Background(), spate.Split{Subtask: k, Parallelism: par})
		if err != nil {
			t.Fatal(err)
		}
		evs := readAll(t, r, 64)
		for j, e := range evs {
			merged[k+j*par] = e
		}
		count += len(evs)
		// Reads after the end keep returning io.EOF.
		if n, err := r.Read(context.Background(), make([]Event, 4)); n != 0 || err != io.EOF {
			t.Fatalf("read after end: %d, %v", n, err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if count != total {
		t.Fatalf("read %d events, want %d", count, total)
	}
	if !bytes.Equal(jsonLines(t, merged), jsonLines(t, generateAll(t, cfg))) {
		t.Fatal("subtasks' events differ from the sequence")
	}
	if _, err := src.Open(context.Background(), spate.Split{Subtask: 0, Parallelism: 0}); err == nil {
		t.Error("Open with parallelism 0 succeeded")
	}
}

func TestSourceRateLimited(t *testing.T) {
	// 60 events at 10,000/s span 5 ms of event time.
	src := NewSource(Config{NumEvents: 60, RateLimited: true})
	r, err := src.Open(context.Background(), spate.Split{Subtask: 0, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	buf := make([]Event, 100)
	n, err := r.Read(context.Background(), buf)
	if err != nil || n < 10 || n >= 60 {
		t.Fatalf("first read: %d events, %v; want those of the first milliseconds", n, err)
	}
	evs := append(readAll(t, r, 100), buf[:n]...)
	if len(evs) != 60 {
		t.Fatalf("read %d events, want 60", len(evs))
	}
	if el := time.Since(start); el < 4*time.Millisecond {
		t.Errorf("60 rate-limited events took %v, want at least 5 ms", el)
	}

	// A cancelled context ends a waiting read.
	r, _ = NewSource(Config{RateLimited: true, FirstEventRate: 1}).Open(context.Background(), spate.Split{Subtask: 0, Parallelism: 1})
	ctx, cancel := context.WithCancel(context.Background())
	if n, err := r.Read(ctx, buf); n != 1 || err != nil {
		t.Fatalf("first read at 1 event/s: %d, %v", n, err)
	}
	cancel()
	if _, err := r.Read(ctx, buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("read with cancelled context: %v", err)
	}
}
