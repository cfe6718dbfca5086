package codec

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// encTime writes the Unix seconds, nanoseconds<<1|hasOffset and, unless the
// location is UTC, the zone offset in seconds.
func encTime(dst []byte, p unsafe.Pointer, _ int) []byte {
	t := (*time.Time)(p)
	dst = appendVarint(dst, t.Unix())
	ns := uint64(t.Nanosecond()) << 1
	if t.Location() == time.UTC {
		return appendUvarint(dst, ns)
	}
	_, off := t.Zone()
	return appendVarint(appendUvarint(dst, ns|1), int64(off))
}

func decTime(src []byte, p unsafe.Pointer, _ int) ([]byte, error) {
	sec, n := varint(src)
	if n <= 0 {
		return nil, varintError(n, "time seconds")
	}
	src = src[n:]
	ns, n := uvarint(src)
	if n <= 0 {
		return nil, varintError(n, "time nanoseconds")
	}
	src = src[n:]
	if ns>>1 >= 1e9 {
		return nil, fmt.Errorf("decode time nanoseconds: %d out of range", ns>>1)
	}
	t := time.Unix(sec, int64(ns>>1))
	if ns&1 == 0 {
		*(*time.Time)(p) = t.UTC()
		return src, nil
	}
	off, n := varint(src)
	if n <= 0 {
		return nil, varintError(n, "time zone offset")
	}
	if off < -1<<31 || off >= 1<<31 {
		return nil, fmt.Errorf("decode time zone offset: %d seconds out of range", off)
	}
	*(*time.Time)(p) = t.In(fixedZone(int(off)))
	return src[n:], nil
}

// zones caches the locations decodeTime makes, by offset. Corrupt input
// could ask for any offset, hence the bound on its size.
var (
	zonesMu sync.Mutex
	zones   atomic.Pointer[map[int]*time.Location]
)

const maxZones = 256

func fixedZone(off int) *time.Location {
	if m := zones.Load(); m != nil {
		if l, ok := (*m)[off]; ok {
			return l
		}
	}
	l := time.FixedZone("", off)
	zonesMu.Lock()
	defer zonesMu.Unlock()
	old := zones.Load()
	if old != nil && len(*old) >= maxZones {
		return l
	}
	m := make(map[int]*time.Location, 1+len(zonesOrNil(old)))
	for k, v := range zonesOrNil(old) {
		m[k] = v
	}
	m[off] = l
	zones.Store(&m)
	return l
}

func zonesOrNil(m *map[int]*time.Location) map[int]*time.Location {
	if m == nil {
		return nil
	}
	return *m
}

// timeCodec is the codec For returns for time.Time.
type timeCodec[T any] struct{ typ reflect.Type }

func (timeCodec[T]) Append(dst []byte, v T) []byte {
	return encTime(dst, unsafe.Pointer(&v), 0)
}

func (c timeCodec[T]) Decode(src []byte) (v T, rest []byte, err error) {
	if rest, err = decTime(src, unsafe.Pointer(&v), 0); err != nil {
		var zero T
		return zero, src, rootError(c.typ, err)
	}
	return v, rest, nil
}
