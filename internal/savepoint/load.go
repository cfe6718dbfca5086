package savepoint

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/snapshot"
)

// Snapshot is a savepoint or a retained checkpoint, loaded: the state of
// each operator by uid, its files located where the snapshot is now.
type Snapshot struct {
	// Path is the savepoint's directory (or the checkpoint's).
	Path       string
	Checkpoint checkpoint.ID
	// TimestampMs is the trigger's time, Unix milliseconds.
	TimestampMs int64
	Operators   []OperatorState
}

// OperatorState is one operator's state in a Snapshot.
type OperatorState struct {
	UID, Name      string
	Parallelism    int
	MaxParallelism int
	// Parts are its subtasks' states, in subtask order; a subtask without
	// state has none.
	Parts []Part
}

// Part is one subtask's state of an operator: Handle locates it (Remap
// set, Operator to be filled in by Assign), unless the subtask had
// finished without state.
type Part struct {
	Subtask  int
	Finished bool
	// HasState tells that Handle locates a file.
	HasState bool
	Handle   snapshot.Handle
}

// localPath turns a file:// URL into a path; anything else is returned
// as it is.
func localPath(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme == "file" {
		return filepath.FromSlash(u.Path)
	}
	return s
}

var chkName = regexp.MustCompile(`^chk-([0-9]+)$`)

