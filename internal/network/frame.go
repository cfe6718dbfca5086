package network

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// protocolVersion is the version of the data protocol a HELLO announces.
// Version 2 added BARRIER frames and the attempt in HELLO.
const protocolVersion = 2

// frameType is the byte after a frame's length prefix.
type frameType uint8

const (
	frameData      frameType = 1 + iota // stream u32, channel i32, batch bytes
	frameWatermark                      // stream u32, channel i32, wm i64
	frameIdle                           // stream u32, channel i32
	frameEnd                            // stream u32, channel i32
	frameCredit                         // stream u32, n u32
	frameHello                          // version u32, from (u16 len + bytes), to (u16 len + bytes), attempt u64
	frameBarrier                        // stream u32, channel i32, checkpoint i64
)

func (t frameType) String() string {
	switch t {
	case frameData:
		return "DATA"
	case frameWatermark:
		return "WATERMARK"
	case frameIdle:
		return "IDLE"
	case frameEnd:
		return "END"
	case frameCredit:
		return "CREDIT"
	case frameHello:
		return "HELLO"
	case frameBarrier:
		return "BARRIER"
	}
	return fmt.Sprintf("frame type 0x%02x", uint8(t))
}

// Sizes of frame bodies (everything after the length prefix).
const (
	prefixLen     = 4         // uint32 big-endian body length
	streamBodyLen = 1 + 4 + 4 // type, stream, channel (or credit n)
	wmBodyLen     = streamBodyLen + 8
	helloMinLen   = 1 + 4 + 2 + 2 + 8
	// maxIDLen bounds an endpoint ID, so that a HELLO is small.
	maxIDLen = 256
	// helloLimit is the largest frame accepted before the handshake is done.
	helloLimit = helloMinLen + 2*maxIDLen
)

// frame is one decoded frame. Which fields are set depends on typ.
type frame struct {
	typ     frameType
	stream  uint32
	channel int32
	wm      int64  // WATERMARK
	id      int64  // BARRIER: the checkpoint
	n       uint32 // CREDIT
	batch   []byte // DATA; aliases the decoded buffer
	version uint32 // HELLO
	from    string // HELLO: ID of the sender
	to      string // HELLO: ID the sender means to reach
	attempt uint64 // HELLO: the job attempt the sender runs in
}

// errProtocol marks a peer that does not follow the protocol.
var errProtocol = errors.New("protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// checkLen rejects a frame whose announced body length cannot be right for
// its type before the body is read.
func checkLen(t frameType, n uint32) error {
	switch t {
	case frameData, frameHello:
		min := uint32(streamBodyLen)
		if t == frameHello {
			min = helloMinLen
		}
		if n < min {
			return protoErr("%v frame of %d bytes, want at least %d", t, n, min)
		}
	case frameWatermark, frameBarrier:
		if n != wmBodyLen {
			return protoErr("%v frame of %d bytes, want %d", t, n, wmBodyLen)
		}
	case frameIdle, frameEnd, frameCredit:
		if n != streamBodyLen {
			return protoErr("%v frame of %d bytes, want %d", t, n, streamBodyLen)
		}
	default:
		return protoErr("unknown %v", t)
	}
	return nil
}

// decodeFrame decodes a frame body: the type byte and its fields, without the
// length prefix. A DATA frame's batch aliases b. It never panics; any input
// that is not exactly one well-formed frame is a protocol error.
func decodeFrame(b []byte) (frame, error) {
	if len(b) == 0 {
		return frame{}, protoErr("empty frame")
	}
	f := frame{typ: frameType(b[0])}
	if err := checkLen(f.typ, uint32(min(len(b), 1<<32-1))); err != nil {
		return frame{}, err
	}
	be := binary.BigEndian
	switch f.typ {
	case frameData:
		f.stream = be.Uint32(b[1:])
		f.channel = int32(be.Uint32(b[5:]))
		f.batch = b[streamBodyLen:len(b):len(b)]
	case frameWatermark:
		f.stream = be.Uint32(b[1:])
		f.channel = int32(be.Uint32(b[5:]))
		f.wm = int64(be.Uint64(b[9:]))
	case frameBarrier:
		f.stream = be.Uint32(b[1:])
		f.channel = int32(be.Uint32(b[5:]))
		f.id = int64(be.Uint64(b[9:]))
	case frameIdle, frameEnd:
		f.stream = be.Uint32(b[1:])
		f.channel = int32(be.Uint32(b[5:]))
	case frameCredit:
		f.stream = be.Uint32(b[1:])
		f.n = be.Uint32(b[5:])
	case frameHello:
		f.version = be.Uint32(b[1:])
		rest := b[5:]
		var ok bool
		if f.from, rest, ok = cutString(rest); !ok {
			return frame{}, protoErr("HELLO frame: truncated sender ID")
		}
		if f.to, rest, ok = cutString(rest); !ok {
			return frame{}, protoErr("HELLO frame: truncated receiver ID")
		}
		if len(rest) < 8 {
			return frame{}, protoErr("HELLO frame: truncated attempt")
		}
		f.attempt = be.Uint64(rest)
		rest = rest[8:]
		if len(rest) != 0 {
			return frame{}, protoErr("HELLO frame: %d trailing bytes", len(rest))
		}
	}
	return f, nil
}

// cutString reads a uint16-length-prefixed string.
func cutString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < n {
		return "", nil, false
	}
	return string(b[:n]), b[n:], true
}

