package snapshot

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/spate-dev/spate/internal/checkpoint"
)

// counterOp keeps a number; its snapshot copies it.
type counterOp struct {
	n        int64
	restored []Entry
}

func (o *counterOp) SnapshotState(int64) (func() ([]Entry, error), error) {
	n := o.n
	return func() ([]Entry, error) {
		var b Buffer
		b.Int(n)
		return []Entry{{Name: "count", KeyGroup: NoKeyGroup, Data: b.B}}, nil
	}, nil
}

func (o *counterOp) RestoreState(es []Entry) error {
	o.restored = es
	for _, e := range es {
		r := NewReader(e.Data)
		o.n = r.Int()
		if err := r.Done(); err != nil {
			return err
		}
	}
	return nil
}

type acks struct {
	mu       sync.Mutex
	got      []Ack
	declined []error
}

func (a *acks) Acknowledge(x Ack) { a.mu.Lock(); a.got = append(a.got, x); a.mu.Unlock() }
func (a *acks) Decline(_, _ int, _ int64, err error) {
	a.mu.Lock()
	a.declined = append(a.declined, err)
	a.mu.Unlock()
}

// TestSnapshotRestore: a snapshot taken at a barrier captures the state
// of that moment, even as the operator changes on; restoring it into a
// fresh operator gives that state back.
func TestSnapshotRestore(t *testing.T) {
	a := &acks{}
	r := NewRunner(context.Background(), InlineStore{}, a, nil)
	op := &counterOp{n: 41}
	ts := r.Task(1, 0, 0, 64)
	ts.Add(7, op)
	ts.Snapshot(3)
	op.n = 100 // records flow on while the snapshot is written
	r.Close()
	if len(a.got) != 1 || len(a.declined) != 0 {
		t.Fatalf("acks %+v, declines %v; want one ack", a.got, a.declined)
	}
	ack := a.got[0]
	if ack.Checkpoint != 3 || ack.Vertex != 1 || ack.State == nil || ack.State.KeyGroups != [2]int32{0, 63} {
		t.Fatalf("ack %+v", ack)
	}

	fresh := &counterOp{}
	ts2 := NewRunner(context.Background(), InlineStore{}, a, nil).Task(1, 0, 0, 64)
	ts2.Add(7, fresh)
	if err := ts2.Restore(context.Background(), InlineStore{}, *ack.State); err != nil {
		t.Fatal(err)
	}
	if fresh.n != 41 || len(fresh.restored) != 1 || fresh.restored[0].Operator != 7 {
		t.Fatalf("restored n=%d entries %+v, want 41 from operator 7", fresh.n, fresh.restored)
	}

	// A damaged file is refused by its checksum, and state of an operator
	// the job lacks is an error.
	bad := *ack.State
	bad.Inline = append([]byte(nil), bad.Inline...)
	bad.Inline[len(bad.Inline)-1] ^= 1
	if err := ts2.Restore(context.Background(), InlineStore{}, bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("restore of a damaged file = %v, want ErrCorrupt", err)
	}
	other := NewRunner(context.Background(), InlineStore{}, a, nil).Task(1, 0, 0, 64)
	other.Add(8, &counterOp{})
	if err := other.Restore(context.Background(), InlineStore{}, *ack.State); err == nil || !strings.Contains(err.Error(), "operator 7, which the job no longer has") {
		t.Fatalf("restore into another chain = %v", err)
	}
}

func TestParseKind(t *testing.T) {
	for _, tc := range []struct {
		kind    string
		want    Kind
		wantErr bool
	}{
		{kind: "subtask", want: Kind{}},
		{kind: "", want: Kind{}},
		{kind: checkpoint.KindShared, want: Kind{Shared: true}},
		{kind: KindOperator, want: Kind{Remap: true, Whole: true}},
		{kind: ChainKind(7), want: Kind{Remap: true, From: 7}},
		{kind: SharedKind(KindOperator), want: Kind{Shared: true, Remap: true, Whole: true}},
		{kind: SharedKind(ChainKind(3)), want: Kind{Shared: true, Remap: true, From: 3}},
		{kind: "chain/x", wantErr: true},
		{kind: SharedKind("subtask"), wantErr: true},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			got, err := ParseKind(tc.kind)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseKind(%q) = %+v, %v; want %+v, error %v", tc.kind, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzParseKind(f *testing.F) {
	for _, k := range []string{"subtask", checkpoint.KindShared, KindOperator, ChainKind(7), SharedKind(KindOperator), SharedKind(ChainKind(-2))} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, kind string) {
		k, err := ParseKind(kind)
		if err != nil || !k.Remap {
			return
		}
		// A kind that remaps reads back as what made it.
		again := KindOperator
		if !k.Whole {
			again = ChainKind(k.From)
		}
		if k.Shared {
			again = SharedKind(again)
		}
		if k2, err := ParseKind(again); err != nil || k2 != k {
			t.Fatalf("ParseKind(%q) = %+v; its kind %q reads as %+v, %v", kind, k, again, k2, err)
		}
	})
}
