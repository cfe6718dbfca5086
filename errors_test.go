package spate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spate-dev/spate"
	"github.com/spate-dev/spate/connector/datagen"
	"github.com/spate-dev/spate/internal/exec"
)

func TestPanicInMapNamesOperatorAndSubtask(t *testing.T) {
	env := newEnv(1)
	nums := make([]int, 100)
	for i := range nums {
		nums[i] = i
	}
	src := spate.FromSlice(env, nums)
	boom := spate.Map(src.Rebalance(), func(v int) int {
		if v == 42 {
			panic(fmt.Sprintf("cannot map %d", v))
		}
		return v
	}).Name("boom").Parallelism(2)
	spate.Collect(boom)
	err := env.Execute(t.Name())
	if err == nil {
		t.Fatal("Execute succeeded although the map function panicked")
	}
	msg := err.Error()
	for _, want := range []string{`operator "boom"`, "subtask", "/2", "cannot map 42", t.Name()} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	// The root package's tests may use the internal types.
	var se *exec.SubtaskError
	if !errors.As(err, &se) {
		t.Fatalf("error %q is not a *exec.SubtaskError", err)
	}
	if se.Operator != "boom" || se.Parallelism != 2 || se.Subtask < 0 || se.Subtask > 1 {
		t.Errorf("SubtaskError{Operator: %q, Subtask: %d, Parallelism: %d}, want operator boom of 2 subtasks", se.Operator, se.Subtask, se.Parallelism)
	}
	if !strings.Contains(se.Stack, "panic") {
		t.Errorf("SubtaskError.Stack of a panic is %q, want the goroutine stack", se.Stack)
	}
	var pe *exec.PanicError
	if !errors.As(err, &pe) || pe.Value != "cannot map 42" {
		t.Errorf("error %q does not wrap the panic value as *exec.PanicError", err)
	}
}

var errInvalidRecord = errors.New("invalid record")

func TestErrorFromKeyedProcessFailsJob(t *testing.T) {
	for _, p := range []int{1, 3} {
		t.Run(fmt.Sprintf("parallelism=%d", p), func(t *testing.T) {
			env := newEnv(p)
			var closed atomic.Int64
			ks := spate.KeyBy(spate.FromSlice(env, stateInput), func(v stIn) string { return v.Key })
			out := spate.KeyedProcess(ks, func() spate.KeyedProcessFunction[string, stIn, stOut] {
				return closingFn{&stFn{process: func(ctx *stCtx, v stIn) error {
					if v.V < 0 {
						return fmt.Errorf("key %s value %d: %w", v.Key, v.V, errInvalidRecord)
					}
					return nil
				}}, &closed}
			}).Name("validate")
			spate.Collect(out)
			err := env.Execute(t.Name())
			if !errors.Is(err, errInvalidRecord) {
				t.Fatalf("Execute: %v, want an error wrapping errInvalidRecord", err)
			}
			if msg := err.Error(); !strings.Contains(msg, `operator "validate"`) || !strings.Contains(msg, "value -") {
				t.Errorf("error %q does not name the operator and the cause", msg)
			}
			var se *exec.SubtaskError
			if errors.As(err, &se) && se.Stack != "" {
				t.Errorf("a returned error carries a panic stack: %q", se.Stack)
			}
			// Every subtask's function is closed, also after a failure.
			if n := closed.Load(); n != int64(p) {
				t.Errorf("Close called %d times, want once per subtask (%d)", n, p)
			}
		})
	}
}

// closingFn counts the calls of Close.
type closingFn struct {
	*stFn
	closed *atomic.Int64
}

func (f closingFn) Close() error {
	f.closed.Add(1)
	return nil
}

// countSink counts the records written to it. If reached is set, it is
// closed once at records have been written; if stopped is set, late
// counts the records written after it is.
type countSink[T any] struct {
	n       *atomic.Int64
	at      int64
	reached chan struct{}
	stopped *atomic.Bool
	late    *atomic.Int64
}

func (s countSink[T]) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[T], error) {
	return s, nil
}
func (s countSink[T]) Write(T) error {
	if s.stopped != nil && s.stopped.Load() {
		s.late.Add(1)
	}
	if s.n.Add(1) == s.at && s.reached != nil {
		close(s.reached)
	}
	return nil
}
func (s countSink[T]) Close(error) error { return nil }

