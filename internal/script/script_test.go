package script

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // canonical lines
		wantErr string
	}{
		{name: "empty", in: "\n# only a comment\n\n"},
		{name: "command without time", in: "config interval=1s", want: []string{"config interval=1s"}},
		{name: "timed", in: "at 1200ms ack vertex=0 subtask=1", want: []string{"at 1.2s ack vertex=0 subtask=1"}},
		{name: "quoted", in: `at 2s fail error="disk full = bad"`, want: []string{`at 2s fail error="disk full = bad"`}},
		{name: "escaped quote", in: `fail error="a \"b\""`, want: []string{`fail error="a \"b\""`}},
		{name: "empty value", in: `x a=`, want: []string{`x a=""`}},
		{name: "backwards", in: "at 2s a\nat 1s b", wantErr: "before the previous"},
		{name: "bad time", in: "at soon a", wantErr: "want a duration"},
		{name: "no command", in: "at 1s", wantErr: "want \"at <time>"},
		{name: "arg first", in: "a=b c", wantErr: "want a command"},
		{name: "bad arg", in: "a b", wantErr: "want key=value"},
		{name: "twice", in: "a b=1 b=2", wantErr: "given twice"},
		{name: "open quote", in: `a b="x`, wantErr: "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			var got []string
			for _, l := range lines {
				got = append(got, l.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	lines, err := Parse("at 1s ack n=3 d=200ms s=x typo=1")
	if err != nil {
		t.Fatal(err)
	}
	l := lines[0]
	if n, err := l.Int("n", 0); err != nil || n != 3 {
		t.Errorf("Int(n) = %d, %v; want 3", n, err)
	}
	if n, err := l.Int("missing", 7); err != nil || n != 7 {
		t.Errorf("Int(missing) = %d, %v; want the default 7", n, err)
	}
	if d, err := l.Duration("d", 0); err != nil || d != 200*time.Millisecond {
		t.Errorf("Duration(d) = %v, %v; want 200ms", d, err)
	}
	if s := l.Str("s", ""); s != "x" {
		t.Errorf("Str(s) = %q, want x", s)
	}
	if _, err := l.Int("s", 0); err == nil {
		t.Error("Int of a word: no error")
	}
	if err := l.Unused(); err == nil || !strings.Contains(err.Error(), "typo") {
		t.Errorf("Unused() = %v, want it to name typo", err)
	}
}

// FuzzParse checks that Parse never panics and that a parsed script's
// canonical form parses to the same lines.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"at 1s ack vertex=0 subtask=1 attempt=1 chk=1",
		`config interval=1s error="a b"`,
		"# c\n\nat 0s start\nat 5ms x y=\"\\\"\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines, err := Parse(s)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l.String() + "\n")
		}
		again, err := Parse(b.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", b.String(), s, err)
		}
		if len(again) != len(lines) {
			t.Fatalf("canonical form of %q has %d lines, want %d", s, len(again), len(lines))
		}
		for i := range lines {
			if again[i].String() != lines[i].String() {
				t.Fatalf("line %d: %q reparsed as %q", i, lines[i].String(), again[i].String())
			}
		}
	})
}
