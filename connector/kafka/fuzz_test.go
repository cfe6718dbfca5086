package kafka

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// FuzzSplitID: parseSplitID accepts exactly the names String makes, and
// gives back what made them.
func FuzzSplitID(f *testing.F) {
	for _, s := range []string{"events/0", "a.b_c-d/12", "t/", "/1", "t/01", "t/-1", "t/2147483648", "x/y/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := parseSplitID(s)
		if err != nil {
			return
		}
		if tp.String() != s {
			t.Fatalf("parseSplitID(%q) = %+v, which prints as %q", s, tp, tp.String())
		}
		if tp.partition < 0 || tp.topic == "" {
			t.Fatalf("parseSplitID(%q) = %+v", s, tp)
		}
	})
}

// FuzzOffset: decodePosition refuses what encodePosition cannot make,
// and round-trips what it can.
func FuzzOffset(f *testing.F) {
	f.Add(encodePosition(0, -1))
	f.Add(encodePosition(1<<40, -1))
	f.Add(encodePosition(5, 9))
	f.Add([]byte{1})
	f.Add([]byte{2, 0})
	f.Add([]byte{1, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		off, stop, err := decodePosition(b)
		if err != nil {
			return
		}
		if off < 0 || stop < -1 || !bytes.Equal(encodePosition(off, stop), b) {
			t.Fatalf("decodePosition(%x) = %d, %d, which encodes as %x", b, off, stop, encodePosition(off, stop))
		}
	})
}

// FuzzCommittable: decodeCommittable refuses what encode cannot make,
// and round-trips what it can.
func FuzzCommittable(f *testing.F) {
	f.Add(committable{id: "p-0-1-abcd-0", pid: 7, epoch: 3}.encode())
	f.Add(committable{id: "x", pid: 1 << 50, epoch: 32767}.encode())
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, 'a', 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommittable(b)
		if err != nil {
			return
		}
		if c.id == "" || c.pid < 0 || c.epoch < 0 {
			t.Fatalf("decodeCommittable(%x) = %+v", b, c)
		}
		if again, err := decodeCommittable(c.encode()); err != nil || again != c {
			t.Fatalf("decodeCommittable(%x) = %+v, which re-encodes to %+v, %v", b, c, again, err)
		}
	})
}

// FuzzDeserializers: the JSON, string and bytes deserializers never
// panic, whatever the value.
func FuzzDeserializers(f *testing.F) {
	f.Add([]byte(`{"N":1}`))
	f.Add([]byte(`{"N":`))
	f.Add([]byte{0xff, 0xfe})
	type event struct {
		N int
		S []string
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &Record{Topic: "t", Value: b}
		if _, err := JSON[event]()(r); err != nil {
			if txt := recordText(b); len(txt) > 2*maxRecordText+3 {
				t.Fatalf("record text of %d bytes", len(txt))
			}
		}
		if s, _ := String()(r); s != string(b) {
			t.Fatal("String changed the value")
		}
		if v, _ := Bytes()(r); !bytes.Equal(v, b) {
			t.Fatal("Bytes changed the value")
		}
	})
}

// FuzzBlockCopies: values copied through a reader's shared block by
// Bytes and String equal the records' values after the records' buffers
// are overwritten, and an append to one copy never changes another.
func FuzzBlockCopies(f *testing.F) {
	f.Add([]byte("abc"), 3)
	f.Add(bytes.Repeat([]byte{7}, blockSize/8+1), 2)
	f.Add([]byte{}, 5)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		n = n%200 + 1
		var k block
		var vals [][]byte
		var strs []string
		var want [][]byte
		for i := range n {
			v := append(append([]byte(nil), b...), byte(i)) // varying lengths and contents
			v = v[:len(v)-i%2]
			r := &Record{Value: v, copies: &k}
			got, _ := Bytes()(r)
			s, _ := String()(r)
			want = append(want, append([]byte(nil), v...))
			vals, strs = append(vals, got), append(strs, s)
			clear(v) // the fetch's buffer may go: the copies stay
		}
		for i := range vals {
			if !bytes.Equal(vals[i], want[i]) || strs[i] != string(want[i]) {
				t.Fatalf("copy %d = %q, %q; want %q", i, vals[i], strs[i], want[i])
			}
			if len(vals[i]) == 0 && vals[i] != nil {
				t.Fatalf("copy %d of an empty value is not nil", i)
			}
		}
		for i := range vals {
			vals[i] = append(vals[i], 0xAA)
		}
		for i := range vals {
			if !bytes.Equal(vals[i][:len(vals[i])-1], want[i]) || strs[i] != string(want[i]) {
				t.Fatalf("an append changed copy %d", i)
			}
		}
	})
}

// FuzzTransactionalIDSubtask: idSubtask reads the subtask of exactly the
// ids "<prefix>-<j>-…" a writer makes, j in canonical decimal, and never
// of another prefix's.
func FuzzTransactionalIDSubtask(f *testing.F) {
	for _, s := range []string{"job-0-1-abcd-0", "job-12-3-ff-1", "job-01-1-a-0", "job--1-a-0", "job-1", "job-x-1", "jobs-1-1-a-0", "job-9223372036854775808-1"} {
		f.Add("job", s)
	}
	f.Fuzz(func(t *testing.T, prefix, id string) {
		j, ok := idSubtask(prefix, id)
		if !ok {
			return
		}
		want := prefix + "-" + strconv.Itoa(j) + "-"
		if j < 0 || !strings.HasPrefix(id, want) {
			t.Fatalf("idSubtask(%q, %q) = %d, but the id does not start %q", prefix, id, j, want)
		}
	})
}