// waitGoroutines waits until at most n goroutines run, and returns how
// many do.
func waitGoroutines(n int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		g := runtime.NumGoroutine()
		if g <= n || time.Now().After(deadline) {
			return g
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCancelStopsUnboundedJob(t *testing.T) {
	before := runtime.NumGoroutine()
	env := newEnv(2)
	src := spate.FromSource(env, "gen", datagen.New(func(i int64) int64 { return i }), spate.NoWatermarks[int64]())
	keyed := spate.KeyBy(spate.Map(src, func(v int64) int64 { return v * 2 }), func(v int64) int64 { return v % 100 })
	sum := spate.Reduce(keyed, func(a, b int64) int64 { return a + b })
	var n, late atomic.Int64
	var stopped atomic.Bool
	reached := make(chan struct{})
	spate.SinkTo(sum, spate.Sink[int64](countSink[int64]{n: &n, at: 10_000, reached: reached, stopped: &stopped, late: &late})).Parallelism(1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := env.ExecuteContext(ctx, t.Name())
		stopped.Store(true)
		done <- err
	}()
	// Cancel once records flow.
	select {
	case <-reached:
	case err := <-done:
		t.Fatalf("unbounded job ended by itself after %d records: %v", n.Load(), err)
	case <-time.After(20 * time.Second):
		cancel()
		<-done
		t.Fatalf("only %d records reached the sink in 20s", n.Load())
	}
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ExecuteContext after cancel: %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the job took %v to stop after cancel", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not stop within 10s of cancelling its context")
	}
	if g := waitGoroutines(before, 5*time.Second); g > before {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines before the job, %d after it stopped:\n%s", before, g, buf)
	}
	// Every goroutine of the job has ended: any record written after
	// ExecuteContext returned has been counted.
	if l := late.Load(); l > 0 {
		t.Errorf("%d records reached the sink after ExecuteContext returned", l)
	}
}

// withChan is a record type that cannot cross a process boundary.
type withChan struct {
	ID    int
	Reply chan int
}

func TestUnencodableRecordFailsBeforeRunning(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(s spate.Stream[withChan]) spate.Stream[withChan]
	}{
		{"KeyBy", func(s spate.Stream[withChan]) spate.Stream[withChan] {
			return spate.Reduce(spate.KeyBy(s, func(v withChan) int { return v.ID }), func(a, b withChan) withChan { return b })
		}},
		{"Rebalance", func(s spate.Stream[withChan]) spate.Stream[withChan] {
			return spate.Map(s.Rebalance(), func(v withChan) withChan { return v })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(2)
			var ran atomic.Int64
			src := spate.Map(spate.FromSlice(env, []int{1, 2, 3}), func(i int) withChan {
				ran.Add(1)
				return withChan{ID: i}
			})
			spate.Collect(tc.apply(src))
			err := env.Execute(t.Name())
			if err == nil {
				t.Fatal("Execute succeeded with a chan field crossing an exchange")
			}
			for _, want := range []string{"withChan.Reply", "chan int", "spate.RegisterCodec"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if n := ran.Load(); n != 0 {
				t.Errorf("%d records ran before the job failed; want it to fail before any", n)
			}
		})
	}
}

// flakySource returns two good records, a malformed one, one more good one
// and the end: the shape of a file with a bad line 3.
type flakySource struct{ withGood bool }

func (s flakySource) Open(context.Context, spate.Split) (spate.SourceReader[string], error) {
	return &flakyReader{withGood: s.withGood}, nil
}

type flakyReader struct {
	step     int
	withGood bool
}

var errNotANumber = errors.New("not a number")

func (r *flakyReader) Read(_ context.Context, buf []string) (int, error) {
	r.step++
	bad := &spate.RecordError{Source: "orders.csv", Line: 3, Record: "x,y", Err: errNotANumber}
	switch r.step {
	case 1:
		if r.withGood {
			// The records read before the bad one come with its error.
			buf[0], buf[1] = "one", "two"
			return 2, bad
		}
		buf[0], buf[1] = "one", "two"
		return 2, nil
	case 2:
		if r.withGood {
			return 0, nil
		}
		return 0, bad
	case 3:
		buf[0] = "four"
		return 1, nil
	}
	return 0, io.EOF
}

func (r *flakyReader) Close() error { return nil }

