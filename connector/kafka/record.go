package kafka

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is a Kafka record as a Deserializer sees it, and as a sink's
// Serializer makes it.
type Record struct {
	// Topic and Partition locate the record; a sink ignores Partition
	// unless its Partitioner is PartitionManual, and Topic unless
	// SinkConfig.Topic is empty.
	Topic     string
	Partition int32
	// Offset is the record's offset in its partition (source only).
	Offset int64
	// Key and Value are the record's bytes; a nil Key is no key.
	Key, Value []byte
	// Headers are the record's headers, in order.
	Headers []Header
	// Timestamp is the record's timestamp (CreateTime or LogAppendTime,
	// as the topic says); a sink's zero Timestamp means now.
	Timestamp time.Time

	// copies is where Bytes and String copy a source's values, nil
	// elsewhere.
	copies *block
}

// Header is one header of a record.
type Header struct {
	Key   string
	Value []byte
}

// Deserializer turns a Kafka record into a value of the stream. An error
// makes the record malformed: the source reports it naming the topic,
// partition and offset (see Source). The record's slices are only valid
// during the call: keep copies.
type Deserializer[T any] func(r *Record) (T, error)

// String deserializes a record's value as text (a copy, see Bytes).
func String() Deserializer[string] {
	return func(r *Record) (string, error) {
		if r.copies == nil {
			return string(r.Value), nil
		}
		b := r.copies.copy(r.Value)
		// The block's bytes are never written again: a string may
		// share them.
		return unsafe.String(unsafe.SliceData(b), len(b)), nil
	}
}

// Bytes deserializes a record's value as its bytes (a copy). The
// source's reader copies small values into shared blocks of blockSize
// bytes, an allocation per block rather than per record, so a value
// kept long keeps its block alive.
func Bytes() Deserializer[[]byte] {
	return func(r *Record) ([]byte, error) {
		if r.copies == nil {
			return append([]byte(nil), r.Value...), nil
		}
		return r.copies.copy(r.Value), nil
	}
}

// blockSize is the size of the blocks a reader copies values into; a
// value over blockSize/8 bytes gets an allocation of its own.
const blockSize = 8 << 10

// block hands out copies of byte slices from a shared buffer. Each copy's
// capacity is its length, so that an append to it allocates rather than
// overwrites the next copy. The buffer's slice is written only when a new
// one is made, the offset otherwise: no write barrier per copy.
type block struct {
	buf []byte
	off int
}

func (k *block) copy(b []byte) []byte {
	if len(b) > blockSize/8 {
		return append([]byte(nil), b...)
	}
	if len(b) == 0 {
		return nil // as append([]byte(nil), b...)
	}
	if len(k.buf)-k.off < len(b) {
		k.buf, k.off = make([]byte, blockSize), 0
	}
	start := k.off
	k.off += copy(k.buf[start:], b)
	return k.buf[start:k.off:k.off]
}

// JSON deserializes a record's value as a JSON document into a T
// (encoding/json); a value that is not one, or has text after it, is
// malformed.
func JSON[T any]() Deserializer[T] {
	return func(r *Record) (T, error) {
		var v T
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return v, fmt.Errorf("decode JSON into %T: %w", v, err)
		}
		return v, nil
	}
}

// refill makes r the Record of a fetched record as fromKgo does, but
// writes only the fields that change from one record to the next, for a
// source that reuses r: a pointer written to the heap costs a write
// barrier while the collector runs, which kgo's allocations make often.
// hs is the reused array of r's headers.
func refill(rec *kgo.Record, r *Record, hs []Header) []Header {
	if r.Topic != rec.Topic { // equal strings of one pointer compare at once
		r.Topic = rec.Topic
	}
	r.Partition, r.Offset = rec.Partition, rec.Offset
	r.Key, r.Value = rec.Key, rec.Value
	r.Timestamp = rec.Timestamp
	if len(rec.Headers) == 0 && len(hs) == 0 && r.Headers == nil {
		return hs
	}
	hs = hs[:0]
	for _, h := range rec.Headers {
		hs = append(hs, Header{Key: h.Key, Value: h.Value})
	}
	r.Headers = hs
	return hs
}

// fromKgo makes the Record a Deserializer sees of a fetched record,
// sharing its slices; headers are reused from hs.
func fromKgo(rec *kgo.Record, r *Record, hs []Header) []Header {
	hs = hs[:0]
	for _, h := range rec.Headers {
		hs = append(hs, Header{Key: h.Key, Value: h.Value})
	}
	*r = Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Value: rec.Value, Headers: hs, Timestamp: rec.Timestamp}
	return hs
}

// maxRecordText is how many bytes of a malformed record's value its error
// keeps.
const maxRecordText = 200

// recordText is a malformed value as readable text: cut at a rune
// boundary, and marked when cut or not UTF-8.
func recordText(b []byte) string {
	if !utf8.Valid(b) {
		if len(b) > maxRecordText/2 {
			return fmt.Sprintf("%x...", b[:maxRecordText/2])
		}
		return fmt.Sprintf("%x", b)
	}
	if len(b) <= maxRecordText {
		return string(b)
	}
	cut := maxRecordText
	for cut > maxRecordText-utf8.UTFMax && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + "..."
}
