package kafka

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Splits: each partition of a topic the source reads is a split, named
// "<topic>/<partition>" (a topic name has no '/'), and a reader's position
// in it is the offset of the next record to emit:
//
//	position = version:u8 (1) offset:uvarint
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

const positionVersion = 1

func encodeOffset(off int64) []byte {
	return binary.AppendUvarint([]byte{positionVersion}, uint64(off))
}

func decodeOffset(b []byte) (int64, error) {
	if len(b) < 2 || b[0] != positionVersion {
		return 0, fmt.Errorf("malformed Kafka split position %x", b)
	}
	off, n := binary.Uvarint(b[1:])
	if n <= 0 || 1+n != len(b) || off > 1<<62 || binary.PutUvarint(make([]byte, binary.MaxVarintLen64), off) != n {
		// The last: an overlong encoding of the offset.
		return 0, fmt.Errorf("malformed Kafka split position %x", b)
	}
	return int64(off), nil
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
