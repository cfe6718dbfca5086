package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spate-dev/spate"
)

// splitFiles expands paths into the list of files (see expandPaths) and
// returns the ones that belong to split: file i goes to subtask
// i % split.Parallelism. name prefixes error messages.
func splitFiles(name string, paths []string, split spate.Split) ([]string, error) {
	if split.Parallelism < 1 {
		return nil, fmt.Errorf("%s: invalid split: parallelism %d, want at least 1", name, split.Parallelism)
	}
	if split.Subtask < 0 || split.Subtask >= split.Parallelism {
		return nil, fmt.Errorf("%s: invalid split: subtask %d not in [0, %d)", name, split.Subtask, split.Parallelism)
	}
	files, err := expandPaths(paths)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var mine []string
	for i, f := range files {
		if i%split.Parallelism == split.Subtask {
			mine = append(mine, f)
		}
	}
	return mine, nil
}

// expandPaths turns source paths into a list of files. A path that exists is
// a file or a directory: a file is listed as is, a directory contributes its
// regular (or symlinked regular) files whose names do not start with a dot,
// sorted by name. A path that does not exist but contains glob
// metacharacters is a pattern: its matches, sorted, are treated like paths
// given explicitly, except that hidden files are skipped unless the last
// element of the pattern itself starts with a dot. A path that neither exists
// nor matches anything is an error naming it. Files listed more than once are
// kept at their first position.
func expandPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("no paths given")
	}
	var files []string
	seen := make(map[string]bool)
	add := func(f string) {
		key := filepath.Clean(f)
		if !seen[key] {
			seen[key] = true
			files = append(files, f)
		}
	}
	for _, p := range paths {
		if p == "" {
			return nil, errors.New("empty path")
		}
		info, err := os.Stat(p)
		if err == nil {
			if err := addPath(p, info, add); err != nil {
				return nil, err
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) || !hasMeta(p) {
			return nil, err // *fs.PathError names p
		}
		matches, gerr := filepath.Glob(p)
		if gerr != nil {
			return nil, fmt.Errorf("pattern %q: %w", p, gerr)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("pattern %q: no file matches: %w", p, fs.ErrNotExist)
		}
		sort.Strings(matches)
		hiddenOK := isHidden(filepath.Base(p))
		for _, m := range matches {
			if !hiddenOK && isHidden(filepath.Base(m)) {
				continue
			}
			info, err := os.Stat(m)
			if err != nil {
				return nil, err
			}
			if err := addPath(m, info, add); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// addPath adds the file p, or the files of the directory p.
func addPath(p string, info fs.FileInfo, add func(string)) error {
	if !info.IsDir() {
		add(p)
		return nil
	}
	entries, err := os.ReadDir(p) // sorted by name
	if err != nil {
		return err
	}
	for _, e := range entries {
		if isHidden(e.Name()) {
			continue
		}
		full := filepath.Join(p, e.Name())
		switch {
		case e.Type().IsRegular():
			add(full)
		case e.Type()&fs.ModeSymlink != 0:
			if fi, err := os.Stat(full); err == nil && fi.Mode().IsRegular() {
				add(full)
			}
		}
	}
	return nil
}

func isHidden(name string) bool { return strings.HasPrefix(name, ".") }

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }
