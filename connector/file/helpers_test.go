package file

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/spate-dev/spate"
)

// drainResult is everything one reader yielded.
type drainResult[T any] struct {
	recs []T
	errs []*spate.RecordError
}

// drain opens src for split and reads it to io.EOF with a buffer of bufSize,
// collecting the records and the record errors. Any other error is returned.
func drain[T any](t testing.TB, src spate.Source[T], split spate.Split, bufSize int) (drainResult[T], error) {
	t.Helper()
	var res drainResult[T]
	ctx := context.Background()
	r, err := src.Open(ctx, split)
	if err != nil {
		return res, err
	}
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	buf := make([]T, bufSize)
	for range 1 << 20 {
		n, err := r.Read(ctx, buf)
		if n < 0 || n > len(buf) {
			t.Fatalf("Read returned n = %d with a buffer of %d", n, len(buf))
		}
		res.recs = append(res.recs, buf[:n]...)
		if err == nil {
			if n == 0 {
				t.Fatalf("Read returned (0, nil) from a bounded file source")
			}
			continue
		}
		if err == io.EOF {
			if n != 0 {
				t.Fatalf("Read returned io.EOF with n = %d", n)
			}
			return res, nil
		}
		var re *spate.RecordError
		if errors.As(err, &re) {
			res.errs = append(res.errs, re)
			continue
		}
		return res, err
	}
	t.Fatalf("reader did not end")
	return res, nil
}

// drainAll drains src with parallelism 1, failing the test on errors other
// than record errors.
func drainAll[T any](t testing.TB, src spate.Source[T], bufSize int) drainResult[T] {
	t.Helper()
	res, err := drain(t, src, spate.Split{Subtask: 0, Parallelism: 1}, bufSize)
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	return res
}
