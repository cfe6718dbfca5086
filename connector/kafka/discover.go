package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// listTimeout bounds one listing of topics or offsets.
const listTimeout = 30 * time.Second

// discover lists the source's topics and starts reading the partitions
// this reader owns and does not read yet: at the first start (initial)
// where StartupMode says, later from their earliest offset.
func (r *reader[T]) discover(ctx context.Context, initial bool) error {
	r.nextDiscover = time.Now().Add(r.interval)
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	var topics []string
	if r.pattern == nil {
		topics = r.src.cfg.Topics
	}
	tds, err := r.adm.ListTopics(lctx, topics...)
	if err != nil {
		return fmt.Errorf("kafka source: list topics: %w", err)
	}
	var found []topicPartition
	for _, td := range tds {
		if td.Err != nil || td.IsInternal || (r.pattern != nil && !r.pattern.MatchString(td.Topic)) {
			continue
		}
		for p := range td.Partitions {
			tp := topicPartition{topic: td.Topic, partition: p}
			if _, ok := r.byTP[tp]; ok || owner(tp, r.split.Parallelism) != r.split.Subtask {
				continue
			}
			found = append(found, tp)
		}
	}
	if len(found) == 0 {
		return nil
	}
	mode := StartEarliest
	if initial && r.src.cfg.StartupMode != "" {
		mode = r.src.cfg.StartupMode
	}
	offs, err := r.startOffsets(lctx, mode, found)
	if err != nil {
		return err
	}
	spans := make(map[topicPartition]span, len(offs))
	for tp, off := range offs {
		spans[tp] = span{start: off, stop: -1}
	}
	if r.src.bounded() {
		if err := r.stopOffsets(lctx, spans); err != nil {
			return err
		}
	}
	r.assign(spans)
	return nil
}

// stopOffsets sets where a bounded source stops in each partition of
// spans, by BoundedMode; never before its start.
func (r *reader[T]) stopOffsets(ctx context.Context, spans map[topicPartition]span) error {
	var topics []string
	for tp := range spans {
		if !slices.Contains(topics, tp.topic) {
			topics = append(topics, tp.topic)
		}
	}
	var listed kadm.ListedOffsets
	var err error
	switch {
	case r.src.cfg.BoundedMode == BoundedTimestamp:
		listed, err = r.adm.ListOffsetsAfterMilli(ctx, r.src.cfg.BoundedTimestamp.UnixMilli(), topics...)
	case r.src.cfg.ReadCommitted:
		listed, err = r.adm.ListCommittedOffsets(ctx, topics...)
	default:
		listed, err = r.adm.ListEndOffsets(ctx, topics...)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka source: list the offsets scan.bounded.mode %s stops at: %w", r.src.cfg.BoundedMode, err)
	}
	for tp, sp := range spans {
		o, ok := listed.Lookup(tp.topic, tp.partition)
		if !ok || o.Offset < 0 {
			return fmt.Errorf("kafka source: no offset to stop at in %s", tp)
		}
		sp.stop = max(o.Offset, sp.start)
		spans[tp] = sp
	}
	return nil
}

// startOffsets resolves where to start each of tps by mode, as concrete
// offsets, so that a checkpoint taken before a partition's first record
// holds where it started.
func (r *reader[T]) startOffsets(ctx context.Context, mode StartupMode, tps []topicPartition) (map[topicPartition]int64, error) {
	var topics []string
	for _, tp := range tps {
		if !slices.Contains(topics, tp.topic) {
			topics = append(topics, tp.topic)
		}
	}
	earliest, err := r.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = earliest.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka source: list earliest offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	offs := map[topicPartition]int64{}
	for _, tp := range tps {
		o, ok := earliest.Lookup(tp.topic, tp.partition)
		if !ok {
			return nil, fmt.Errorf("kafka source: no earliest offset of %s", tp)
		}
		offs[tp] = o.Offset
	}
	var listed kadm.ListedOffsets
	switch mode {
	case StartEarliest:
		return offs, nil
	case StartLatest:
		if r.src.cfg.ReadCommitted {
			listed, err = r.adm.ListCommittedOffsets(ctx, topics...)
		} else {
			listed, err = r.adm.ListEndOffsets(ctx, topics...)
		}
	case StartTimestamp:
		listed, err = r.adm.ListOffsetsAfterMilli(ctx, r.src.cfg.StartupTimestamp.UnixMilli(), topics...)
	case StartSpecificOffsets:
		for _, tp := range tps {
			if o, ok := r.src.cfg.SpecificOffsets[tp.topic][tp.partition]; ok {
				offs[tp] = max(o, offs[tp])
			}
		}
		return offs, nil
	case StartGroupOffsets:
		committed, err := r.adm.FetchOffsetsForTopics(ctx, r.src.cfg.GroupID, topics...)
		if err == nil {
			err = committed.Error()
		}
		if errors.Is(err, kerr.GroupIDNotFound) {
			// A group that never committed: as if without offsets.
			committed, err = nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("kafka source: fetch the offsets of group %s: %w", r.src.cfg.GroupID, err)
		}
		for _, tp := range tps {
			if o, ok := committed.Lookup(tp.topic, tp.partition); ok && o.At >= 0 {
				offs[tp] = max(o.At, offs[tp])
			}
		}
		return offs, nil
	default:
		return nil, fmt.Errorf("kafka source: unknown scan.startup.mode %q", mode)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka source: list the %s offsets of %s: %w", mode, strings.Join(topics, ", "), err)
	}
	for _, tp := range tps {
		if o, ok := listed.Lookup(tp.topic, tp.partition); ok && o.Offset >= 0 {
			offs[tp] = o.Offset
		}
	}
	return offs, nil
}

// assign starts reading the partitions of spans, each at its start, in
// the order of their names (their split indexes); a partition already at
// its stop is not read.
func (r *reader[T]) assign(spans map[topicPartition]span) {
	tps := make([]topicPartition, 0, len(spans))
	for tp := range spans {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b topicPartition) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.partition - b.partition)
	})
	add := map[string]map[int32]kgo.Offset{}
	for _, tp := range tps {
		sp := spans[tp]
		r.byTP[tp] = len(r.parts)
		r.parts = append(r.parts, &partition{tp: tp, next: sp.start, stop: sp.stop, hw: -1})
		if sp.stop >= 0 && sp.start >= sp.stop {
			r.done++
			continue
		}
		if add[tp.topic] == nil {
			add[tp.topic] = map[int32]kgo.Offset{}
		}
		add[tp.topic][tp.partition] = kgo.NewOffset().At(sp.start)
	}
	if len(add) > 0 {
		r.cl.AddConsumePartitions(add)
	}
}
