package spate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/spate-dev/spate/internal/network"
	"github.com/spate-dev/spate/internal/pki"
)

// placedCA, when set, makes runPlaced's endpoints mutual TLS 1.3 with
// certificates of one job from it, as a cluster's workers are.
var placedCA *pki.CA

// placedTLS is the data-plane TLS of runPlaced's worker w; nil without
// placedCA.
func placedTLS(w string) *network.TLS {
	if placedCA == nil {
		return nil
	}
	kp, err := placedCA.Issue(pki.Identity{Role: pki.RoleWorker, Job: "placed", Worker: w}, nil)
	if err != nil {
		panic(err)
	}
	cert, err := kp.TLSCertificate()
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(placedCA.Cert)
	return &network.TLS{
		Server: pki.ServerConfig(cert, pool, pki.WorkerCheck("placed", "")),
		Client: func(peer string) *tls.Config {
			return pki.ClientConfig(cert, pool, pki.WorkerCheck("placed", peer))
		},
		PeerID: func(c *x509.Certificate) (string, error) {
			id, ok := pki.IdentityOf(c)
			if !ok {
				return "", errors.New("not a worker")
			}
			return id.Worker, nil
		},
	}
}

// BenchmarkKeyByReduceTCPTLS is BenchmarkKeyByReduceTCP without and with
// mutual TLS 1.3 on the data plane (AES-GCM where the CPU has AES
// instructions, as Go's TLS 1.3 prefers then): the cost of encrypting
// every batch between the workers.
func BenchmarkKeyByReduceTCPTLS(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("tls=%v", on), func(b *testing.B) {
			if on {
				ca, err := pki.NewCA("bench CA")
				if err != nil {
					b.Fatal(err)
				}
				placedCA = ca
				defer func() { placedCA = nil }()
			}
			b.ReportAllocs()
			e := NewEnv(WithParallelism(2))
			src := FromSource(e, "gen", counting{n: int64(b.N), keys: 10_000}, NoWatermarks[keyed]())
			sum := Reduce(KeyBy(src, func(v keyed) int64 { return v.Key }), func(a, v keyed) keyed { a.Value += v.Value; return a })
			SinkTo(sum, Sink[keyed](discardSink[keyed]{}))
			place := func(v, s int) string {
				if v == 0 {
					return "a"
				}
				return "b"
			}
			b.ResetTimer()
			if err := runPlaced(context.Background(), e, "bench", []string{"a", "b"}, place); err != nil {
				b.Fatal(err)
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/secs, "records/s")
			b.ReportMetric(float64(b.N)/secs/float64(min(4, runtime.GOMAXPROCS(0))), "records/s/core")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestRunPlacedTLS runs the keyed job over TLS and compares with the
// local executor's result.
func TestRunPlacedTLS(t *testing.T) {
	ca, err := pki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	placedCA = ca
	defer func() { placedCA = nil }()
	const n = 20_000
	local := NewEnv(WithParallelism(2))
	want := reduceJob(local, n)
	if err := local.Execute("local"); err != nil {
		t.Fatal(err)
	}
	e := NewEnv(WithParallelism(2))
	got := reduceJob(e, n)
	apart := func(v, s int) string { return map[bool]string{true: "a", false: "b"}[v == 0] }
	if err := runPlaced(context.Background(), e, "tls", []string{"a", "b"}, apart); err != nil {
		t.Fatal(err)
	}
	sameResults(t, got.Values(), want.Values())
}
