// Package codec turns records into bytes and back, for records that cross
// process boundaries: sent across partitioning edges (KeyBy, rebalance) to
// subtasks in other processes, or written out to be read back later.
//
// For returns the codec of a type. Unless the user registered one (through
// spate.RegisterCodec, which calls Register), the codec is derived from the
// type's structure: booleans, integers and unsigned integers of every size
// (not uintptr), floating-point and complex numbers, strings, byte slices,
// time.Time, arrays, slices, maps, pointers and structs, including their
// unexported fields, named types of all of these and recursive types. A
// type whose pointer implements both encoding.BinaryMarshaler and
// encoding.BinaryUnmarshaler is encoded with those methods, unless it is a
// struct that has them only by promotion from embedded fields (such as a
// struct embedding time.Time), which would lose its other fields. Channels,
// functions, unsafe.Pointer, uintptr and interface types (including any)
// cannot be derived and need a registered codec; Check reports which part
// of a type is the problem.
//
// # Format
//
// The encoding is compact and carries no type information: both ends must
// agree on the type. Values are laid out depth-first, struct fields in
// declaration order (blank fields of zero size skipped), with no padding:
//
//   - bool: one byte, 0 or 1.
//   - signed integers: zigzag varint (encoding/binary.AppendVarint);
//     unsigned integers: varint (encoding/binary.AppendUvarint). The width of
//     the Go type does not change the encoding; decoding checks the range.
//   - float32, float64: the IEEE 754 bits, 4 or 8 bytes little-endian;
//     complex numbers are the real then the imaginary part.
//   - string: varint length, then the bytes.
//   - slices, including []byte, and maps: varint of length+1, then the
//     elements (a map's as key, value pairs, in map iteration order, so
//     equal maps may encode differently); 0 stands for nil, so nil and
//     empty are told apart.
//   - arrays: the elements, no length; [N]byte as N raw bytes.
//   - pointers: one byte, 0 for nil or 1 followed by the pointed-to value.
//     Pointer sharing is not preserved and values must not contain pointer
//     cycles.
//   - time.Time: zigzag varint of the Unix seconds, varint of
//     nanoseconds<<1 | hasOffset, then, unless the location is UTC, the
//     zigzag varint of the zone offset in seconds. The instant and the
//     offset survive, decoded into a fixed zone; the zone name and the
//     monotonic clock reading do not.
//   - BinaryMarshaler types: varint length, then MarshalBinary's bytes.
//   - registered codecs: whatever the codec writes.
//
// Decode treats its input as untrusted: it does not panic on malformed
// input (the user code it calls, UnmarshalBinary methods and registered
// codecs, must not either), checks every length against the bytes that
// remain before allocating, and limits the nesting of pointers, slices and
// maps to 10000 levels. Errors name the type and the path to the part
// being decoded; truncated input yields an error wrapping
// io.ErrUnexpectedEOF.
package codec
