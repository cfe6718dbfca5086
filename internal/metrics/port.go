package metrics

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// Configuration keys of the Prometheus reporter, Flink's.
const (
	// KeyReporters lists the reporters a daemon starts, comma-separated;
	// "prom" (the default) serves Prometheus' /metrics, empty starts none.
	KeyReporters = "metrics.reporters"
	// KeyPromPort is the port, or the range lo-hi of ports, a daemon's
	// /metrics listens on: the first free one is taken (several
	// TaskManagers share a host). 0 picks any free port.
	KeyPromPort = "metrics.reporter.prom.port"
	// DefaultPromPort is KeyPromPort's default: Flink's 9249, and the
	// ports after it for the other daemons on the host.
	DefaultPromPort = "9249-9260"
)

// PortRange is a range of TCP ports, both ends included; {0, 0} means any
// free port.
type PortRange struct{ Lo, Hi int }

// ParsePortRange reads a port ("9249"), a range ("9249-9260") or 0.
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePort(lo)
	if err != nil {
		return PortRange{}, err
	}
	if !isRange {
		return PortRange{a, a}, nil
	}
	b, err := parsePort(hi)
	if err != nil {
		return PortRange{}, err
	}
	if a == 0 || b < a {
		return PortRange{}, fmt.Errorf("%q is not a range of ports: want lo-hi with 1 <= lo <= hi <= 65535", s)
	}
	return PortRange{a, b}, nil
}

func parsePort(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || s != strconv.Itoa(n) {
		return 0, fmt.Errorf("%q is not a port: want a number from 0 to 65535", s)
	}
	return n, nil
}

// PromPort reads KeyPromPort from get (a configuration lookup),
// DefaultPromPort if unset, and whether the Prometheus reporter is
// enabled (KeyReporters).
func PromPort(get func(key string) (string, bool)) (PortRange, bool, error) {
	enabled := true
	if v, ok := get(KeyReporters); ok {
		enabled = false
		for _, r := range strings.Split(v, ",") {
			switch r = strings.TrimSpace(r); r {
			case "prom":
				enabled = true
			case "":
			default:
				return PortRange{}, false, fmt.Errorf("configuration %s = %q: unknown reporter %q: the reporters are prom (Prometheus' /metrics), or none (empty)", KeyReporters, v, r)
			}
		}
	}
	v, ok := get(KeyPromPort)
	if !ok || strings.TrimSpace(v) == "" {
		v = DefaultPromPort
	}
	pr, err := ParsePortRange(v)
	if err != nil {
		return PortRange{}, false, fmt.Errorf("configuration %s = %q: %w (a port, a range such as %s, or 0 for any free port)", KeyPromPort, v, err, DefaultPromPort)
	}
	return pr, enabled, nil
}

// Listen opens a TCP listener on host at the first free port of r.
func Listen(host string, r PortRange) (net.Listener, error) {
	var last error
	for p := r.Lo; p <= r.Hi; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return ln, nil
		}
		last = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, fmt.Errorf("listen for /metrics on %s, ports %d-%d: %w (set %s to a free port or range, or 0)", host, r.Lo, r.Hi, last, KeyPromPort)
}

// PipeEnv names the environment variable that tells a worker the file
// descriptor of its metrics pipe, on which it writes a length-delimited
// rpcpb.WorkerMetrics every second for its TaskManager.
const PipeEnv = "SPATE_METRICS_FD"
