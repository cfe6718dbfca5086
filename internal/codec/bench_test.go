package codec_test

import (
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/codec"
)

func BenchmarkCodec(b *testing.B) {
	ts := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	b.Run("string", func(b *testing.B) { benchCodec(b, "user-1234567") })
	b.Run("int64", func(b *testing.B) { benchCodec(b, int64(1234567890)) })
	b.Run("struct", func(b *testing.B) { benchCodec(b, Small{Key: "user-1234567", Value: 42, Ts: ts}) })
	b.Run("struct-zoned", func(b *testing.B) {
		benchCodec(b, Small{Key: "user-1234567", Value: 42, Ts: ts.In(time.FixedZone("CET", 3600))})
	})
	// Numbers of one to four bytes, as keyed records often are.
	b.Run("numbers", func(b *testing.B) {
		benchCodec(b, Numbers{Key: 4321, Value: 1234567, Count: 3, Ratio: 0.5})
	})
}

// Numbers is a record of fixed-size fields.
type Numbers struct {
	Key   int64
	Value int64
	Count uint32
	Ratio float64
}

func benchCodec[T any](b *testing.B, v T) {
	c, err := codec.For[T]()
	if err != nil {
		b.Fatal(err)
	}
	enc := c.Append(nil, v)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		buf := make([]byte, 0, 64)
		for b.Loop() {
			buf = c.Append(buf[:0], v)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, _, err := c.Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	pc, ok := c.(codec.PtrCodec[T])
	if !ok {
		return
	}
	// As the batch codec uses it: a batch of records in place.
	const batch = 512
	vs := make([]T, batch)
	for i := range vs {
		vs[i] = v
	}
	var encBatch []byte
	for i := range vs {
		encBatch = pc.AppendPtr(encBatch, &vs[i])
	}
	b.Run("encode-batch", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(encBatch)))
		buf := make([]byte, 0, len(encBatch))
		for b.Loop() {
			buf = buf[:0]
			for i := range vs {
				buf = pc.AppendPtr(buf, &vs[i])
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("decode-batch", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(encBatch)))
		into := make([]T, batch)
		for b.Loop() {
			src := encBatch
			clear(into)
			for i := range into {
				var err error
				if src, err = pc.DecodeInto(src, &into[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
	})
}
