package savepoint

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/jobgraph"
	"github.com/spate-dev/spate/internal/snapshot"
)

// BenchmarkSavepoint measures, for keyed state of 100 MiB and 1 GiB
// (parallelism 4, values of 64 KiB spread over the key groups) on a file
// system and on the in-test S3 server (gofakes3 in memory, over TCP):
//
//   - savepoint: what the JobManager does once a savepoint's subtasks
//     acknowledged: the checkpoint's state files are read from checkpoint
//     storage and the savepoint written in the canonical format, one file
//     per operator and subtask, _metadata last (savepoint.Write);
//   - restore: what a restore from it does: Load, Assign to the job, and
//     every state file read back as the workers read them (OpenObject,
//     size and SHA-256 checked, decoded).
//
// Run once each: go test -run NONE -bench Savepoint -benchtime 1x ./internal/savepoint
func BenchmarkSavepoint(b *testing.B) {
	for _, size := range []int64{100 << 20, 1 << 30} {
		for _, where := range []string{"file", "s3"} {
			b.Run(fmt.Sprintf("state=%dMiB/storage=%s", size>>20, where), func(b *testing.B) { benchSavepoint(b, size, where) })
		}
	}
}

const (
	benchParallelism = 4
	benchValue       = 64 << 10
)

func benchSavepoint(b *testing.B, size int64, where string) {
	ctx := context.Background()
	var opts storage.Options
	chkDir, spDir := b.TempDir(), b.TempDir()
	if where == "s3" {
		srv := newS3Server(b)
		opts = srv.options()
		// gofakes3 assembles a completed multipart upload in memory:
		// at 1 GiB that takes longer than the tests' 5 s.
		opts.S3.MaxRetries, opts.S3.RequestTimeout = 0, 2*time.Minute
		chkDir, spDir = "s3://"+s3Bucket+"/checkpoints", "s3://"+s3Bucket+"/savepoints"
	}
	chk, err := storage.OpenWith(chkDir, opts)
	if err != nil {
		b.Fatal(err)
	}
	g := graph(b, benchParallelism)
	m := keyedCheckpoint(b, g.Vertices[1].Operators[0].ID, size)
	m.Operators = Operators(g)
	// The checkpoint as the JobManager completed it: state files in
	// checkpoint storage, the handles in its _metadata.
	if _, err := storage.WriteMetadata(ctx, chk, "job", m); err != nil {
		b.Fatal(err)
	}
	if m, err = storage.Load(ctx, chk, "job", m.ID); err != nil {
		b.Fatal(err)
	}
	read := func(h checkpoint.Handle) ([]byte, error) { return storage.ReadState(ctx, chk, h) }
	job := Job{ID: "0123456789abcdef", Name: "bench", Parallelism: []int{benchParallelism, benchParallelism}}
	mib := float64(size) / (1 << 20)
	var write, restore time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		path, err := Write(ctx, spDir, opts, job, m, read)
		if err != nil {
			b.Fatal(err)
		}
		write += time.Since(start)
		start = time.Now()
		n, err := restoreAll(ctx, g, path, opts)
		if err != nil {
			b.Fatal(err)
		}
		restore += time.Since(start)
		if n < size {
			b.Fatalf("restored %d bytes of values, want %d", n, size)
		}
	}
	b.StopTimer()
	per := func(d time.Duration) time.Duration { return d / time.Duration(b.N) }
	b.ReportMetric(float64(per(write).Milliseconds()), "savepoint-ms")
	b.ReportMetric(mib/per(write).Seconds(), "savepoint-MiB/s")
	b.ReportMetric(float64(per(restore).Milliseconds()), "restore-ms")
	b.ReportMetric(mib/per(restore).Seconds(), "restore-MiB/s")
}

// keyedCheckpoint is a checkpoint whose keyed operator (node) holds size
// bytes of values over benchParallelism subtasks, each in its key groups.
func keyedCheckpoint(b *testing.B, node int, size int64) checkpoint.Metadata {
	b.Helper()
	value := make([]byte, benchValue)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range value {
		value[i] = byte(r.Uint32())
	}
	m := checkpoint.Metadata{ID: 7, Attempt: 1, TimestampMs: 7000}
	perSubtask := size / benchParallelism
	groups := 128 / benchParallelism
	for s := range benchParallelism {
		var es []snapshot.Entry
		for n := int64(0); n*benchValue < perSubtask; n++ {
			v := append([]byte(nil), value...)
			v[0], v[1], v[2] = byte(n), byte(n>>8), byte(s)
			es = append(es, snapshot.Entry{Operator: int32(node), Name: "value/last", KeyGroup: int32(s*groups + int(n)%groups), Data: v})
		}
		data := snapshot.Encode(nil, es)
		m.Subtasks = append(m.Subtasks, checkpoint.SubtaskState{Vertex: 1, Subtask: s, Attempt: 1, States: []checkpoint.Handle{{
			Operator: -1, Kind: checkpoint.KindSubtask, Inline: data, Size: int64(len(data)), SHA256: snapshot.Sum(data),
			KeyGroupStart: s * groups, KeyGroupEnd: (s+1)*groups - 1,
		}}})
	}
	return m
}

// restoreAll loads the savepoint at path, assigns it to g, and reads
// every state file as the workers do; it returns the bytes of values.
func restoreAll(ctx context.Context, g *jobgraph.JobGraph, path string, opts storage.Options) (int64, error) {
	snap, err := Load(ctx, path, opts)
	if err != nil {
		return 0, err
	}
	m, err := Assign(g, snap, false)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, st := range m.Subtasks {
		for _, h := range st.States {
			if h.URL == "" {
				continue
			}
			r, err := storage.OpenObject(ctx, h.URL, opts)
			if err != nil {
				return 0, err
			}
			data, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				return 0, err
			}
			if err := snapshot.Check(snapshot.Handle{URL: h.URL, Size: h.Size, SHA256: h.SHA256}, data); err != nil {
				return 0, err
			}
			es, err := snapshot.Decode(data)
			if err != nil {
				return 0, err
			}
			for _, e := range es {
				n += int64(len(e.Data))
			}
		}
	}
	return n, nil
}
