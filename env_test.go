package spate_test

import (
	"strings"
	"testing"

	"github.com/spate-dev/spate"
)

func TestDefaultParallelismFromConfiguration(t *testing.T) {
	t.Setenv("SPATE_PROPERTIES", "parallelism.default=3")
	env := spate.NewEnv()
	if got := env.Parallelism(); got != 3 {
		t.Fatalf("Parallelism() = %d, want 3 from parallelism.default", got)
	}
	spate.SinkTo(spate.Map(spate.FromSlice(env, []int{1}).Rebalance(), func(v int) int { return v }), spate.Sink[int](discard[int]{}))
	plan, err := env.Plan("p")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(plan), `"parallelism": 3`) {
		t.Errorf("plan does not use the configured parallelism:\n%s", plan)
	}
	if got := spate.NewEnv(spate.WithParallelism(2)).Parallelism(); got != 2 {
		t.Errorf("WithParallelism(2) gave %d; options must override the configuration", got)
	}
}