func TestRecordErrors(t *testing.T) {
	for _, withGood := range []bool{false, true} {
		name := "error alone"
		if withGood {
			name = "error with good records"
		}
		t.Run(name+"/fails the job", func(t *testing.T) {
			env := newEnv(1)
			src := spate.FromSource(env, "orders", spate.Source[string](flakySource{withGood}), spate.NoWatermarks[string]())
			spate.Collect(src)
			err := env.Execute(t.Name())
			if err == nil {
				t.Fatal("Execute succeeded although the source read a malformed record")
			}
			for _, want := range []string{`operator "orders"`, "orders.csv:3", "not a number", "spate.RecordErrors"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			var re *spate.RecordError
			if !errors.As(err, &re) || re.Line != 3 || !errors.Is(err, errNotANumber) {
				t.Errorf("error %q does not wrap the *spate.RecordError of line 3", err)
			}
		})
		for _, encoded := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/routed to RecordErrors/encoded=%v", name, encoded), func(t *testing.T) {
				env := newEnv(1, spate.WithEncodedExchanges(encoded))
				src := spate.FromSource(env, "orders", spate.Source[string](flakySource{withGood}), spate.NoWatermarks[string]())
				good := spate.Collect(src)
				bad := spate.Collect(spate.SideOutput(src, spate.RecordErrors))
				execute(t, env)
				if got, want := sorted(good.Values()), []string{"four", "one", "two"}; !slices.Equal(got, want) {
					t.Errorf("good records %q, want %q", got, want)
				}
				errs := bad.Values()
				if len(errs) != 1 {
					t.Fatalf("error output has %d records, want 1: %v", len(errs), errs)
				}
				if e := errs[0]; e.Source != "orders.csv" || e.Line != 3 || e.Record != "x,y" || e.Err == nil || e.Err.Error() != errNotANumber.Error() {
					t.Errorf("error record %+v, want orders.csv line 3 %q: %v", e, "x,y", errNotANumber)
				}
			})
		}
	}
}

// slowSink sleeps now and then, so that it is far slower than its source.
type slowSink struct {
	got      *atomic.Int64
	sum      *atomic.Int64
	produced *atomic.Int64
	maxLead  *atomic.Int64
}

func (s slowSink) Open(context.Context, spate.SinkInfo) (spate.SinkWriter[int64], error) {
	return s, nil
}

func (s slowSink) Write(v int64) error {
	n := s.got.Add(1)
	s.sum.Add(v)
	if lead := s.produced.Load() - n; lead > s.maxLead.Load() {
		s.maxLead.Store(lead)
	}
	if n%500 == 0 {
		time.Sleep(time.Millisecond)
	}
	return nil
}

func (s slowSink) Close(error) error { return nil }

func TestBackpressureLosesNothing(t *testing.T) {
	const total = 200_000
	var got, sum, produced, maxLead atomic.Int64
	env := newEnv(2)
	src := spate.FromSource(env, "gen", datagen.New(func(i int64) int64 {
		produced.Add(1)
		return i
	}, datagen.Count(total)), spate.NoWatermarks[int64]())
	mapped := spate.Map(src.Rebalance(), func(v int64) int64 { return v }).Parallelism(3)
	spate.SinkTo(mapped, spate.Sink[int64](slowSink{&got, &sum, &produced, &maxLead})).Parallelism(1)
	execute(t, env)
	if got.Load() != total {
		t.Errorf("sink got %d records, want %d", got.Load(), total)
	}
	if want := int64(total) * (total - 1) / 2; sum.Load() != want {
		t.Errorf("sum of records %d, want %d (records lost or duplicated)", sum.Load(), want)
	}
	// Backpressure bounds how far the source runs ahead of the slow sink
	// to what the queues and buffers between them hold, a few batches per
	// channel, far less than the whole input.
	t.Logf("the source ran at most %d records ahead of the sink", maxLead.Load())
	if lead := maxLead.Load(); lead > total/4 {
		t.Errorf("the source ran %d records ahead of the sink; backpressure should hold it to the buffered amount", lead)
	}
}

// TestPanicInTimestampAssignerNamesSource fails a source's timestamp
// assigner after a chained map has run for earlier records: the error
// names the source, not the map that ran last.
func TestPanicInTimestampAssignerNamesSource(t *testing.T) {
	env := newEnv(1)
	gen := datagen.New(func(i int64) int64 { return i }, datagen.Count(100))
	src := spate.FromSource(env, "Numbers", gen, spate.ForMonotonousTimestamps[int64]().WithTimestampAssigner(func(v int64, _ int64) int64 {
		if v == 42 {
			panic("no timestamp for 42")
		}
		return v
	}))
	spate.Collect(spate.Map(src, func(v int64) int64 { return v }).Name("chained"))
	err := env.Execute(t.Name())
	var se *exec.SubtaskError
	if !errors.As(err, &se) {
		t.Fatalf("Execute = %v, want a *exec.SubtaskError", err)
	}
	if se.Operator != "Numbers" || !strings.Contains(err.Error(), "no timestamp for 42") {
		t.Errorf("error %q names operator %q, want the source Numbers", err, se.Operator)
	}
}
