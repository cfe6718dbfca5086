package operator

import (
	"context"
	"sync"
)

// Readers that know more than their records: each record's event
// timestamp from its source and the split it came from (a Kafka
// partition), for per-split watermarks as Flink's FLIP-27 sources
// generate them; and readers that hear of completed checkpoints (to
// commit a consumer group's offsets).
//
// With per-split watermarks the strategy's generator runs once per split:
// each sees only its split's records, the subtask's watermark is the
// least of its splits' watermarks, and with idleness a split that has
// had no records for the timeout stops holding it back. The subtask is
// idle when all its splits are (or it has none).

// SourceEvent tells what a reader knows of one record besides its value.
type SourceEvent struct {
	// Timestamp is the event time the source gave the record, in
	// milliseconds (exec.NoTimestamp if none); a timestamp assigner
	// receives it as the previous timestamp.
	Timestamp int64
	// Split is the index of the record's split among the reader's, in
	// [0, EventReader.Splits()).
	Split int
}

// EventReader is a Reader whose records carry a timestamp and a split.
type EventReader[T any] interface {
	Reader[T]
	// ReadEvents is Read that also fills events[i] for each buf[i].
	ReadEvents(ctx context.Context, buf []T, events []SourceEvent) (n int, err error)
	// Splits returns how many splits the reader has: their indexes are
	// [0, Splits()), and a split once counted stays.
	Splits() int
}

// CheckpointListener is a Reader that hears when a checkpoint completes.
type CheckpointListener interface {
	// NotifyCheckpointComplete tells that checkpoint id, in which the
	// reader's splits stood at splits, is complete. It may run on any
	// goroutine, concurrently with Read; an error is logged, not fatal.
	NotifyCheckpointComplete(id int64, splits []SplitState) error
}

// splitWatermark is the watermark state of one split of a reader.
type splitWatermark[T any] struct {
	gen          Generator[T]
	wm           int64
	events, seen uint64
	activeAt     int64
	idle         bool
}

// EmitWatermark implements WatermarkOutput for the split's generator.
func (s *splitWatermark[T]) EmitWatermark(wm int64) {
	if wm > s.wm {
		s.wm = wm
	}
}

// growSplits makes sure there is watermark state for n splits; a new
// split counts as active from now on.
func (r *strategyRun[T]) growSplits(n int) {
	for len(r.splits) < n {
		r.splits = append(r.splits, &splitWatermark[T]{gen: r.ws.NewGenerator(), wm: r.wm.last, activeAt: r.task.Now()})
	}
}

// observeSplit shows split's generator a record, after it was emitted;
// a watermark it emits for it moves the subtask's if that was the least.
func (r *strategyRun[T]) observeSplit(v T, ts int64, split int) {
	if split < 0 {
		return
	}
	r.growSplits(split + 1)
	s := r.splits[split]
	s.events++
	s.idle = false
	before := s.wm
	s.gen.OnEvent(v, ts, s)
	if s.wm != before {
		r.combineSplits()
	}
}

// fireSplits is a periodic tick with per-split watermarks: idleness per
// split, periodic emission per split, then their combination.
func (r *strategyRun[T]) fireSplits(now int64) {
	for _, s := range r.splits {
		if r.idleAfter > 0 {
			if s.events != s.seen {
				s.seen, s.activeAt, s.idle = s.events, now, false
			} else if !s.idle && now-s.activeAt >= r.idleAfter {
				s.idle = true
			}
		}
		if r.interval > 0 && !s.idle {
			s.gen.OnPeriodicEmit(s)
		}
	}
	r.combineSplits()
}

// combineSplits emits the least watermark of the active splits, and
// marks the subtask idle when no split is active.
func (r *strategyRun[T]) combineSplits() {
	active := false
	var least int64
	for _, s := range r.splits {
		if s.idle {
			continue
		}
		if !active || s.wm < least {
			least = s.wm
		}
		active = true
	}
	if !active {
		if !r.idle {
			r.idle = true
			r.task.SetIdle(true)
		}
		return
	}
	if r.idle {
		r.idle = false
		r.task.SetIdle(false)
	}
	r.wm.EmitWatermark(least)
}

// sourceCheckpoints keeps, for a CheckpointListener reader, the splits of
// each checkpoint taken until it completes or is aborted.
type sourceCheckpoints struct {
	mu struct {
		sync.Mutex
		listener CheckpointListener
		taken    []takenSplits
	}
}

type takenSplits struct {
	id     int64
	splits []SplitState
}

func (c *sourceCheckpoints) setListener(l CheckpointListener) {
	c.mu.Lock()
	c.mu.listener = l
	c.mu.Unlock()
}

func (c *sourceCheckpoints) taken(id int64, splits []SplitState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.listener != nil {
		c.mu.taken = append(c.mu.taken, takenSplits{id: id, splits: splits})
	}
}

// complete returns the listener and the splits of the latest checkpoint
// up to id, forgetting those up to id.
func (c *sourceCheckpoints) complete(id int64) (CheckpointListener, *takenSplits) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last *takenSplits
	keep := c.mu.taken[:0]
	for i := range c.mu.taken {
		if t := c.mu.taken[i]; t.id <= id {
			last = &t
		} else {
			keep = append(keep, t)
		}
	}
	c.mu.taken = keep
	return c.mu.listener, last
}

func (c *sourceCheckpoints) abort(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.taken = slicesDeleteID(c.mu.taken, id)
}

func slicesDeleteID(ts []takenSplits, id int64) []takenSplits {
	keep := ts[:0]
	for _, t := range ts {
		if t.id != id {
			keep = append(keep, t)
		}
	}
	return keep
}
