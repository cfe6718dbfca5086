package nexmark

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spate-dev/spate"
)

// Splits (spate.CheckpointedReader): a reader's split of the sequence is
// "nexmark/<split>/<splits>", positioned at the event number of its next
// event. Events are generated from their number alone, so a restored
// reader produces exactly the events that followed.

// SnapshotSplits implements spate.CheckpointedReader.
func (r *reader) SnapshotSplits() ([]spate.SplitState, error) {
	return []spate.SplitState{{ID: r.split, Position: binary.AppendVarint(nil, r.g.pos)}}, nil
}

func splitID(split, splits int64) string { return fmt.Sprintf("nexmark/%d/%d", split, splits) }

// Restore implements spate.RestorableSource. A rate-limited reader goes on
// at the rate from the restored position, without a burst of the events
// it missed while the job was down. At the checkpoint's parallelism a
// reader gets its own split back; at another, its share of every
// reader's, which it reads merged in event-time order (multiReader).
func (s source) Restore(ctx context.Context, split spate.Split, splits []spate.SplitState) (spate.SourceReader[Event], error) {
	var rs []*reader
	for _, st := range splits {
		k, n, err := parseSplitID(st.ID)
		if err != nil {
			return nil, err
		}
		rr, err := s.Open(ctx, spate.Split{Subtask: int(k), Parallelism: int(n)})
		if err != nil {
			return nil, err
		}
		r := rr.(*reader)
		g := r.g
		pos, m := binary.Varint(st.Position)
		if m <= 0 || m != len(st.Position) || pos < 0 || pos%g.stride != k && pos < g.end {
			return nil, fmt.Errorf("nexmark: split %q at %x in the checkpoint is malformed", st.ID, st.Position)
		}
		g.pos = min(pos, g.end)
		if r.limited && g.pos < g.end {
			r.started = true
			r.wallBase = time.Now().Add(-time.Duration(g.p.timestampMs(g.pos)-g.p.baseMs) * time.Millisecond)
		}
		rs = append(rs, r)
	}
	if len(rs) == 1 {
		return rs[0], nil
	}
	return &multiReader{rs: rs}, nil
}

// parseSplitID reads "nexmark/<split>/<splits>".
func parseSplitID(id string) (split, splits int64, err error) {
	rest, ok := strings.CutPrefix(id, "nexmark/")
	a, b, ok2 := strings.Cut(rest, "/")
	k, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || n <= 0 || n > 1<<15 || k < 0 || k >= n {
		return 0, 0, fmt.Errorf("nexmark: split %q in the checkpoint is not a split of the Nexmark sequence", id)
	}
	return k, n, nil
}

// multiReader reads several splits, given to one reader by a restore at
// another parallelism, one event at a time from the split whose next
// event is earliest: its events come in event-time order, as one split's
// do. A multiReader without splits has read everything.
type multiReader struct {
	rs []*reader
}

func (m *multiReader) Read(ctx context.Context, buf []Event) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(buf) {
		var next *reader
		for _, r := range m.rs {
			if r.g.NextEventNumber() >= 0 && (next == nil || r.g.p.timestampMs(r.g.pos) < next.g.p.timestampMs(next.g.pos)) {
				next = r
			}
		}
		if next == nil {
			if n == 0 {
				return 0, io.EOF
			}
			break
		}
		k, err := next.Read(ctx, buf[n:n+1])
		n += k
		if k == 0 || err != nil {
			// Not due yet (rate limited), or the context ended.
			return n, err
		}
	}
	return n, nil
}

func (m *multiReader) Close() error { return nil }

// SnapshotSplits implements spate.CheckpointedReader.
func (m *multiReader) SnapshotSplits() ([]spate.SplitState, error) {
	var out []spate.SplitState
	for _, r := range m.rs {
		st, err := r.SnapshotSplits()
		if err != nil {
			return nil, err
		}
		out = append(out, st...)
	}
	return out, nil
}
