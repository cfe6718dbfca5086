package kafka

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// committable is a pre-committed transaction: what an exactly-once
// writer's checkpoint keeps, enough to commit it from any process.
//
//	committable = version:u8 (1) id-length:uvarint id producer-id:varint epoch:varint
type committable struct {
	id    string // transactional id
	pid   int64  // producer id
	epoch int16  // producer epoch of the transaction
}

const committableVersion = 1

func (c committable) encode() []byte {
	b := []byte{committableVersion}
	b = binary.AppendUvarint(b, uint64(len(c.id)))
	b = append(b, c.id...)
	b = binary.AppendVarint(b, c.pid)
	return binary.AppendVarint(b, int64(c.epoch))
}

func decodeCommittable(b []byte) (committable, error) {
	bad := func() (committable, error) { return committable{}, fmt.Errorf("malformed Kafka committable %x", b) }
	if len(b) < 1 || b[0] != committableVersion {
		return bad()
	}
	r := b[1:]
	n, k := binary.Uvarint(r)
	if k <= 0 || n == 0 || n > uint64(len(r)-k) {
		return bad()
	}
	c := committable{id: string(r[k : k+int(n)])}
	r = r[k+int(n):]
	pid, k := binary.Varint(r)
	if k <= 0 || pid < 0 {
		return bad()
	}
	r = r[k:]
	epoch, k := binary.Varint(r)
	if k <= 0 || k != len(r) || epoch < 0 || epoch > 1<<15-1 {
		return bad()
	}
	c.pid, c.epoch = pid, int16(epoch)
	if !bytes.Equal(c.encode(), b) {
		return bad() // an overlong varint
	}
	return c, nil
}
