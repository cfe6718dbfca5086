package exec

import "math"

const (
	// NoTimestamp marks a record without an event timestamp.
	NoTimestamp int64 = math.MinInt64
	// MinWatermark is the watermark before any was received.
	MinWatermark int64 = math.MinInt64
	// MaxWatermark is the final watermark of a bounded input: every event
	// time timer fires when it arrives.
	MaxWatermark int64 = math.MaxInt64
)

// Output receives what an operator emits: records, watermarks and the end of
// its input. Operators implement Output for their own input, so a chain is a
// sequence of direct calls.
type Output[T any] interface {
	// Collect receives one record with its event timestamp (NoTimestamp if
	// none).
	Collect(v T, ts int64)
	// Watermark tells that no record with a timestamp <= wm will follow.
	Watermark(wm int64)
	// Finish tells that the input has ended. It is called once.
	Finish()
}

// Rec is a record in a batch: a value and its event timestamp.
type Rec[T any] struct {
	V  T
	Ts int64
}

// Discard is an Output that drops everything; an operator output nobody
// consumes is wired to it.
type Discard[T any] struct{}

// Collect drops v.
func (Discard[T]) Collect(T, int64) {}

// Watermark drops wm.
func (Discard[T]) Watermark(int64) {}

// Finish does nothing.
func (Discard[T]) Finish() {}

// FanOut delivers to several outputs in order.
type FanOut[T any] []Output[T]

// Collect delivers v to every output.
func (f FanOut[T]) Collect(v T, ts int64) {
	for _, o := range f {
		o.Collect(v, ts)
	}
}

// Watermark delivers wm to every output.
func (f FanOut[T]) Watermark(wm int64) {
	for _, o := range f {
		o.Watermark(wm)
	}
}

// Finish finishes every output.
func (f FanOut[T]) Finish() {
	for _, o := range f {
		o.Finish()
	}
}

// Combine returns an Output delivering to all of outs: the only one if there is
// one, Discard if none.
func Combine[T any](outs []Output[T]) Output[T] {
	switch len(outs) {
	case 0:
		return Discard[T]{}
	case 1:
		return outs[0]
	}
	return FanOut[T](outs)
}
