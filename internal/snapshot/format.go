package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Version is the version of the state file format that Encode writes.
const Version = 1

// magic starts every state file.
const magic = "SPST"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Entry is one piece of an operator's state in a state file.
type Entry struct {
	// Operator is the id of the operator (its StreamNode id) in the
	// subtask's chain.
	Operator int32
	// Name says which state of the operator this is ("value/last",
	// "timers/event", "splits", ...).
	Name string
	// KeyGroup is the key group of keyed state, NoKeyGroup for state that
	// belongs to the subtask as a whole (source splits, sink transactions).
	KeyGroup int32
	// Data is the state's encoding, the operator's business.
	Data []byte
}

// NoKeyGroup is the KeyGroup of an Entry that is not keyed.
const NoKeyGroup int32 = -1

// ErrCorrupt is wrapped by every error of Decode: the bytes are not a
// state file this version can read (truncated, corrupted, or of a newer
// format).
var ErrCorrupt = errors.New("corrupt state file")

// Encode writes entries as a state file:
//
//	file  = "SPST" version:u8 entry* end
//	entry = 0x01 operator:varint keyGroup:varint name:bytes data:bytes crc:u32
//	end   = 0x00 count:uvarint crc:u32
//	bytes = length:uvarint, then the bytes
//
// An entry's crc is the CRC-32C (Castagnoli) of the entry from its 0x01
// tag to its data; the end's crc covers the whole file before it, so that
// a truncated file, a flipped bit, or a file cut at an entry boundary is
// detected.
func Encode(dst []byte, entries []Entry) []byte {
	start := len(dst)
	dst = append(dst, magic...)
	dst = append(dst, Version)
	for i := range entries {
		e := &entries[i]
		es := len(dst)
		dst = append(dst, 0x01)
		dst = binary.AppendVarint(dst, int64(e.Operator))
		dst = binary.AppendVarint(dst, int64(e.KeyGroup))
		dst = binary.AppendUvarint(dst, uint64(len(e.Name)))
		dst = append(dst, e.Name...)
		dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
		dst = append(dst, e.Data...)
		dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[es:], castagnoli))
	}
	dst = append(dst, 0x00)
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// Decode reads a state file written by Encode. Entries' Data alias b. It
// never panics; anything but exactly one well-formed file is an error
// wrapping ErrCorrupt.
func Decode(b []byte) ([]Entry, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(b) < len(magic)+1 || string(b[:len(magic)]) != magic {
		return nil, bad("no state file header")
	}
	if v := b[len(magic)]; v != Version {
		return nil, bad("format version %d, this build reads version %d", v, Version)
	}
	r := cursor{b: b, off: len(magic) + 1}
	var entries []Entry
	for {
		es := r.off
		tag, ok := r.byte()
		if !ok {
			return nil, bad("truncated after %d entries", len(entries))
		}
		if tag == 0x00 {
			n, ok := r.uvarint()
			if !ok {
				return nil, bad("truncated end")
			}
			if n != uint64(len(entries)) {
				return nil, bad("end counts %d entries, the file holds %d", n, len(entries))
			}
			sum := crc32.Checksum(b[:r.off], castagnoli)
			want, ok := r.uint32()
			if !ok {
				return nil, bad("truncated file checksum")
			}
			if sum != want {
				return nil, bad("file checksum %08x, want %08x", sum, want)
			}
			if r.off != len(b) {
				return nil, bad("%d bytes after the end", len(b)-r.off)
			}
			return entries, nil
		}
		if tag != 0x01 {
			return nil, bad("entry %d: unknown tag 0x%02x", len(entries), tag)
		}
		var e Entry
		op, ok1 := r.varint()
		kg, ok2 := r.varint()
		name, ok3 := r.bytes()
		data, ok4 := r.bytes()
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, bad("entry %d truncated", len(entries))
		}
		if op != int64(int32(op)) || kg != int64(int32(kg)) || kg < int64(NoKeyGroup) {
			return nil, bad("entry %d: operator %d or key group %d out of range", len(entries), op, kg)
		}
		sum := crc32.Checksum(b[es:r.off], castagnoli)
		want, ok := r.uint32()
		if !ok {
			return nil, bad("entry %d: truncated checksum", len(entries))
		}
		if sum != want {
			return nil, bad("entry %d: checksum %08x, want %08x", len(entries), sum, want)
		}
		e.Operator, e.KeyGroup, e.Name, e.Data = int32(op), int32(kg), string(name), data
		entries = append(entries, e)
	}
}