// Load reads the savepoint, or the retained checkpoint, at path: its
// directory or its _metadata, a path, a file:// URL, or an s3:// URL in
// the object store opts describe. Its files must exist (with the sizes
// recorded, on a file system; their SHA-256 is checked as they are
// restored).
func Load(ctx context.Context, path string, opts storage.Options) (*Snapshot, error) {
	if objectStore(path) {
		return loadObject(ctx, path, opts)
	}
	p := localPath(path)
	if filepath.Base(p) == storage.MetadataName {
		p = filepath.Dir(p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("savepoint %s: %w", path, err)
	}
	raw, err := os.ReadFile(filepath.Join(abs, storage.MetadataName))
	if err != nil {
		return nil, fmt.Errorf("savepoint %s: no readable %s (a savepoint directory, or a retained checkpoint's chk-<n>): %w: %w", path, storage.MetadataName, ErrNotSavepoint, err)
	}
	sp, err := isSavepoint(path, raw)
	if err != nil {
		return nil, err
	}
	if sp {
		return loadSavepoint(abs, raw, func(file string) (string, int64, error) {
			f := filepath.Join(abs, filepath.FromSlash(file))
			size, err := osStat(f)
			return (&url.URL{Scheme: "file", Path: filepath.ToSlash(f)}).String(), size, err
		})
	}
	return loadCheckpoint(ctx, abs, storage.Options{})
}

// objectStore tells a path in an object store (s3://) from a local one.
func objectStore(path string) bool {
	u, err := url.Parse(path)
	return err == nil && (u.Scheme == "s3" || u.Scheme == "s3a" || u.Scheme == "s3p")
}

// loadObject reads the savepoint, or the retained checkpoint, at the URL
// path in an object store: its files must exist (their sizes and SHA-256
// are checked as they are restored).
func loadObject(ctx context.Context, path string, opts storage.Options) (*Snapshot, error) {
	dir := strings.TrimSuffix(strings.TrimSuffix(path, "/"+storage.MetadataName), "/")
	parent, name := splitURL(dir)
	if name == "" {
		return nil, fmt.Errorf("savepoint %s: name a savepoint's directory (s3://bucket/prefix/savepoint-...): %w", path, ErrNotSavepoint)
	}
	store, err := storage.OpenWith(parent, opts)
	if err != nil {
		return nil, fmt.Errorf("savepoint %s: %w", path, err)
	}
	raw, err := readObject(ctx, store, name+"/"+storage.MetadataName)
	if err != nil {
		return nil, fmt.Errorf("savepoint %s: no readable %s (a savepoint directory, or a retained checkpoint's chk-<n>): %w: %w", path, storage.MetadataName, ErrNotSavepoint, err)
	}
	sp, err := isSavepoint(path, raw)
	if err != nil {
		return nil, err
	}
	if !sp {
		return loadCheckpoint(ctx, dir, opts)
	}
	names, err := store.List(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("savepoint %s: %w", path, err)
	}
	return loadSavepoint(dir, raw, func(file string) (string, int64, error) {
		if _, ok := slices.BinarySearch(names, name+"/"+file); !ok {
			return "", 0, fmt.Errorf("%s: %w", store.URL(name+"/"+file), os.ErrNotExist)
		}
		return store.URL(name + "/" + file), -1, nil
	})
}

// splitURL splits a URL's path at its last slash: the parent and the
// last name.
func splitURL(u string) (parent, name string) {
	i := strings.LastIndex(u, "/")
	if i < 0 || strings.HasSuffix(u[:i+1], "://") {
		return u, ""
	}
	return u[:i], u[i+1:]
}

func readObject(ctx context.Context, s storage.Store, name string) ([]byte, error) {
	r, err := s.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// isSavepoint tells a savepoint's _metadata (raw) from a checkpoint's;
// an error if it is no JSON at all.
func isSavepoint(path string, raw []byte) (bool, error) {
	var probe struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return false, fmt.Errorf("savepoint %s: %s is truncated or corrupt: %v: %w", path, storage.MetadataName, err, ErrNotSavepoint)
	}
	return probe.Format == formatName, nil
}

// loadSavepoint reads a savepoint's metadata raw, of directory dir;
// locate returns the URL of one of its files and its size (-1 when not
// known), or an error when it is missing.
func loadSavepoint(dir string, raw []byte, locate func(file string) (string, int64, error)) (*Snapshot, error) {
	md, err := DecodeMetadata(raw)
	if err != nil {
		return nil, fmt.Errorf("savepoint %s: %w", dir, err)
	}
	snap := &Snapshot{Path: dir, Checkpoint: checkpoint.ID(md.Checkpoint), TimestampMs: md.Timestamp}
	for _, op := range md.Operators {
		state := OperatorState{UID: op.UID, Name: op.Name, Parallelism: op.Parallelism, MaxParallelism: op.MaxParallelism}
		for _, p := range op.Parts {
			part := Part{Subtask: p.Subtask, Finished: p.Finished}
			if p.File != "" {
				u, size, err := locate(p.File)
				if err != nil {
					return nil, fmt.Errorf("savepoint %s: the state of operator %q, subtask %d: %w", dir, op.UID, p.Subtask, err)
				}
				if size >= 0 && size != p.Size {
					return nil, fmt.Errorf("savepoint %s: %s has %d bytes, the savepoint recorded %d: the savepoint is damaged", dir, u, size, p.Size)
				}
				part.HasState = true
				part.Handle = snapshot.Handle{
					URL: u, Size: p.Size, SHA256: p.SHA256,
					KeyGroups: p.KeyGroups, Remap: true, From: -1, UID: op.UID,
				}
			}
			state.Parts = append(state.Parts, part)
		}
		snap.Operators = append(snap.Operators, state)
	}
	return snap, nil
}

func osStat(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// DecodeMetadata decodes and checks a savepoint's _metadata: its format,
// version, checksum, and that every file it names lies inside the
// savepoint's directory.
func DecodeMetadata(raw []byte) (*metadata, error) {
	var md metadata
	if err := json.Unmarshal(raw, &md); err != nil {
		return nil, fmt.Errorf("%s is truncated or corrupt: %v", storage.MetadataName, err)
	}
	if md.Format != formatName {
		return nil, fmt.Errorf("%s is not a savepoint's (format %q): %w", storage.MetadataName, md.Format, ErrNotSavepoint)
	}
	if md.Version != formatVersion {
		return nil, fmt.Errorf("savepoint format version %d; this Spate reads version %d", md.Version, formatVersion)
	}
	sum, err := md.checksum()
	if err != nil {
		return nil, err
	}
	if sum != md.Checksum {
		return nil, fmt.Errorf("%s is corrupt: its checksum does not match its content", storage.MetadataName)
	}
	uids := map[string]bool{}
	for _, op := range md.Operators {
		if op.UID == "" || uids[op.UID] {
			return nil, fmt.Errorf("%s names operator uid %q twice or empty", storage.MetadataName, op.UID)
		}
		uids[op.UID] = true
		for _, p := range op.Parts {
			if p.Subtask < 0 || (op.Parallelism > 0 && p.Subtask >= op.Parallelism) {
				return nil, fmt.Errorf("operator %q: part of subtask %d, the operator has parallelism %d", op.UID, p.Subtask, op.Parallelism)
			}
			if p.File != "" && (strings.Contains(p.File, "/") || strings.Contains(p.File, `\`) || p.File == ".." || p.File == "." || !strings.HasPrefix(p.File, partPrefix)) {
				return nil, fmt.Errorf("operator %q: state file %q is not a file of the savepoint's directory", op.UID, p.File)
			}
		}
	}
	return &md, nil
}

// loadCheckpoint reads the retained checkpoint in directory dir
// (<state.checkpoints.dir>/<job>/chk-<n>), checked whole.
func loadCheckpoint(ctx context.Context, dir string, opts storage.Options) (*Snapshot, error) {
	jobDir, chk := filepath.Dir(dir), filepath.Base(dir)
	if objectStore(dir) {
		jobDir, chk = splitURL(dir)
	}
	m := chkName.FindStringSubmatch(chk)
	if m == nil {
		return nil, fmt.Errorf("savepoint %s: neither a savepoint nor a retained checkpoint (a chk-<n> directory): %w", dir, ErrNotSavepoint)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	root, job := filepath.Dir(jobDir), filepath.Base(jobDir)
	if objectStore(dir) {
		root, job = splitURL(jobDir)
	}
	store, err := storage.OpenWith(root, opts)
	if err != nil {
		return nil, err
	}
	md, err := storage.Load(ctx, store, job, checkpoint.ID(id))
	if err != nil {
		return nil, fmt.Errorf("retained checkpoint %s: %w", dir, err)
	}
	if len(md.Operators) == 0 {
		return nil, fmt.Errorf("retained checkpoint %s names no operator uids (taken by an older Spate): it cannot be restored by a new job", dir)
	}
	snap := &Snapshot{Path: dir, Checkpoint: md.ID, TimestampMs: md.TimestampMs}
	index := map[int]int{} // node -> operator
	byVertex := map[int][]checkpoint.OperatorRef{}
	for _, ref := range md.Operators {
		index[ref.Node] = len(snap.Operators)
		snap.Operators = append(snap.Operators, OperatorState{UID: ref.UID, Name: ref.Name, MaxParallelism: ref.MaxParallelism})
		byVertex[ref.Vertex] = append(byVertex[ref.Vertex], ref)
	}
	par := map[int]int{}
	for _, st := range md.Subtasks {
		par[st.Vertex] = max(par[st.Vertex], st.Subtask+1)
	}
	for _, st := range md.Subtasks {
		for _, ref := range byVertex[st.Vertex] {
			op := &snap.Operators[index[ref.Node]]
			op.Parallelism = par[st.Vertex]
			if len(st.States) == 0 && st.Finished {
				op.Parts = append(op.Parts, Part{Subtask: st.Subtask, Finished: true})
			}
			for _, h := range st.States {
				op.Parts = append(op.Parts, Part{Subtask: st.Subtask, Finished: st.Finished, HasState: true, Handle: snapshot.Handle{
					URL: h.URL, Inline: h.Inline, Size: h.Size, SHA256: h.SHA256,
					KeyGroups: [2]int32{int32(h.KeyGroupStart), int32(h.KeyGroupEnd)},
					Remap:     true, From: int32(ref.Node), UID: ref.UID,
				}})
			}
		}
	}
	return snap, nil
}
