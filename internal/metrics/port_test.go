package metrics

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	cases := []struct {
		in      string
		want    PortRange
		wantErr string
	}{
		{in: "9249", want: PortRange{9249, 9249}},
		{in: " 9249-9260 ", want: PortRange{9249, 9260}},
		{in: "0", want: PortRange{0, 0}},
		{in: "9260-9249", wantErr: "not a range"},
		{in: "0-10", wantErr: "not a range"},
		{in: "70000", wantErr: "not a port"},
		{in: "-1", wantErr: "not a port"},
		{in: "+80", wantErr: "not a port"},
		{in: "a-b", wantErr: "not a port"},
		{in: "", wantErr: "not a port"},
	}
	for _, tc := range cases {
		got, err := ParsePortRange(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePortRange(%q) = %v, %v; want error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"9249", "9249-9260", "0", "1-65535", "x", "9-", "-9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePortRange(s)
		if err != nil {
			return
		}
		if r.Lo < 0 || r.Hi > 65535 || r.Lo > r.Hi || (r.Lo == 0) != (r.Hi == 0) {
			t.Fatalf("ParsePortRange(%q) = %v: not a valid range", s, r)
		}
	})
}

func TestPromPort(t *testing.T) {
	conf := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	if r, on, err := PromPort(conf()); err != nil || !on || r != (PortRange{9249, 9260}) {
		t.Errorf("default: %v %v %v", r, on, err)
	}
	if _, on, err := PromPort(conf(KeyReporters, "")); err != nil || on {
		t.Errorf("no reporters: on %v, err %v", on, err)
	}
	if _, _, err := PromPort(conf(KeyReporters, "jmx")); err == nil || !strings.Contains(err.Error(), KeyReporters) {
		t.Errorf("unknown reporter: %v", err)
	}
	if _, _, err := PromPort(conf(KeyPromPort, "x")); err == nil || !strings.Contains(err.Error(), KeyPromPort) || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("bad port: %v", err)
	}
}

// TestListenRange: a taken port of the range is skipped.
func TestListenRange(t *testing.T) {
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	p := first.Addr().(*net.TCPAddr).Port
	if p == 65535 {
		t.Skip("the free port is the last one")
	}
	ln, err := Listen("127.0.0.1", PortRange{p, p + 1})
	if err != nil {
		t.Skipf("the next port is taken too: %v", err)
	}
	defer ln.Close()
	if got := ln.Addr().(*net.TCPAddr).Port; got != p+1 {
		t.Fatalf("listened on %d, want %d", got, p+1)
	}
	if _, err := Listen("127.0.0.1", PortRange{p, p}); err == nil || !strings.Contains(err.Error(), KeyPromPort) || !strings.Contains(err.Error(), strconv.Itoa(p)) {
		t.Fatalf("a taken single port: %v", err)
	}
}
