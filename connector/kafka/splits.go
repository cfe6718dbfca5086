package kafka

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Splits: each partition of a topic the source reads is a split, named
// "<topic>/<partition>" (a topic name has no '/'), and a reader's position
// in it is the offset of the next record to emit and, for a bounded
// source, the offset it stops at:
//
//	position = version:u8 (1) offset:uvarint
//	         | version:u8 (2) offset:uvarint stop:uvarint
//
// Partitions are dealt to readers without a coordinator: reader
// ((javaHash(topic)*31 & 0x7fffffff) % p + partition) % p owns a partition,
// the rule of Flink's KafkaSourceEnumerator, so that the partitions of a
// topic spread over consecutive readers and every reader finds its own by
// listing the topics.

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

func (tp topicPartition) String() string { return tp.topic + "/" + strconv.Itoa(int(tp.partition)) }

// parseSplitID is the inverse of topicPartition.String.
func parseSplitID(id string) (topicPartition, error) {
	i := strings.LastIndexByte(id, '/')
	if i <= 0 || i == len(id)-1 {
		return topicPartition{}, fmt.Errorf("malformed Kafka split %q: want <topic>/<partition>", id)
	}
	p, err := strconv.ParseInt(id[i+1:], 10, 32)
	if err != nil || p < 0 || strconv.Itoa(int(p)) != id[i+1:] {
		return topicPartition{}, fmt.Errorf("malformed Kafka split %q: bad partition", id)
	}
	return topicPartition{topic: id[:i], partition: int32(p)}, nil
}

// encodePosition encodes a position; stop < 0 is none (unbounded).
func encodePosition(off, stop int64) []byte {
	if stop < 0 {
		return binary.AppendUvarint([]byte{1}, uint64(off))
	}
	return binary.AppendUvarint(binary.AppendUvarint([]byte{2}, uint64(off)), uint64(stop))
}

// decodePosition is the inverse of encodePosition.
func decodePosition(b []byte) (off, stop int64, err error) {
	bad := fmt.Errorf("malformed Kafka split position %x", b)
	if len(b) < 2 || (b[0] != 1 && b[0] != 2) {
		return 0, 0, bad
	}
	r := b[1:]
	next := func() (int64, bool) {
		v, n := binary.Uvarint(r)
		if n <= 0 || v > 1<<62 || binary.PutUvarint(make([]byte, binary.MaxVarintLen64), v) != n {
			return 0, false // the last: an overlong encoding
		}
		r = r[n:]
		return int64(v), true
	}
	var ok bool
	if off, ok = next(); !ok {
		return 0, 0, bad
	}
	stop = -1
	if b[0] == 2 {
		if stop, ok = next(); !ok {
			return 0, 0, bad
		}
	}
	if len(r) != 0 {
		return 0, 0, bad
	}
	return off, stop, nil
}

// owner returns the reader of p that reads tp.
func owner(tp topicPartition, p int) int {
	start := int((javaHash(tp.topic)*31)&0x7fffffff) % p
	return (start + int(tp.partition)) % p
}

// javaHash is Java's String.hashCode, for Flink's assignment of
// partitions to readers (on UTF-16 code units).
func javaHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xd800+(r>>10))
			h = 31*h + int32(0xdc00+(r&0x3ff))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}
