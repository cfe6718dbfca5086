package savepoint

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/spate-dev/spate/internal/checkpoint"
	"github.com/spate-dev/spate/internal/checkpoint/storage"
	"github.com/spate-dev/spate/internal/snapshot"
)

// Key is the default directory of savepoints, Flink's.
const Key = "execution.checkpointing.savepoint-dir"

// Restore keys, Flink's: the savepoint or retained checkpoint a job
// starts from, and whether state the job has no operator for is skipped.
const (
	KeyPath               = "execution.savepoint.path"
	KeyAllowNonRestored   = "execution.savepoint.ignore-unclaimed-state"
	formatName            = "spate-savepoint"
	formatVersion         = 1
	partPrefix            = "op-"
	savepointDirPrefix    = "savepoint-"
	savepointRandomLength = 6
)

// metadata is a savepoint's _metadata.
type metadata struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	Job        string `json:"job"`
	JobName    string `json:"jobName,omitempty"`
	Checkpoint int64  `json:"checkpoint"`
	// Timestamp is the trigger's time, Unix milliseconds.
	Timestamp int64      `json:"timestamp"`
	Operators []operator `json:"operators"`
	// Checksum is the hex SHA-256 of the JSON of the fields above
	// (Checksum empty).
	Checksum string `json:"checksum,omitempty"`
}

// operator is one operator's state in a savepoint.
type operator struct {
	UID            string `json:"uid"`
	Name           string `json:"name,omitempty"`
	Parallelism    int    `json:"parallelism"`
	MaxParallelism int    `json:"maxParallelism"`
	Parts          []part `json:"parts,omitempty"`
}

// part is one subtask's state of an operator: File (relative to the
// savepoint's directory), or nothing but Finished.
type part struct {
	Subtask   int      `json:"subtask"`
	Finished  bool     `json:"finished,omitempty"`
	File      string   `json:"file,omitempty"`
	Size      int64    `json:"size,omitempty"`
	SHA256    string   `json:"sha256,omitempty"`
	KeyGroups [2]int32 `json:"keyGroups"`
}

func (m *metadata) checksum() (string, error) {
	c := *m
	c.Checksum = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Job describes the job a savepoint is written of.
type Job struct {
	ID, Name string
	// Parallelism is each vertex's, by vertex index.
	Parallelism []int
}

// Write writes checkpoint m of job as a savepoint in a new directory of
// dir (a path, a file:// URL, or s3://bucket/prefix in the object store
// opts describe) and returns the savepoint directory's path (its URL for
// an object store). m.Operators must name the operators of m's state
// files; read returns the bytes of a state handle. The state of each
// operator of each subtask goes to a file of its own, named relative to
// the savepoint's directory; _metadata is written last, atomically, so a
// savepoint whose write failed part way never looks complete. A failed
// write removes what it wrote.
func Write(ctx context.Context, dir string, opts storage.Options, job Job, m checkpoint.Metadata, read func(checkpoint.Handle) ([]byte, error)) (path string, err error) {
	if dir == "" {
		return "", fmt.Errorf("no savepoint directory: name one (spate savepoint JOBID DIR) or set %s", Key)
	}
	store, err := storage.OpenWith(dir, opts)
	if err != nil {
		return "", fmt.Errorf("savepoint directory %s: %w", dir, err)
	}
	name, err := dirName(job.ID)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			store.Delete(context.WithoutCancel(ctx), name)
		}
	}()
	ops := map[int]*operator{} // by StreamNode id
	byVertex := map[int][]checkpoint.OperatorRef{}
	md := metadata{Format: formatName, Version: formatVersion, Job: job.ID, JobName: job.Name, Checkpoint: int64(m.ID), Timestamp: m.TimestampMs}
	for _, ref := range m.Operators {
		par := 0
		if ref.Vertex < len(job.Parallelism) {
			par = job.Parallelism[ref.Vertex]
		}
		md.Operators = append(md.Operators, operator{UID: ref.UID, Name: ref.Name, Parallelism: par, MaxParallelism: ref.MaxParallelism})
		byVertex[ref.Vertex] = append(byVertex[ref.Vertex], ref)
	}
	for i := range md.Operators {
		ops[m.Operators[i].Node] = &md.Operators[i]
	}
	for _, st := range m.Subtasks {
		refs := byVertex[st.Vertex]
		if len(refs) == 0 {
			return "", fmt.Errorf("write savepoint of checkpoint %d: subtask %d/%d belongs to vertex %d, whose operators the checkpoint does not name", m.ID, st.Vertex, st.Subtask, st.Vertex)
		}
		entries := map[int][]snapshot.Entry{}
		var kg [2]int32
		for _, h := range st.States {
			data, err := read(h)
			if err != nil {
				return "", fmt.Errorf("write savepoint of checkpoint %d, subtask %d/%d: %w", m.ID, st.Vertex, st.Subtask, err)
			}
			es, err := snapshot.Decode(data)
			if err != nil {
				return "", fmt.Errorf("write savepoint of checkpoint %d, subtask %d/%d: %w", m.ID, st.Vertex, st.Subtask, err)
			}
			kg = [2]int32{int32(h.KeyGroupStart), int32(h.KeyGroupEnd)}
			for _, e := range es {
				node := int(e.Operator)
				if ops[node] == nil {
					return "", fmt.Errorf("write savepoint of checkpoint %d, subtask %d/%d: state of operator %d, which the checkpoint does not name", m.ID, st.Vertex, st.Subtask, node)
				}
				e.Operator = 0
				entries[node] = append(entries[node], e)
			}
		}
		for _, ref := range refs {
			op := ops[ref.Node]
			p := part{Subtask: st.Subtask, Finished: st.Finished, KeyGroups: kg}
			if es := entries[ref.Node]; len(es) > 0 {
				data := snapshot.Encode(nil, es)
				p.File = fmt.Sprintf("%s%d-%d", partPrefix, slices.IndexFunc(md.Operators, func(o operator) bool { return o.UID == ref.UID }), st.Subtask)
				if err := put(ctx, store, name+"/"+p.File, data); err != nil {
					return "", err
				}
				p.Size, p.SHA256 = int64(len(data)), snapshot.Sum(data)
			} else if !st.Finished {
				continue
			}
			op.Parts = append(op.Parts, p)
		}
	}
	if md.Checksum, err = md.checksum(); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(&md, "", "  ")
	if err != nil {
		return "", err
	}
	if err := store.Publish(ctx, name+"/"+storage.MetadataName, b); err != nil {
		return "", fmt.Errorf("write savepoint metadata: %w", err)
	}
	return localPath(store.URL(name)), nil
}

func put(ctx context.Context, s storage.Store, name string, data []byte) error {
	w, err := s.Create(ctx, name)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return fmt.Errorf("write %s: %w", s.URL(name), err)
	}
	return w.Close()
}

// dirName names a new savepoint of job, as Flink's savepoint-<6 of the
// job id>-<12 random hex>.
func dirName(job string) (string, error) {
	b := make([]byte, savepointRandomLength)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("name a savepoint: %w", err)
	}
	prefix := job
	if len(prefix) > 6 {
		prefix = prefix[:6]
	}
	return savepointDirPrefix + prefix + "-" + hex.EncodeToString(b), nil
}

// ErrNotSavepoint classes a path that holds neither a savepoint nor a
// retained checkpoint.
var ErrNotSavepoint = errors.New("not a savepoint or retained checkpoint")
