package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spate-dev/spate/internal/checkpoint"
)

// MetadataName is the name of a checkpoint's metadata object in its
// directory.
const MetadataName = "_metadata"

// metadataVersion is the version of the _metadata format.
const metadataVersion = 1

// ErrDamaged classes a checkpoint that must not be restored: its
// _metadata is truncated or corrupt, or a state file is missing or does
// not match its checksum.
var ErrDamaged = errors.New("checkpoint damaged")

// Dir is the name of checkpoint id's directory of job.
func Dir(job string, id checkpoint.ID) string { return fmt.Sprintf("%s/chk-%d", job, id) }

// metadataFile is the _metadata object: the checkpoint's description and
// the checksum of its encoding.
type metadataFile struct {
	Version    int             `json:"version"`
	Job        string          `json:"job"`
	Checkpoint json.RawMessage `json:"checkpoint"`
	// Checksum is the hex SHA-256 of Checkpoint's bytes.
	Checksum string `json:"checksum"`
}

// objectName returns the name, in s, of an object whose URL is u.
func objectName(s Store, u string) (string, error) {
	root := strings.TrimSuffix(s.URL("x"), "x")
	name, ok := strings.CutPrefix(u, root)
	if !ok || name == "" {
		return "", fmt.Errorf("state file %s is not in checkpoint storage %s", u, root)
	}
	return name, nil
}

// WriteState writes one state file, data, as name in checkpoint id's
// directory of job, and returns its handle (URL, size, SHA-256): what a
// subtask does before acknowledging.
func WriteState(ctx context.Context, s Store, job string, id checkpoint.ID, name string, data []byte) (checkpoint.Handle, error) {
	obj := Dir(job, id) + "/" + name
	w, err := s.Create(ctx, obj)
	if err != nil {
		return checkpoint.Handle{}, err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return checkpoint.Handle{}, fmt.Errorf("write state file %s: %w", s.URL(obj), err)
	}
	if err := w.Close(); err != nil {
		return checkpoint.Handle{}, err
	}
	sum := sha256.Sum256(data)
	return checkpoint.Handle{URL: s.URL(obj), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}, nil
}

// ReadState reads the state file of h (or its inline bytes), checked
// against its size and SHA-256.
func ReadState(ctx context.Context, s Store, h checkpoint.Handle) ([]byte, error) {
	data := h.Inline
	if h.URL != "" {
		name, err := objectName(s, h.URL)
		if err != nil {
			return nil, err
		}
		r, err := s.Open(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("state file %s is missing: %w: %w", h.URL, ErrDamaged, err)
		}
		data, err = io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("read state file %s: %w", h.URL, err)
		}
	}
	if int64(len(data)) != h.Size {
		return nil, fmt.Errorf("state file %s has %d bytes, its checkpoint recorded %d: %w", where(h), len(data), h.Size, ErrDamaged)
	}
	if h.SHA256 != "" {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != h.SHA256 {
			return nil, fmt.Errorf("state file %s is corrupt: its SHA-256 is %s, its checkpoint recorded %s: %w", where(h), got, h.SHA256, ErrDamaged)
		}
	}
	return data, nil
}

func where(h checkpoint.Handle) string {
	if h.URL != "" {
		return h.URL
	}
	return fmt.Sprintf("(inline, operator %d)", h.Operator)
}

// InlineLimit is the largest state WriteMetadata keeps inline in a
// checkpoint's _metadata; a larger inline state is written to a state file
// of its own, so that the metadata, and the restore information sent to
// workers, stay small.
const InlineLimit = 64 << 10

// WriteMetadata writes checkpoint m's _metadata, last and atomically, and
// returns its URL. An inline state above InlineLimit is first written to a
// state file in the checkpoint's directory. A state file whose handle has
// no SHA-256 is read to compute it, so that the metadata holds a checksum
// of every state file.
func WriteMetadata(ctx context.Context, s Store, job string, m checkpoint.Metadata) (string, error) {
	m.Subtasks = slices.Clone(m.Subtasks)
	for i := range m.Subtasks {
		st := &m.Subtasks[i]
		st.States = slices.Clone(st.States)
		for j := range st.States {
			h := &st.States[j]
			if h.URL == "" && len(h.Inline) > InlineLimit {
				name := fmt.Sprintf("%d-%d-%d-inline-%d", st.Vertex, st.Subtask, st.Attempt, j)
				f, err := WriteState(ctx, s, job, m.ID, name, h.Inline)
				if err != nil {
					return "", fmt.Errorf("checkpoint %d of job %s, subtask %d/%d: %w", m.ID, job, st.Vertex, st.Subtask, err)
				}
				h.URL, h.Size, h.SHA256, h.Inline = f.URL, f.Size, f.SHA256, nil
			}
			if h.SHA256 != "" {
				continue
			}
			var data []byte
			var err error
			if h.URL == "" {
				data = h.Inline
			} else if data, err = ReadState(ctx, s, *h); err != nil {
				return "", fmt.Errorf("checkpoint %d of job %s: %w", m.ID, job, err)
			}
			sum := sha256.Sum256(data)
			h.SHA256 = hex.EncodeToString(sum[:])
		}
	}
	body, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(body)
	file, err := json.Marshal(metadataFile{Version: metadataVersion, Job: job, Checkpoint: body, Checksum: hex.EncodeToString(sum[:])})
	if err != nil {
		return "", err
	}
	name := Dir(job, m.ID) + "/" + MetadataName
	if err := s.Publish(ctx, name, file); err != nil {
		return "", fmt.Errorf("write the metadata of checkpoint %d of job %s: %w", m.ID, job, err)
	}
	return s.URL(name), nil
}

