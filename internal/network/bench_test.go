package network

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/exec"
)

// BenchmarkThroughput moves 64 KiB batches from one endpoint to another
// over real TCP on the loopback and reports MB/s and msgs/s.
func BenchmarkThroughput(b *testing.B) {
	for _, streams := range []int{1, 4} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			benchThroughput(b, streams, 64<<10)
		})
	}
}

func benchThroughput(b *testing.B, streams, size int) {
	benchThroughputWith(b, streams, size, Config{}, Config{})
}

func benchThroughputWith(b *testing.B, streams, size int, ca, cc Config) {
	a := listen(b, "w1", ca)
	c := listen(b, "w2", cc)
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(rand.Uint32())
	}
	srcs := make([]chan exec.Msg, streams)
	dsts := make([]chan exec.Msg, streams)
	for s := range streams {
		srcs[s] = make(chan exec.Msg, 64)
		dsts[s] = make(chan exec.Msg, 64)
		a.Send("w2", c.Addr(), uint32(s), srcs[s], 1)
		c.Receive("w1", uint32(s), dsts[s], 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ra, rc := start(ctx, a), start(ctx, c)
	waitFor(b, 10*time.Second, "the connection", func() bool { return c.accepted.Load() == 1 })

	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	for s := range streams {
		n := b.N / streams
		if s == 0 {
			n += b.N % streams
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range n {
				// The payload is shared read-only: the sender does not
				// write to a batch.
				srcs[s] <- exec.Msg{Kind: exec.MsgData, Batch: payload}
			}
			srcs[s] <- exec.Msg{Kind: exec.MsgEnd}
		}()
		go func() {
			defer wg.Done()
			for m := range dsts[s] {
				if m.Kind == exec.MsgEnd {
					return
				}
				if len(m.Batch.([]byte)) != size {
					panic("short batch")
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	for _, r := range []<-chan error{ra, rc} {
		if err := wait(b, "endpoint", r, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(size)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
