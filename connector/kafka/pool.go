package kafka

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordPool is the source's kgo.PoolRecords: the slices kgo decodes a
// fetched batch's records into come from it, and go back once the reader
// has recycled every record of the slice (kgo.Record.Recycle). A reader
// recycles a record as soon as its Deserializer has returned: a
// Deserializer sees a Record of its own, never the kgo.Record, and the
// Key, Value and header slices it shares point into the fetch's buffer,
// which is not pooled, so nothing a Deserializer keeps is ever rewritten.
// It saves an allocation of kgo.Record's size (scanned by the collector)
// per record.
//
// Slices are pooled by capacity, a power of two; slices of more than
// 1<<maxPoolShift records are not pooled.
type recordPool struct {
	byShift [maxPoolShift + 1]sync.Pool
	// puts counts the slices put back, for tests.
	puts atomic.Int64
}

const maxPoolShift = 16

// records is the process's pool, shared by every reader.
var records recordPool

// GetRecords implements kgo.PoolRecords.
func (p *recordPool) GetRecords(n int) []kgo.Record {
	shift := bits.Len(uint(max(n, 1) - 1))
	if shift > maxPoolShift {
		return make([]kgo.Record, n)
	}
	if s, ok := p.byShift[shift].Get().(*[]kgo.Record); ok {
		return (*s)[:n]
	}
	return make([]kgo.Record, n, 1<<shift)
}

// PutRecords implements kgo.PoolRecords: kgo has zeroed the records.
func (p *recordPool) PutRecords(s []kgo.Record) {
	c := cap(s)
	if c == 0 || c&(c-1) != 0 || bits.Len(uint(c-1)) > maxPoolShift {
		return // not one of the pool's
	}
	p.puts.Add(1)
	p.byShift[bits.Len(uint(c-1))].Put(&s)
}
