package taskmanager

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/spate-dev/spate/api/v1"
	"github.com/spate-dev/spate/internal/config"
)

func TestLineSplitter(t *testing.T) {
	long := strings.Repeat("x", 2*maxLineBytes+10)
	exact := strings.Repeat("y", maxLineBytes)
	for _, tc := range []struct {
		name      string
		writes    []string
		wantLines []string
		wantSplit int
	}{
		{name: "lines", writes: []string{"a\nb\n"}, wantLines: []string{"a", "b"}},
		{name: "across writes", writes: []string{"he", "llo\nwor", "ld\n"}, wantLines: []string{"hello", "world"}},
		{name: "empty lines kept", writes: []string{"\n\na\n"}, wantLines: []string{"", "", "a"}},
		{name: "last line without newline", writes: []string{"a\nb"}, wantLines: []string{"a", "b"}},
		{name: "long line split", writes: []string{long + "\nafter\n"},
			wantLines: []string{long[:maxLineBytes], long[maxLineBytes : 2*maxLineBytes], long[2*maxLineBytes:], "after"}, wantSplit: 2},
		{name: "long line byte by byte", writes: strings.Split(long+"\nafter\n", ""),
			wantLines: []string{long[:maxLineBytes], long[maxLineBytes : 2*maxLineBytes], long[2*maxLineBytes:], "after"}, wantSplit: 2},
		{name: "exactly the longest line", writes: []string{exact[:100], exact[100:], "\nz\n"}, wantLines: []string{exact, "z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			s := &lineSplitter{emit: func(l string) { got = append(got, l) }}
			for _, w := range tc.writes {
				if n, err := s.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			s.flush()
			if !slices.Equal(got, tc.wantLines) {
				t.Errorf("lines of %v bytes, want %v", lens(got), lens(tc.wantLines))
			}
			if s.split != tc.wantSplit {
				t.Errorf("split = %d, want %d", s.split, tc.wantSplit)
			}
		})
	}
}

func lens(lines []string) []int {
	var n []int
	for _, l := range lines {
		n = append(n, len(l))
	}
	return n
}

func TestLineWriterRotation(t *testing.T) {
	var sink strings.Builder
	l := &lineWriter{w: &sink, file: "/var/log/tm.out"}
	l.line("[job a w-1]", "first")
	if got := l.recent(); got != "[job a w-1] first\n" {
		t.Fatalf("recent = %q", got)
	}
	if rotated, _ := v1.RotatedOutput(l.recent()); rotated {
		t.Fatal("reported rotated before anything rotated")
	}
	text := strings.Repeat("z", 1000)
	for range 2 * keptOutput / 1000 {
		l.line("[job a w-1]", text)
	}
	got := l.recent()
	rotated, file := v1.RotatedOutput(got)
	if !rotated || file != "/var/log/tm.out" {
		t.Fatalf("RotatedOutput = %v, %q; first line %.200q", rotated, file, got)
	}
	if len(got) > keptOutput+1024 || strings.Contains(got, "first") {
		t.Errorf("kept %d bytes, including the first line: %v", len(got), strings.Contains(got, "first"))
	}
	if sink.Len() != len("[job a w-1] first\n")+2*keptOutput/1000*len("[job a w-1] "+text+"\n") {
		t.Errorf("the output got %d bytes: everything must reach it", sink.Len())
	}
	// Without a known file, the marker says where nothing is.
	l.file = ""
	if rotated, file := v1.RotatedOutput(l.recent()); !rotated || file != "" {
		t.Errorf("RotatedOutput = %v, %q without a file", rotated, file)
	}
}

func TestTail(t *testing.T) {
	var tl tail
	for i := range tailLines + 5 {
		tl.add(strings.Repeat("l", i))
	}
	tl.add(strings.Repeat("w", 10*tailLineBytes))
	lines := strings.Split(tl.String(), "\n")
	if len(lines) != tailLines {
		t.Fatalf("kept %d lines, want %d", len(lines), tailLines)
	}
	if lines[0] != strings.Repeat("l", 6) {
		t.Errorf("oldest kept line is %q", lines[0])
	}
	if last := lines[len(lines)-1]; len(last) > tailLineBytes+10 || !strings.HasSuffix(last, "[...]") {
		t.Errorf("a long line is kept as %d bytes", len(last))
	}
}

func TestDescribeExit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		delay  bool
		want   string
	}{
		{name: "status", script: "exit 3", want: "exit status 3"},
		{name: "signal", script: "kill -9 $$", want: "killed by signal killed"},
		{name: "output held", script: "sleep 5 & echo started", delay: true, want: "held its output open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", tc.script)
			setProcAttr(cmd)
			if tc.delay {
				cmd.Stdout = &lineSplitter{emit: func(string) {}}
				cmd.WaitDelay = 50 * time.Millisecond
			}
			err := cmd.Run()
			if cmd.ProcessState != nil {
				defer signalGroup(cmd, 9)
			}
			if got := describeExit(cmd.ProcessState, err); !strings.Contains(got, tc.want) {
				t.Errorf("describeExit = %q, want %q", got, tc.want)
			}
		})
	}
	if got := describeExit(nil, errors.New("no such file")); got != "no such file" {
		t.Errorf("describeExit without a process = %q", got)
	}
}

