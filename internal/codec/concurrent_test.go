package codec_test

import (
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spate-dev/spate/internal/codec"
)

// Types first asked for concurrently, so that the test races compilation.
type (
	ConcA struct {
		X int
		B *ConcB
	}
	ConcB struct {
		Y  []string
		As map[string]ConcA
	}
	ConcC struct {
		T  time.Time
		Cs []*ConcC
	}
)

func TestConcurrentFor(t *testing.T) {
	const goroutines = 32
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range 50 {
				var err error
				switch (g + i) % 6 {
				case 0:
					err = concRoundTrip(ConcA{X: i, B: &ConcB{Y: []string{"y"}, As: map[string]ConcA{"a": {X: g}}}})
				case 1:
					err = concRoundTrip(ConcB{Y: []string{fmt.Sprint(i)}})
				case 2:
					err = concRoundTrip(ConcC{T: time.Unix(int64(i), 0).In(time.FixedZone("", 60*g)), Cs: []*ConcC{{}, nil}})
				case 3:
					err = concRoundTrip(fmt.Sprint(g, i))
				case 4:
					err = concRoundTrip(Small{Key: "k", Value: int64(i), Ts: time.Unix(int64(g), 0)})
				case 5:
					err = codec.Check(reflect.TypeFor[map[string][]ConcC]())
					if _, e := codec.For[Event](); e == nil {
						err = fmt.Errorf("For[Event] succeeded")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func concRoundTrip[T any](v T) error {
	c, err := codec.For[T]()
	if err != nil {
		return err
	}
	got, _, err := c.Decode(c.Append(nil, v))
	if err != nil {
		return err
	}
	if d := diff(v, got); d != "" {
		return fmt.Errorf("%s", d)
	}
	return nil
}

// TestStressGC encodes and decodes on the stack-kept path while the
// collector runs and goroutine stacks grow, checking every value.
func TestStressGC(t *testing.T) {
	iters := 2000
	if testing.Short() {
		iters = 200
	}
	stop := make(chan struct{})
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := must(codec.For[Tree]())
			var buf []byte
			for i := range iters {
				mk := func() Tree {
					return Tree{Name: strconv.Itoa(i * g), Kids: []Tree{{Name: strings.Repeat("k", i%50)}},
						ByName: map[string]*Tree{strconv.Itoa(i): {Name: "x" + strconv.Itoa(i)}}}
				}
				// Fresh heap data referenced only by Append's argument.
				buf = growStack(i%64, func() []byte { return c.Append(buf[:0], mk()) })
				v := mk()
				var got Tree
				growStack(i%32, func() []byte {
					var err error
					got, _, err = c.Decode(buf)
					if err != nil {
						errs <- err
					}
					return nil
				})
				if d := diff(v, got); d != "" {
					errs <- fmt.Errorf("iteration %d: %s", i, d)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-gcDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// growStack calls f under n frames of 1 KiB each.
//
//go:noinline
func growStack(n int, f func() []byte) []byte {
	var pad [1024]byte
	if n == 0 {
		return f()
	}
	pad[n%len(pad)] = byte(n)
	r := growStack(n-1, f)
	_ = pad[n%len(pad)]
	return r
}
