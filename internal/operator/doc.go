// Package operator is the runtime of Spate's operators: the per-record code
// that a subtask (internal/exec) runs for each operator of a job, and what
// that code keeps: keyed state, timers, window contents, watermark
// generation. The root package spate is the API users program against; it
// declares the dataflow and, when a job is built, makes each operator
// instance here through a constructor (NewMap, NewWindow, NewSource, ...)
// that returns a Spec: the instance's inputs as exec.Output values, its
// Open and Close, or, for a source, its run loop.
//
// One file per operator family: transform.go (map, flatMap, filter),
// reduce.go (keyed rolling reduce), process.go (process and keyed
// process), coprocess.go (two-input process functions), window.go (window
// operator), watermark.go (timestamps and watermarks), source.go, sink.go.
// Shared by them: context.go and keyed.go (the contexts user functions
// see), state.go (keyed state), timers.go (the timer service), and
// recordtype.go (the typed pieces the untyped plan builder needs per
// record type).
//
// User-facing types whose methods user code calls (Context, KeyedContext,
// WindowContext, StateStore and the state handles, Window, TimeDomain) are
// defined here and aliased by package spate; user function interfaces
// (ProcessFunction, ...) stay in package spate and reach the operators as
// function values.
//
// Every operator runs on its subtask's goroutine only: nothing here locks.
package operator