// Load reads checkpoint id of job and checks it whole: its _metadata and
// every state file. A damaged checkpoint is an error of class ErrDamaged
// that names what is wrong.
func Load(ctx context.Context, s Store, job string, id checkpoint.ID) (checkpoint.Metadata, error) {
	var m checkpoint.Metadata
	name := Dir(job, id) + "/" + MetadataName
	r, err := s.Open(ctx, name)
	if err != nil {
		return m, fmt.Errorf("checkpoint %d of job %s has no readable %s: %w: %w", id, job, s.URL(name), ErrDamaged, err)
	}
	raw, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return m, fmt.Errorf("read %s: %w", s.URL(name), err)
	}
	var f metadataFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return m, fmt.Errorf("%s is truncated or corrupt (%d bytes): %v: %w", s.URL(name), len(raw), err, ErrDamaged)
	}
	if f.Version != metadataVersion {
		return m, fmt.Errorf("%s has format version %d; this Spate reads version %d: %w", s.URL(name), f.Version, metadataVersion, ErrDamaged)
	}
	sum := sha256.Sum256(f.Checkpoint)
	if hex.EncodeToString(sum[:]) != f.Checksum {
		return m, fmt.Errorf("%s is corrupt: its checksum does not match its content: %w", s.URL(name), ErrDamaged)
	}
	if err := json.Unmarshal(f.Checkpoint, &m); err != nil {
		return m, fmt.Errorf("%s is corrupt: %v: %w", s.URL(name), err, ErrDamaged)
	}
	if m.ID != id || f.Job != job {
		return m, fmt.Errorf("%s describes checkpoint %d of job %s, not checkpoint %d of job %s: %w", s.URL(name), m.ID, f.Job, id, job, ErrDamaged)
	}
	for _, st := range m.Subtasks {
		for _, h := range st.States {
			if _, err := ReadState(ctx, s, h); err != nil {
				return m, fmt.Errorf("checkpoint %d of job %s, subtask %d/%d: %w", id, job, st.Vertex, st.Subtask, err)
			}
		}
	}
	return m, nil
}

// LoadLatest returns the newest checkpoint of ids (in any order) that
// loads whole, with its _metadata's URL. Each damaged one is skipped,
// logged with what is wrong, and returned in skipped; with none usable
// it returns ok false.
func LoadLatest(ctx context.Context, s Store, job string, ids []checkpoint.ID, log *slog.Logger) (m checkpoint.Metadata, path string, skipped []error, ok bool, err error) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	for i := len(ids) - 1; i >= 0; i-- {
		m, err := Load(ctx, s, job, ids[i])
		if err == nil {
			return m, s.URL(Dir(job, ids[i]) + "/" + MetadataName), skipped, true, nil
		}
		if !errors.Is(err, ErrDamaged) {
			return m, "", skipped, false, err
		}
		if log != nil {
			log.Warn("checkpoint storage: skipping a damaged checkpoint; falling back to the previous one", "job", job, "checkpoint", ids[i], "err", err)
		}
		skipped = append(skipped, err)
	}
	return checkpoint.Metadata{}, "", skipped, false, nil
}

var chkDir = regexp.MustCompile(`^chk-([0-9]+)/` + MetadataName + `$`)

// Checkpoints lists the checkpoints of job in s that have a _metadata,
// oldest first (not checked; see Load).
func Checkpoints(ctx context.Context, s Store, job string) ([]checkpoint.ID, error) {
	names, err := s.List(ctx, job)
	if err != nil {
		return nil, err
	}
	var ids []checkpoint.ID
	for _, n := range names {
		rel, _ := strings.CutPrefix(n, job+"/")
		if m := chkDir.FindStringSubmatch(rel); m != nil {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			ids = append(ids, checkpoint.ID(id))
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Discard deletes checkpoint id of job.
func Discard(ctx context.Context, s Store, job string, id checkpoint.ID) error {
	return s.Delete(ctx, Dir(job, id))
}
