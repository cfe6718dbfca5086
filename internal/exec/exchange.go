package exec

import (
	"context"
	"fmt"
)

// MsgKind tells what a Msg carries.
type MsgKind uint8

const (
	// MsgData carries a batch of records.
	MsgData MsgKind = iota
	// MsgWatermark carries a watermark.
	MsgWatermark
	// MsgIdle tells that the sending channel is idle: it has no data and must
	// not hold back the receiver's watermark.
	MsgIdle
	// MsgEnd tells that the sending channel has ended.
	MsgEnd
	// MsgBarrier carries the barrier of a checkpoint: everything the
	// channel sent before it belongs to the checkpoint, nothing after it.
	MsgBarrier
)

// Msg is what travels through a subtask's inbox. Records come in batches,
// never one message per record.
type Msg struct {
	Kind MsgKind
	// Channel is the index of the sending channel at the receiver.
	Channel int32
	// WM is the watermark of a MsgWatermark and the checkpoint ID of a
	// MsgBarrier.
	WM int64
	// Batch is []Rec[T] on a local exchange or []byte when the exchange
	// encodes records.
	Batch any
}

// Partitioning is how an edge distributes records among the consumer's
// subtasks.
type Partitioning uint8

const (
	// Forward sends subtask i's records to subtask i.
	Forward Partitioning = iota
	// Hash sends each record to the subtask owning its key group.
	Hash
	// Rebalance sends records round-robin.
	Rebalance
	// Broadcast sends every record to every subtask.
	Broadcast
)

func (p Partitioning) String() string {
	switch p {
	case Forward:
		return "FORWARD"
	case Hash:
		return "HASH"
	case Rebalance:
		return "REBALANCE"
	case Broadcast:
		return "BROADCAST"
	}
	return fmt.Sprintf("Partitioning(%d)", uint8(p))
}

// DefaultBatchSize is how many records an edge writer buffers per target
// before it sends them.
const DefaultBatchSize = 512

// Codec turns batches into bytes and back; an edge given one sends encoded
// batches, exercising the same path records take between processes.
type Codec[T any] struct {
	Encode func(dst []byte, batch []Rec[T]) []byte
	Decode func(src []byte, into []Rec[T]) ([]Rec[T], error)
}

// EdgeWriter is the producing end of an edge at one subtask: it buffers
// records per target subtask and sends full batches, then watermarks, idleness
// and the end of the partition in band.
type EdgeWriter[T any] struct {
	task    *Task
	targets []chan Msg
	channel int32 // this producer's channel index at every target
	part    Partitioning
	route   func(v T) int
	bufs    [][]Rec[T]
	next    int // round-robin position
	batch   int
	codec   *Codec[T]
	remote  []bool
	idle    bool
}

// EdgeWriterConfig describes one producer's end of an edge.
type EdgeWriterConfig[T any] struct {
	// Targets are the inboxes of the consumer's subtasks.
	Targets []chan Msg
	// Channel is this producer's channel index at the targets.
	Channel int32
	Part    Partitioning
	// Route returns the target index of a record for Hash partitioning.
	Route func(v T) int
	// BatchSize is the number of records per batch; 0 means the default.
	BatchSize int
	// Codec, if set, encodes every batch, or only the batches for the
	// targets marked in Remote if Remote is set.
	Codec *Codec[T]
	// Remote marks the targets in other processes; batches to the others
	// stay Go values.
	Remote []bool
}

// NewEdgeWriter returns the writer of one producer subtask, registered with
// task so that the task flushes it when idle.
func NewEdgeWriter[T any](task *Task, cfg EdgeWriterConfig[T]) *EdgeWriter[T] {
	b := cfg.BatchSize
	if b <= 0 {
		b = DefaultBatchSize
	}
	w := &EdgeWriter[T]{
		task: task, targets: cfg.Targets, channel: cfg.Channel, part: cfg.Part,
		route: cfg.Route, batch: b, codec: cfg.Codec, remote: cfg.Remote,
		bufs: make([][]Rec[T], len(cfg.Targets)),
		next: task.Subtask % len(cfg.Targets),
	}
	task.writers = append(task.writers, w)
	return w
}

// Collect buffers v for its target and sends the batch when full.
func (w *EdgeWriter[T]) Collect(v T, ts int64) {
	if w.idle {
		w.setIdle(false)
	}
	switch w.part {
	case Forward:
		w.add(0, v, ts)
	case Hash:
		w.add(w.route(v), v, ts)
	case Rebalance:
		i := w.next
		w.next++
		if w.next == len(w.targets) {
			w.next = 0
		}
		w.add(i, v, ts)
	case Broadcast:
		for i := range w.targets {
			w.add(i, v, ts)
		}
	}
}

