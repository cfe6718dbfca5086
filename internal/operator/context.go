package operator

import "github.com/spate-dev/spate/internal/exec"

// Context is what a process function sees besides the record: the record's
// timestamp, a way to emit results and side outputs, and the time.
type Context[O any] struct {
	task  *exec.Task
	name  string
	out   exec.Output[O]
	sides SideOutputs
	ts    int64
	wm    int64
}

func newContext[O any](in *Instance) Context[O] {
	return Context[O]{task: in.Task, name: in.Name, out: Out[O](in), sides: in.Sides, ts: exec.NoTimestamp, wm: exec.MinWatermark}
}

// Collect emits v with the current record's (or timer's) timestamp.
func (c *Context[O]) Collect(v O) { c.out.Collect(v, c.ts) }

// CollectAt emits v with timestamp ts.
func (c *Context[O]) CollectAt(v O, ts int64) { c.out.Collect(v, ts) }

// Timestamp returns the current record's event timestamp in milliseconds,
// or exec.NoTimestamp (math.MinInt64) if it has none; in OnTimer, the timer's
// time.
func (c *Context[O]) Timestamp() int64 { return c.ts }

// HasTimestamp tells whether the current record has an event timestamp.
func (c *Context[O]) HasTimestamp() bool { return c.ts != exec.NoTimestamp }

// CurrentWatermark returns the operator's current event time.
func (c *Context[O]) CurrentWatermark() int64 { return c.wm }

// CurrentProcessingTime returns the wall clock in milliseconds.
func (c *Context[O]) CurrentProcessingTime() int64 { return c.task.Now() }

// Subtask returns the index of the subtask running the function.
func (c *Context[O]) Subtask() int { return c.task.Subtask }

func (c *Context[O]) sideOutput(id string) (any, bool) {
	o, ok := c.sides[id]
	return o, ok
}

func (c *Context[O]) timestamp() int64 { return c.ts }

// call runs user code, naming the operator for a panic and failing the
// subtask on an error.
func (c *Context[O]) call(err error) {
	if err != nil {
		c.task.Fail(err)
	}
}

// SideEmitter is a context that can emit to side outputs: the contexts of
// process, window and co-process functions.
type SideEmitter interface {
	sideOutput(id string) (any, bool)
	timestamp() int64
}

// EmitSide sends v to the side output id of the operator whose context ctx
// is, with the current record's timestamp. Records for a tag nobody
// consumes are dropped.
func EmitSide[T any](ctx SideEmitter, id string, v T) {
	o, ok := ctx.sideOutput(id)
	if !ok {
		return
	}
	o.(exec.Output[T]).Collect(v, ctx.timestamp())
}
