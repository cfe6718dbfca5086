package metrics

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// ctl is a consumer's head: it records the watermarks it gets.
type ctl struct{ wms chan int64 }

func (c ctl) Watermark(wm int64) { c.wms <- wm }
func (c ctl) Finish()            {}

var int64Codec = &exec.Codec[int64]{
	Encode: func(dst []byte, batch []exec.Rec[int64]) []byte {
		for _, r := range batch {
			dst = binary.BigEndian.AppendUint64(dst, uint64(r.V))
		}
		return dst
	},
	Decode: func(src []byte, into []exec.Rec[int64]) ([]exec.Rec[int64], error) {
		if len(src)%8 != 0 {
			return nil, errors.New("odd batch")
		}
		for i := 0; i < len(src); i += 8 {
			into = append(into, exec.Rec[int64]{V: int64(binary.BigEndian.Uint64(src[i:])), Ts: exec.NoTimestamp})
		}
		return into, nil
	},
}

// TestSamplerBackpressureAndBusy runs a producer into a consumer that
// takes a batch only when the test lets it: while the consumer holds a
// batch, the producer is blocked on the full queue (back-pressured) and
// the consumer counts as busy; records and bytes in and out add up, and
// the watermark reaches both ends.
func TestSamplerBackpressureAndBusy(t *testing.T) {
	const n = 64
	release := make(chan struct{})
	prod := &exec.Task{Name: "producer", Parallelism: 1}
	cons := &exec.Task{Name: "consumer", Parallelism: 1, Inbox: make(chan exec.Msg, 1), ChannelGates: []int{0}}
	wms := ctl{wms: make(chan int64, 4)}
	cons.Head = wms
	cons.Gates = []func(any) (int, error){func(b any) (int, error) {
		<-release
		recs, err := int64Codec.Decode(b.([]byte), nil)
		return len(recs), err
	}}
	w := exec.NewEdgeWriter(prod, exec.EdgeWriterConfig[int64]{Targets: []chan exec.Msg{cons.Inbox}, Part: exec.Forward, BatchSize: 4, Codec: int64Codec})
	prod.Source = func(ctx context.Context) error {
		for i := range int64(n) {
			w.Collect(i, exec.NoTimestamp)
		}
		w.Watermark(100)
		w.Finish()
		return nil
	}
	s := NewSampler([]Subtask{{Task: prod}, {Task: cons, Vertex: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- exec.Run(ctx, []*exec.Task{prod, cons}) }()

	// Both blocked: the producer on the full queue, the consumer in its
	// batch. Over a reading interval of at least 50 ms the producer is
	// back-pressured almost all of it, the consumer busy.
	deadline := time.Now().Add(10 * time.Second)
	for {
		time.Sleep(50 * time.Millisecond) // the interval the rates are measured over
		ms := s.Sample()
		p, c := ms[0], ms[1]
		if p.BackPressuredMsPerSecond > 900 && c.BusyMsPerSecond > 900 {
			if p.BusyMsPerSecond+p.IdleMsPerSecond+p.BackPressuredMsPerSecond > 1000.001 {
				t.Fatalf("producer's times add up to more than 1000 ms/s: %+v", p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no back-pressure seen: producer %+v, consumer %+v", p, c)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if wm := <-wms.wms; wm != 100 {
		t.Fatalf("consumer got watermark %d, want 100", wm)
	}
	ms := s.Sample()
	p, c := ms[0], ms[1]
	if p.RecordsOut != n || c.RecordsIn != n {
		t.Errorf("records out %d, in %d; want %d both", p.RecordsOut, c.RecordsIn, n)
	}
	if p.BytesOut != 8*n || c.BytesIn != 8*n {
		t.Errorf("bytes out %d, in %d; want %d both", p.BytesOut, c.BytesIn, 8*n)
	}
	if p.OutputWatermark != 100 {
		t.Errorf("producer's output watermark %d, want 100", p.OutputWatermark)
	}
	// The end of input is the final watermark; the consumer, a sink,
	// reports it as its output watermark too.
	if c.InputWatermark != math.MaxInt64 || c.OutputWatermark != math.MaxInt64 {
		t.Errorf("consumer's watermarks in %d out %d, want the final one", c.InputWatermark, c.OutputWatermark)
	}
	if p.PendingRecords != -1 || p.PendingBytes != -1 {
		t.Errorf("pending %d records %d bytes of a source that does not tell, want -1", p.PendingRecords, p.PendingBytes)
	}
	// Ended subtasks idle.
	time.Sleep(20 * time.Millisecond) // the interval the rates are measured over
	for _, m := range s.Sample() {
		if m.IdleMsPerSecond < 999 {
			t.Errorf("ended subtask %s: idle %v ms/s, want 1000", m.TaskName, m.IdleMsPerSecond)
		}
	}
}

// TestSamplerIdle: a consumer with nothing to read idles.
func TestSamplerIdle(t *testing.T) {
	cons := &exec.Task{Name: "consumer", Parallelism: 1, Inbox: make(chan exec.Msg, 1), ChannelGates: []int{0}, Head: ctl{wms: make(chan int64, 1)}}
	cons.Gates = []func(any) (int, error){func(any) (int, error) { return 0, nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- exec.Run(ctx, []*exec.Task{cons}) }()
	s := NewSampler([]Subtask{{Task: cons}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		time.Sleep(50 * time.Millisecond) // the interval the rates are measured over
		if m := s.Sample()[0]; m.IdleMsPerSecond > 900 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("waiting consumer not idle: %+v", m)
		}
	}
	cancel()
	<-done
}

// TestSetPending: a source's pending figures reach the sample.
func TestSetPending(t *testing.T) {
	src := &exec.Task{Name: "src", Parallelism: 1}
	src.M.SetPending(10, -1)
	m := NewSampler([]Subtask{{Task: src}}).Sample()[0]
	if m.PendingRecords != 10 || m.PendingBytes != -1 {
		t.Fatalf("pending %d records %d bytes, want 10 and -1", m.PendingRecords, m.PendingBytes)
	}
}
