package nexmark

import (
	"bytes"
	"reflect"
	"testing"
)

// TestDecodeJSONFastPath: every generated event's JSON takes the fast
// path and decodes to the event.
func TestDecodeJSONFastPath(t *testing.T) {
	evs := generateAll(t, Config{NumEvents: 5000})
	for i, want := range evs {
		line := want.AppendJSON(nil)
		got, ok := decodeFast(line)
		if !ok {
			t.Fatalf("event %d took the slow path: %s", i, line)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d: decoded %+v, want %+v", i, got, want)
		}
	}
}

// FuzzDecodeJSON: the fast path accepts only what the slow one decodes
// to the same event, and DecodeJSON equals json.Unmarshal, error or not.
func FuzzDecodeJSON(f *testing.F) {
	for _, e := range generateAll(f, Config{NumEvents: 30}) {
		f.Add(e.AppendJSON(nil))
	}
	f.Add([]byte(`{"event_type":2,"person":null,"auction":null,"bid":{"auction":01,"bidder":2,"price":3,"channel":"a","url":"b","dateTime":"2015-02-29 00:00:00.1","extra":""}}`))
	f.Add([]byte(`{"event_type":0,"person":{"id":-1,"name":"\u00e9","emailAddress":"","creditCard":"","city":"","state":"","dateTime":"2015-07-15 24:00:00","extra":"\xff"},"auction":null,"bid":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var slow Event
		slowErr := slow.unmarshalSlow(data)
		if fast, ok := decodeFast(data); ok {
			if slowErr != nil {
				t.Fatalf("fast path decoded what the slow one refuses (%v): %s", slowErr, data)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast %+v, slow %+v: %s", fast, slow, data)
			}
			if again := fast.AppendJSON(nil); !bytes.Equal(again, data) {
				t.Fatalf("fast path took a form AppendJSON does not write: %s, rewritten %s", data, again)
			}
		}
		got, err := DecodeJSON(data)
		if (err == nil) != (slowErr == nil) || (err == nil && !reflect.DeepEqual(got, slow)) {
			t.Fatalf("DecodeJSON = %+v, %v; slow path %+v, %v", got, err, slow, slowErr)
		}
	})
}

func BenchmarkDecodeJSON(b *testing.B) {
	var lines [][]byte
	for _, e := range generateAll(b, Config{NumEvents: 1000}) {
		lines = append(lines, e.AppendJSON(nil))
	}
	for _, d := range []struct {
		name   string
		decode func([]byte) error
	}{
		{"DecodeJSON", func(l []byte) error { _, err := DecodeJSON(l); return err }},
		{"unmarshalSlow", func(l []byte) error { var e Event; return e.unmarshalSlow(l) }},
	} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				if err := d.decode(lines[i%len(lines)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
