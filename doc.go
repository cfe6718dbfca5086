// Package spate is the API of Spate, a stream processing engine for Go in the
// mold of Apache Flink.
//
// A program builds a dataflow on an Env: sources create Streams, typed
// transformations (Map, FlatMap, Filter, KeyBy, windows, process functions)
// derive new ones, and sinks consume them. Execute turns the dataflow into a
// JobGraph and runs it; run plainly, the job runs on an embedded local
// executor inside the process, with real parallelism.
package spate
