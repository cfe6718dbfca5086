package spate

import (
	"io"
	"strings"
	"testing"
)

// TestExecuteOrdinals checks that every Execute and ExecuteAsync call of
// the process, on any Env, takes the next ordinal, also a call whose plan
// fails: the ordinal names the call, whatever became of it.
func TestExecuteOrdinals(t *testing.T) {
	first := int(executeCalls.Load())
	a, b := NewEnv(WithParallelism(1)), NewEnv(WithParallelism(1))
	SinkTo(FromSlice(a, []int{1}), PrintTo[int](io.Discard))
	if err := a.Execute("a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Execute("empty"); err == nil {
		t.Fatal("Execute of an empty dataflow succeeded")
	}
	SinkTo(FromSlice(b, []int{1}), PrintTo[int](io.Discard))
	j, err := b.ExecuteAsync("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := int(executeCalls.Load()) - first; got != 3 {
		t.Errorf("3 calls took %d ordinals", got)
	}
	if n := nextOrdinal(); n != first+3 {
		t.Errorf("next ordinal = %d, want %d", n, first+3)
	}
}

// TestExecuteAsyncUnknownTarget checks that ExecuteAsync refuses an
// unknown target as Execute does, rather than running the job locally.
func TestExecuteAsyncUnknownTarget(t *testing.T) {
	t.Setenv(TargetEnv, "bogus")
	env := NewEnv(WithParallelism(1))
	SinkTo(FromSlice(env, []int{1}), PrintTo[int](io.Discard))
	if _, err := env.ExecuteAsync("job"); err == nil || !strings.Contains(err.Error(), "unknown execution target") {
		t.Errorf("ExecuteAsync with %s=bogus: %v, want an unknown-target error", TargetEnv, err)
	}
}
