package localkube

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

func TestExpand(t *testing.T) {
	e := &orderedEnv{}
	e.set("A", "1")
	e.set("B", "two")
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)-$(B)", "1-two"},
		{"$$(A)", "$(A)"},
		{"$(MISSING)", "$(MISSING)"},
		{"$A", "$A"},
		{"x$(A", "x$(A"},
		{"cost $5", "cost $5"},
	} {
		if got := expand(c.in, e); got != c.want {
			t.Errorf("expand(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// The mirror links the image's entries, with real directories only on the
// way to a mount path, and leaves the mount path itself free.
func TestMirror(t *testing.T) {
	img, dst := t.TempDir(), t.TempDir()
	for _, p := range []string{"opt/spate/bin/spate", "opt/spate/conf/old.yaml", "opt/app/job", "etc/x"} {
		os.MkdirAll(filepath.Join(img, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(img, p), nil, 0o644)
	}
	if err := mirror(img, dst, "/", []string{"/opt/spate/conf"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.Walk(dst, func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dst, p)
		kind := "dir"
		if fi.Mode()&os.ModeSymlink != 0 {
			kind = "link"
		}
		if rel != "." {
			got = append(got, rel+" "+kind)
		}
		return nil
	})
	sort.Strings(got)
	want := []string{"etc link", "opt dir", "opt/app link", "opt/spate dir", "opt/spate/bin link"}
	if len(got) != len(want) {
		t.Fatalf("mirror: %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("mirror: %v, want %v", got, want)
		}
	}
}