// appendFrame appends f, length prefix included, to dst.
func appendFrame(dst []byte, f *frame) []byte {
	be := binary.BigEndian
	switch f.typ {
	case frameData:
		dst = be.AppendUint32(dst, uint32(streamBodyLen+len(f.batch)))
		dst = append(dst, byte(f.typ))
		dst = be.AppendUint32(dst, f.stream)
		dst = be.AppendUint32(dst, uint32(f.channel))
		return append(dst, f.batch...)
	case frameWatermark:
		dst = be.AppendUint32(dst, wmBodyLen)
		dst = append(dst, byte(f.typ))
		dst = be.AppendUint32(dst, f.stream)
		dst = be.AppendUint32(dst, uint32(f.channel))
		return be.AppendUint64(dst, uint64(f.wm))
	case frameBarrier:
		dst = be.AppendUint32(dst, wmBodyLen)
		dst = append(dst, byte(f.typ))
		dst = be.AppendUint32(dst, f.stream)
		dst = be.AppendUint32(dst, uint32(f.channel))
		return be.AppendUint64(dst, uint64(f.id))
	case frameIdle, frameEnd:
		dst = be.AppendUint32(dst, streamBodyLen)
		dst = append(dst, byte(f.typ))
		dst = be.AppendUint32(dst, f.stream)
		return be.AppendUint32(dst, uint32(f.channel))
	case frameCredit:
		dst = be.AppendUint32(dst, streamBodyLen)
		dst = append(dst, byte(f.typ))
		dst = be.AppendUint32(dst, f.stream)
		return be.AppendUint32(dst, f.n)
	case frameHello:
		dst = be.AppendUint32(dst, uint32(helloMinLen+len(f.from)+len(f.to)))
		dst = append(dst, byte(f.typ))
		dst = be.AppendUint32(dst, f.version)
		dst = be.AppendUint16(dst, uint16(len(f.from)))
		dst = append(dst, f.from...)
		dst = be.AppendUint16(dst, uint16(len(f.to)))
		dst = append(dst, f.to...)
		return be.AppendUint64(dst, f.attempt)
	}
	panic(fmt.Sprintf("network: encode %v", f.typ))
}

// appendDataHeader appends the prefix, type, stream and channel of a DATA
// frame whose batch is n bytes; the caller writes the batch after it.
func appendDataHeader(dst []byte, stream uint32, channel int32, n int) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(streamBodyLen+n))
	dst = append(dst, byte(frameData))
	dst = be.AppendUint32(dst, stream)
	return be.AppendUint32(dst, uint32(channel))
}

// readFrame reads one frame of at most limit body bytes. A DATA frame is read
// into a freshly allocated buffer, which its batch aliases, so the receiver
// owns the batch; other frames reuse *scratch. It returns io.EOF only at a
// frame boundary; a frame cut short is io.ErrUnexpectedEOF.
func readFrame(r *bufio.Reader, limit int, scratch *[]byte) (frame, error) {
	var hdr [prefixLen + 1]byte
	if _, err := io.ReadFull(r, hdr[:prefixLen]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return frame{}, protoErr("empty frame")
	}
	if uint64(n) > uint64(limit) {
		return frame{}, protoErr("frame of %d bytes exceeds the limit of %d bytes", n, limit)
	}
	t, err := r.ReadByte()
	if err != nil {
		return frame{}, unexpected(err)
	}
	if err := checkLen(frameType(t), n); err != nil {
		return frame{}, err
	}
	var buf []byte
	if frameType(t) == frameData {
		buf = make([]byte, n)
	} else {
		if cap(*scratch) < int(n) {
			*scratch = make([]byte, n)
		}
		buf = (*scratch)[:n]
	}
	buf[0] = t
	if _, err := io.ReadFull(r, buf[1:]); err != nil {
		return frame{}, unexpected(err)
	}
	return decodeFrame(buf)
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
