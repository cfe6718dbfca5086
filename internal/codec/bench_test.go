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
}
