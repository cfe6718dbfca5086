package spate

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/spate-dev/spate/internal/config"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/keygroup"
)

// Env is where a program declares its dataflow and runs it, Flink's
// StreamExecutionEnvironment. One Env may run several jobs: each Execute runs
// what was declared since the previous one.
type Env struct {
	conf     config.Config
	nodes    []*node
	nextID   int
	clock    exec.Clock
	infoOut  func(format string, graph []byte) error
	lastPlan []byte
	local    localRestore
}

// Option configures an Env.
type Option func(*Env)

// WithParallelism sets the default parallelism of operators
// (parallelism.default).
func WithParallelism(n int) Option {
	return func(e *Env) {
		if n > 0 {
			e.conf.Set(config.ParallelismDefault, strconv.Itoa(n))
		}
	}
}

// WithMaxParallelism sets the number of key groups (pipeline.max-parallelism).
func WithMaxParallelism(n int) Option {
	return func(e *Env) { e.conf.Set(config.MaxParallelism, strconv.Itoa(n)) }
}

// WithEncodedExchanges forces every exchange that is not a chained call
// through the records' codecs, exactly as between processes. Tests use it to
// catch, on one machine, a type that could not cross a process boundary.
func WithEncodedExchanges(on bool) Option {
	return func(e *Env) { e.conf.Set(config.EncodeExchanges, strconv.FormatBool(on)) }
}

// WithConfig sets configuration entries by their keys (Flink's names where the
// concept is the same, e.g. "parallelism.default").
func WithConfig(entries map[string]string) Option {
	return func(e *Env) {
		for k, v := range entries {
			e.conf.Set(k, v)
		}
	}
}

// WithClock replaces the processing-time clock (milliseconds since the Unix
// epoch); tests use it to make processing time deterministic.
func WithClock(now func() int64) Option {
	return func(e *Env) { e.clock = now }
}

// NewEnv returns an environment configured from, in increasing precedence:
// the defaults, the file config.yaml in $SPATE_CONF_DIR (if set), the
// environment variable SPATE_PROPERTIES ("key=value,key=value") and opts.
// It panics if the configuration file is unreadable, since no job could run.
// A malformed value of a known key (parallelism.default=abc) fails every
// Execute with an error naming the key, the value and the expected form.
func NewEnv(opts ...Option) *Env {
	e, err := newEnv(opts...)
	if err != nil {
		panic(err)
	}
	return e
}

func newEnv(opts ...Option) (*Env, error) {
	conf, err := config.FromEnvironment()
	if err != nil {
		return nil, err
	}
	e := &Env{conf: conf, clock: exec.WallClock}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Parallelism returns the default parallelism of operators: the configured
// parallelism.default, or the number of CPUs.
func (e *Env) Parallelism() int {
	// A malformed entry fails the job when it is planned.
	if n, err := e.conf.Int(config.ParallelismDefault, 0); err == nil && n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// Config returns the configuration entry key as this job sees it (set by
// -D at submission, the configuration file, SPATE_PROPERTIES or
// WithConfig) and whether it is set. On a cluster a job's workers see the
// entries its client submitted, and no other job's.
func (e *Env) Config(key string) (string, bool) {
	return e.conf.Get(key)
}

// MaxParallelism returns the number of key groups.
func (e *Env) MaxParallelism() int {
	// A malformed entry fails the job when it is planned.
	if n, err := e.conf.Int(config.MaxParallelism, 0); err == nil && n > 0 {
		return n
	}
	return keygroup.DefaultMaxParallelism
}

// Execute runs the dataflow declared since the last Execute as the job named
// name, and returns when the job has finished (bounded inputs exhausted),
// failed, or ctx ended. A failure names the operator and subtask and carries
// the cause.
//
// On a cluster a job is identified by the ordinal of its Execute or
// ExecuteAsync call among all of the process's calls, of every Env: the
// job's workers run main again and run that call; in a worker the calls
// before it return nil at once without running anything. main must
// therefore make the same calls in the same order, with the same
// dataflows, for the same arguments; a call that builds another dataflow
// than the one submitted fails its job with a clear error.
func (e *Env) Execute(name string) error {
	return e.ExecuteContext(context.Background(), name)
}

// ExecuteContext is Execute with a context; cancelling it stops the job
// cleanly and returns the context's error.
func (e *Env) ExecuteContext(ctx context.Context, name string) error {
	ordinal := nextOrdinal()
	nodes := e.nodes
	e.nodes = nil
	p, err := e.plan(name, nodes)
	if err != nil {
		return err
	}
	p.ordinal = ordinal
	return e.run(ctx, p)
}

// run runs a planned job where the environment says.
func (e *Env) run(ctx context.Context, p *plan) error {
	name := p.name
	if mode := os.Getenv(InfoEnv); mode != "" {
		return e.printInfo(mode, p)
	}
	if done, err := e.execute(ctx, p); done {
		return err
	}
	if err := e.runLocal(ctx, p); err != nil {
		return fmt.Errorf("job %q: %w", name, err)
	}
	return nil
}