// Equal reports whether two entry lists are the same, for tests.
func Equal(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Operator != b[i].Operator || a[i].KeyGroup != b[i].KeyGroup || a[i].Name != b[i].Name || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// cursor reads the fields of an encoding; every read reports whether the
// bytes were there.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) byte() (byte, bool) {
	if c.off >= len(c.b) {
		return 0, false
	}
	c.off++
	return c.b[c.off-1], true
}

func (c *cursor) uvarint() (uint64, bool) {
	v, n := binary.Uvarint(c.b[c.off:])
	if n <= 0 {
		return 0, false
	}
	c.off += n
	return v, true
}

func (c *cursor) varint() (int64, bool) {
	v, n := binary.Varint(c.b[c.off:])
	if n <= 0 {
		return 0, false
	}
	c.off += n
	return v, true
}

func (c *cursor) uint32() (uint32, bool) {
	if len(c.b)-c.off < 4 {
		return 0, false
	}
	v := binary.BigEndian.Uint32(c.b[c.off:])
	c.off += 4
	return v, true
}

func (c *cursor) bytes() ([]byte, bool) {
	n, ok := c.uvarint()
	if !ok || n > uint64(len(c.b)-c.off) {
		return nil, false
	}
	v := c.b[c.off : c.off+int(n) : c.off+int(n)]
	c.off += int(n)
	return v, true
}

// Buffer builds the Data of an entry from length-prefixed fields.
type Buffer struct{ B []byte }

// Bytes appends a length-prefixed byte string.
func (w *Buffer) Bytes(p []byte) {
	w.B = binary.AppendUvarint(w.B, uint64(len(p)))
	w.B = append(w.B, p...)
}

// String appends a length-prefixed string.
func (w *Buffer) String(s string) {
	w.B = binary.AppendUvarint(w.B, uint64(len(s)))
	w.B = append(w.B, s...)
}

// Int appends a signed varint.
func (w *Buffer) Int(v int64) { w.B = binary.AppendVarint(w.B, v) }

// Uint appends an unsigned varint.
func (w *Buffer) Uint(v uint64) { w.B = binary.AppendUvarint(w.B, v) }

// Reader reads what a Buffer wrote; the first missing or malformed field
// sets Err, after which every read returns zero values.
type Reader struct {
	c   cursor
	Err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{c: cursor{b: b}} }

func (r *Reader) fail(what string) {
	if r.Err == nil {
		r.Err = fmt.Errorf("%w: truncated or malformed %s at byte %d", ErrCorrupt, what, r.c.off)
	}
}

// Bytes reads a length-prefixed byte string; it aliases the input.
func (r *Reader) Bytes() []byte {
	if r.Err != nil {
		return nil
	}
	v, ok := r.c.bytes()
	if !ok {
		r.fail("bytes")
	}
	return v
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.Bytes()) }

// Int reads a signed varint.
func (r *Reader) Int() int64 {
	if r.Err != nil {
		return 0
	}
	v, ok := r.c.varint()
	if !ok {
		r.fail("varint")
	}
	return v
}

// Uint reads an unsigned varint.
func (r *Reader) Uint() uint64 {
	if r.Err != nil {
		return 0
	}
	v, ok := r.c.uvarint()
	if !ok {
		r.fail("uvarint")
	}
	return v
}

// Len reads a count of items that each take at least one byte, refusing
// one larger than what is left (so that a corrupt count cannot make the
// caller allocate without bound).
func (r *Reader) Len() int {
	n := r.Uint()
	if r.Err == nil && n > uint64(len(r.c.b)-r.c.off) {
		r.fail("count")
		return 0
	}
	return int(n)
}

// AtEnd reports whether everything was read, or a read failed.
func (r *Reader) AtEnd() bool { return r.Err != nil || r.c.off >= len(r.c.b) }

// Done reports whether everything was read, and sets Err if bytes remain.
func (r *Reader) Done() error {
	if r.Err == nil && r.c.off != len(r.c.b) {
		r.Err = fmt.Errorf("%w: %d bytes left over", ErrCorrupt, len(r.c.b)-r.c.off)
	}
	return r.Err
}
