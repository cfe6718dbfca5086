package nexmark

import (
	"context"
	"encoding/binary"
	"fmt"
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
// it missed while the job was down.
func (s source) Restore(ctx context.Context, split spate.Split, splits []spate.SplitState) (spate.SourceReader[Event], error) {
	rr, err := s.Open(ctx, split)
	if err != nil {
		return nil, err
	}
	r := rr.(*reader)
	g := r.g
	want := splitID(int64(split.Subtask), int64(split.Parallelism))
	for _, st := range splits {
		pos, n := binary.Varint(st.Position)
		if st.ID != want || n <= 0 || n != len(st.Position) || pos < 0 || pos%g.stride != int64(split.Subtask) && pos < g.end {
			return nil, fmt.Errorf("nexmark: split %q at %x in the checkpoint, want split %q (restoring at another parallelism is not supported yet)", st.ID, st.Position, want)
		}
		g.pos = min(pos, g.end)
	}
	if r.limited && g.pos < g.end {
		r.started = true
		r.wallBase = time.Now().Add(-time.Duration(g.p.timestampMs(g.pos)-g.p.baseMs) * time.Millisecond)
	}
	return r, nil
}