func (w *EdgeWriter[T]) add(i int, v T, ts int64) {
	b := w.bufs[i]
	if b == nil {
		b = make([]Rec[T], 0, w.batch)
	}
	b = append(b, Rec[T]{V: v, Ts: ts})
	if len(b) >= w.batch {
		w.bufs[i] = w.sendBatch(i, b)
		return
	}
	w.bufs[i] = b
}

// sendBatch sends b to target i and returns the buffer for the next batch:
// b itself, emptied, if it was encoded, since the receiver then owns only
// the bytes; nil if b went out as it is.
func (w *EdgeWriter[T]) sendBatch(i int, b []Rec[T]) []Rec[T] {
	m := Msg{Kind: MsgData, Channel: w.channel}
	w.task.Out.Add(int64(len(b)))
	if w.codec != nil && (w.remote == nil || w.remote[i]) {
		enc := w.codec.Encode(make([]byte, 0, 16*len(b)), b)
		w.task.M.bytesOut.Add(int64(len(enc)))
		m.Batch = enc
		w.task.send(w.targets[i], m)
		return b[:0]
	}
	m.Batch = b
	w.task.send(w.targets[i], m)
	return nil
}

// Flush sends every partly filled batch.
func (w *EdgeWriter[T]) Flush() {
	for i, b := range w.bufs {
		if len(b) > 0 {
			w.bufs[i] = w.sendBatch(i, b)
		}
	}
}

// Watermark flushes the buffered records and sends wm to every target.
func (w *EdgeWriter[T]) Watermark(wm int64) {
	w.Flush()
	w.idle = false
	w.task.M.setOutputWatermark(wm)
	for _, t := range w.targets {
		w.task.send(t, Msg{Kind: MsgWatermark, Channel: w.channel, WM: wm})
	}
}

// barrier flushes the buffered records and sends the barrier of checkpoint
// id to every target.
func (w *EdgeWriter[T]) barrier(id int64) {
	w.Flush()
	for _, t := range w.targets {
		w.task.send(t, Msg{Kind: MsgBarrier, Channel: w.channel, WM: id})
	}
}

// Finish flushes and sends the end of the partition to every target.
func (w *EdgeWriter[T]) Finish() {
	w.Flush()
	for _, t := range w.targets {
		w.task.send(t, Msg{Kind: MsgEnd, Channel: w.channel})
	}
}

// setIdle marks the channel idle (or active again) at every target.
func (w *EdgeWriter[T]) setIdle(idle bool) {
	if idle == w.idle {
		return
	}
	w.Flush()
	w.idle = idle
	if idle {
		for _, t := range w.targets {
			w.task.send(t, Msg{Kind: MsgIdle, Channel: w.channel})
		}
	}
	// Becoming active needs no message: the next record or watermark on the
	// channel clears the idle mark at the receiver.
}

// Deliverer returns the function that hands a received batch to out, decoding
// it first if it is encoded, and returns the number of records. The decode
// buffer is reused between batches.
func Deliverer[T any](out Output[T], codec *Codec[T]) func(batch any) (int, error) {
	var scratch []Rec[T]
	return func(batch any) (int, error) {
		var recs []Rec[T]
		switch b := batch.(type) {
		case []Rec[T]:
			recs = b
		case []byte:
			if codec == nil {
				return 0, fmt.Errorf("received an encoded batch on an edge without a codec")
			}
			var err error
			scratch, err = codec.Decode(b, scratch[:0])
			if err != nil {
				return 0, fmt.Errorf("decode batch: %w", err)
			}
			recs = scratch
		default:
			return 0, fmt.Errorf("received a batch of %T, want %T", batch, recs)
		}
		for i := range recs {
			out.Collect(recs[i].V, recs[i].Ts)
		}
		return len(recs), nil
	}
}

type writer interface {
	Flush()
	setIdle(bool)
	barrier(id int64)
}

// send delivers m to ch, blocking while ch is full (backpressure) and
// unwinding the subtask if the job is cancelled meanwhile.
func (t *Task) send(ch chan Msg, m Msg) {
	select {
	case ch <- m:
		return
	default:
	}
	since := t.M.beginWait(waitBackPressured)
	select {
	case ch <- m:
		t.M.endWait(waitBackPressured, since)
	case <-t.ctx.Done():
		t.M.endWait(waitBackPressured, since)
		panic(errAbort{context.Cause(t.ctx)})
	}
}
