package operator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/exec"
	"github.com/spate-dev/spate/internal/snapshot"
)

// BenchmarkCheckpointKeyedState measures one subtask's checkpoint of a
// keyed process function holding a given size of value state (1 KiB per
// key), written to file:// checkpoint storage (fsync and rename, as
// state.checkpoints.dir does): "sync-ms" is the synchronous pause (records
// stop while the state is captured), "async-ms" the asynchronous part
// (encode, write, fsync) while records flow again, "total-ms" the whole
// until the acknowledgement, and "state-MiB" the state file's size.
//
// 1 GiB is too big for CI's tests, so it is a benchmark only (select it
// with -bench 'CheckpointKeyedState/state=1GiB'; it needs about 4 GiB of
// memory: the state, its encoding and the file's page cache).
func BenchmarkCheckpointKeyedState(b *testing.B) {
	for _, mib := range []int{100, 1024} {
		name := fmt.Sprintf("state=%dMiB", mib)
		if mib >= 1024 {
			name = fmt.Sprintf("state=%dGiB", mib/1024)
		}
		b.Run(name, func(b *testing.B) {
			const valueSize = 1024
			keys := mib << 20 / valueSize
			op := filledKeyedOp(b, keys, valueSize)

			dir := b.TempDir()
			store, err := storage.Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			acks := make(chan snapshot.Ack, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			runner := snapshot.NewRunner(ctx, fileState{store}, ackChan(acks), nil)
			defer runner.Close()
			ts := runner.Task(0, 0, 0, 128)
			ts.Add(1, op)

			var sync, async, total time.Duration
			var size int64
			b.ResetTimer()
			for i := range b.N {
				id := int64(i + 1)
				start := time.Now()
				ts.Snapshot(id)
				a := <-acks
				total += time.Since(start)
				if a.State == nil {
					b.Fatalf("checkpoint %d: no state file", id)
				}
				sync += a.Sync
				async += a.Async
				size = a.State.Size
				b.StopTimer()
				os.RemoveAll(filepath.Join(dir, "chk-"+strconv.FormatInt(id, 10)))
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(sync.Milliseconds())/n, "sync-ms")
			b.ReportMetric(float64(async.Milliseconds())/n, "async-ms")
			b.ReportMetric(float64(total.Milliseconds())/n, "total-ms")
			b.ReportMetric(float64(size)/(1<<20), "state-MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// filledKeyedOp returns a keyed process operator whose value state holds
// keys values of valueSize bytes, put there by its own function.
func filledKeyedOp(b *testing.B, keys, valueSize int) snapshot.Operator {
	b.Helper()
	in := &Instance{
		Task: &exec.Task{Name: "bench", Parallelism: 1}, Name: "Fill", Parallelism: 1, MaxParallelism: 128,
		Outs: []any{exec.Output[int64](discardOut[int64]{})}, Checkpointing: true, Attempt: 1,
	}
	var state *ValueState[int64, []byte]
	spec := NewKeyedProcess(in, func(k int64) int64 { return k },
		func(_ *KeyedContext[int64, int64], k int64) error {
			v := make([]byte, valueSize)
			v[0], v[valueSize-1] = byte(k), byte(k>>8)
			state.Update(v)
			return nil
		}, nil,
		func(ctx *KeyedContext[int64, int64]) error {
			state = NewValueState[[]byte](ctx.State(), "blob")
			return nil
		}, nil)
	if err := spec.Open(); err != nil {
		b.Fatal(err)
	}
	input := spec.Inputs[0].(exec.Output[int64])
	for k := range int64(keys) {
		input.Collect(k, exec.NoTimestamp)
	}
	return spec.State
}

type discardOut[T any] struct{}

func (discardOut[T]) Collect(T, int64) {}
func (discardOut[T]) Watermark(int64)  {}
func (discardOut[T]) Finish()          {}

// fileState stores state files in checkpoint storage, under
// chk-<id>/<name>, as a worker does.
type fileState struct{ s storage.Store }

func (f fileState) Put(ctx context.Context, id int64, name string, data []byte) (snapshot.Handle, error) {
	obj := "chk-" + strconv.FormatInt(id, 10) + "/" + name
	w, err := f.s.Create(ctx, obj)
	if err != nil {
		return snapshot.Handle{}, err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return snapshot.Handle{}, err
	}
	if err := w.Close(); err != nil {
		return snapshot.Handle{}, err
	}
	return snapshot.Handle{URL: f.s.URL(obj), Size: int64(len(data)), SHA256: snapshot.Sum(data)}, nil
}

func (f fileState) Get(context.Context, snapshot.Handle) ([]byte, error) {
	return nil, fmt.Errorf("not read in this benchmark")
}

// ackChan is an Acker that sends the acknowledgements on.
type ackChan chan snapshot.Ack

func (c ackChan) Acknowledge(a snapshot.Ack) { c <- a }
func (c ackChan) Decline(v, s int, id int64, err error) {
	panic(fmt.Sprintf("checkpoint %d declined by subtask %d of vertex %d: %v", id, s, v, err))
}