func TestConfigFrom(t *testing.T) {
	for _, tc := range []struct {
		name              string
		entries           map[string]string
		wantProcessMemory int64
		wantWorkerMemory  int64
		wantErr           string
	}{
		{name: "defaults", wantProcessMemory: DefaultProcessMemory},
		{name: "process size", entries: map[string]string{KeyProcessMemory: "4g"}, wantProcessMemory: 4 << 30},
		{name: "worker limit", entries: map[string]string{KeyWorkerMemory: "300m"}, wantProcessMemory: DefaultProcessMemory, wantWorkerMemory: 300 << 20},
		{name: "malformed process size", entries: map[string]string{KeyProcessMemory: "lots"}, wantErr: KeyProcessMemory},
		{name: "zero process size", entries: map[string]string{KeyProcessMemory: "0"}, wantErr: KeyProcessMemory + ` = "0"`},
		{name: "malformed worker limit", entries: map[string]string{KeyWorkerMemory: "-1"}, wantErr: KeyWorkerMemory},
		{name: "malformed slots", entries: map[string]string{KeySlots: "two"}, wantErr: KeySlots},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c config.Config
			for k, v := range tc.entries {
				c.Set(k, v)
			}
			cfg, err := ConfigFrom(c, "jm:6123")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ConfigFrom error = %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ProcessMemory != tc.wantProcessMemory || cfg.WorkerMemory != tc.wantWorkerMemory {
				t.Errorf("memory = %d, %d; want %d, %d", cfg.ProcessMemory, cfg.WorkerMemory, tc.wantProcessMemory, tc.wantWorkerMemory)
			}
		})
	}
}

func TestWorkerMemory(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		slots     int
		wantLimit int64
		wantKey   string
	}{
		{name: "share of 1 slot in 4", cfg: Config{Slots: 4, ProcessMemory: 4 << 30}, slots: 1, wantLimit: 1 << 30, wantKey: KeyProcessMemory},
		{name: "share of 3 slots in 4", cfg: Config{Slots: 4, ProcessMemory: 4 << 30}, slots: 3, wantLimit: 3 << 30, wantKey: KeyProcessMemory},
		{name: "slots unknown", cfg: Config{Slots: 2, ProcessMemory: 1 << 30}, slots: 0, wantLimit: 512 << 20, wantKey: KeyProcessMemory},
		{name: "default", cfg: Config{Slots: 1}, slots: 1, wantLimit: DefaultProcessMemory, wantKey: KeyProcessMemory},
		{name: "explicit limit", cfg: Config{Slots: 4, WorkerMemory: 300 << 20}, slots: 3, wantLimit: 300 << 20, wantKey: KeyWorkerMemory},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.JobManager, tc.cfg.WorkDir = "jm:6123", t.TempDir()
			tm, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if limit, key := tm.workerMemory(tc.slots); limit != tc.wantLimit || key != tc.wantKey {
				t.Errorf("workerMemory(%d) = %d, %s; want %d, %s", tc.slots, limit, key, tc.wantLimit, tc.wantKey)
			}
		})
	}
}
