package taskmanager

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	"github.com/spate-dev/spate/internal/rpc/rpcpb"
)

func workerReport(n int) *rpcpb.WorkerMetrics {
	return &rpcpb.WorkerMetrics{JobId: "j", WorkerId: "w0", SampledUnixMs: int64(n),
		Process:  &rpcpb.ProcessMetrics{HeapUsed: 1 << 20, Goroutines: 9},
		Subtasks: []*rpcpb.SubtaskMetrics{{Vertex: 1, Subtask: int32(n), RecordsIn: 42, BusyMsPerSecond: 999.5, OutputWatermark: -1 << 63}}}
}

// TestReadWorkerMetrics: what a worker writes on its pipe is read back
// whole, in order, to the end.
func TestReadWorkerMetrics(t *testing.T) {
	var buf bytes.Buffer
	for i := range 3 {
		if _, err := protodelim.MarshalTo(&buf, workerReport(i)); err != nil {
			t.Fatal(err)
		}
	}
	var got []*rpcpb.WorkerMetrics
	if err := readWorkerMetrics(&buf, func(m *rpcpb.WorkerMetrics) { got = append(got, m) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("read %d reports, want 3", len(got))
	}
	for i, m := range got {
		if !proto.Equal(m, workerReport(i)) {
			t.Errorf("report %d = %v, want %v", i, m, workerReport(i))
		}
	}
	// A report cut short is an error, not a report.
	var cut bytes.Buffer
	protodelim.MarshalTo(&cut, workerReport(0))
	n := 0
	err := readWorkerMetrics(bytes.NewReader(cut.Bytes()[:cut.Len()-2]), func(*rpcpb.WorkerMetrics) { n++ })
	if err == nil || n != 0 {
		t.Fatalf("a truncated report: err %v, %d reports", err, n)
	}
}

// FuzzReadWorkerMetrics feeds the pipe reader arbitrary bytes: it never
// panics, and ends (at the end of the input or with an error).
func FuzzReadWorkerMetrics(f *testing.F) {
	var buf bytes.Buffer
	protodelim.MarshalTo(&buf, workerReport(1))
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x02, 0x0a})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		readWorkerMetrics(bytes.NewReader(b), func(m *rpcpb.WorkerMetrics) {
			if m == nil {
				t.Fatal("nil report")
			}
		})
	})
}
