package snapshot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func keyed(op int32, name string, kg int32) Entry {
	return Entry{Operator: op, Name: name, KeyGroup: kg, Data: []byte(fmt.Sprintf("%s@%d", name, kg))}
}

func elem(op int32, name, v string) Entry {
	return Entry{Operator: op, Name: name, KeyGroup: NoKeyGroup, Data: []byte(v)}
}

// describe lists entries as "name@keygroup" or "name=data".
func describe(es []Entry) []string {
	out := []string{}
	for _, e := range es {
		if e.KeyGroup == NoKeyGroup {
			out = append(out, fmt.Sprintf("%d:%s=%s", e.Operator, e.Name, e.Data))
		} else {
			out = append(out, fmt.Sprintf("%d:%s@%d", e.Operator, e.Name, e.KeyGroup))
		}
	}
	return out
}

func TestRedistribute(t *testing.T) {
	// Four old subtasks of 8 key groups: two key groups each, a split
	// each but the last (which had read its splits), a union state.
	var olds [][]Entry
	for s := range int32(4) {
		es := []Entry{keyed(1, "s/v", 2*s), keyed(1, "s/v", 2*s+1), keyed(1, "t/event", 2*s)}
		if s < 3 {
			es = append(es, elem(0, "source/split", fmt.Sprintf("split%d", s)))
		} else {
			es = append(es, elem(0, "source/none", ""))
		}
		es = append(es, elem(2, "u", fmt.Sprintf("u%d", s)))
		olds = append(olds, es)
	}
	dist := func(op int32, name string) Distribution {
		switch {
		case name == "source/none":
			return Dropped
		case op == 2:
			return Union
		}
		return Split
	}
	tests := []struct {
		name    string
		share   Share
		olds    [][]Entry
		want    []string
		wantErr string
	}{
		{name: "4 to 2, first", share: Share{Subtask: 0, Parallelism: 2, MaxParallelism: 8}, olds: olds,
			want: []string{"1:s/v@0", "1:s/v@1", "1:t/event@0", "1:s/v@2", "1:s/v@3", "1:t/event@2", "0:source/split=split0", "0:source/split=split1", "2:u=u0", "2:u=u1", "2:u=u2", "2:u=u3"}},
		{name: "4 to 2, second", share: Share{Subtask: 1, Parallelism: 2, MaxParallelism: 8}, olds: olds,
			want: []string{"1:s/v@4", "1:s/v@5", "1:t/event@4", "1:s/v@6", "1:s/v@7", "1:t/event@6", "0:source/split=split2", "2:u=u0", "2:u=u1", "2:u=u2", "2:u=u3"}},
		{name: "4 to 8, an odd one", share: Share{Subtask: 5, Parallelism: 8, MaxParallelism: 8}, olds: olds,
			want: []string{"1:s/v@5", "2:u=u0", "2:u=u1", "2:u=u2", "2:u=u3"}},
		{name: "4 to 8, a split for the first three", share: Share{Subtask: 2, Parallelism: 8, MaxParallelism: 8}, olds: olds,
			want: []string{"1:s/v@2", "1:t/event@2", "0:source/split=split2", "2:u=u0", "2:u=u1", "2:u=u2", "2:u=u3"}},
		{name: "4 to 1: everything", share: Share{Subtask: 0, Parallelism: 1, MaxParallelism: 8}, olds: olds,
			want: []string{"1:s/v@0", "1:s/v@1", "1:t/event@0", "1:s/v@2", "1:s/v@3", "1:t/event@2", "1:s/v@4", "1:s/v@5", "1:t/event@4", "1:s/v@6", "1:s/v@7", "1:t/event@6",
				"0:source/split=split0", "0:source/split=split1", "0:source/split=split2", "2:u=u0", "2:u=u1", "2:u=u2", "2:u=u3"}},
		{name: "uneven split: 5 over 3, the first ones longer", share: Share{Subtask: 1, Parallelism: 3, MaxParallelism: 8},
			olds: [][]Entry{{elem(0, "c", "a"), elem(0, "c", "b"), elem(0, "c", "c")}, {elem(0, "c", "d"), elem(0, "c", "e")}},
			want: []string{"0:c=c", "0:c=d"}},
		{name: "uneven split, the last", share: Share{Subtask: 2, Parallelism: 3, MaxParallelism: 8},
			olds: [][]Entry{{elem(0, "c", "a"), elem(0, "c", "b"), elem(0, "c", "c")}, {elem(0, "c", "d"), elem(0, "c", "e")}},
			want: []string{"0:c=e"}},
		{name: "nothing", share: Share{Subtask: 0, Parallelism: 3, MaxParallelism: 8}, want: []string{}},
		{name: "key group beyond max parallelism", share: Share{Subtask: 0, Parallelism: 2, MaxParallelism: 4}, olds: olds,
			wantErr: "key group 4, beyond the 4 key groups"},
		{name: "parallelism above max parallelism", share: Share{Subtask: 0, Parallelism: 9, MaxParallelism: 8}, olds: olds,
			wantErr: "parallelism 9 with max parallelism 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Redistribute(tt.olds, tt.share, dist)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Redistribute: err %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := describe(got); !slices.Equal(d, tt.want) {
				t.Errorf("Redistribute =\n%q\nwant\n%q", d, tt.want)
			}
		})
	}
}

// TestRedistributePartitions checks, over parallelisms 1..16 both ways,
// that the new subtasks together restore every keyed entry and split
// element exactly once, and every union element each.
func TestRedistributePartitions(t *testing.T) {
	const maxPar = 16
	for p1 := 1; p1 <= maxPar; p1++ {
		var olds [][]Entry
		for s := range p1 {
			var es []Entry
			start, end := Share{Subtask: s, Parallelism: p1, MaxParallelism: maxPar}.KeyGroups()
			for kg := start; kg < end; kg++ {
				es = append(es, keyed(1, "s/x", int32(kg)))
			}
			for i := range s % 3 {
				es = append(es, elem(0, "split", fmt.Sprintf("%d.%d", s, i)))
			}
			es = append(es, elem(0, "union", fmt.Sprint(s)))
			olds = append(olds, es)
		}
		for p2 := 1; p2 <= maxPar; p2++ {
			seen := map[string]int{}
			for s := range p2 {
				got, err := Redistribute(olds, Share{Subtask: s, Parallelism: p2, MaxParallelism: maxPar}, func(_ int32, name string) Distribution {
					if name == "union" {
						return Union
					}
					return Split
				})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range describe(got) {
					seen[d]++
				}
			}
			for _, es := range olds {
				for _, d := range describe(es) {
					want := 1
					if strings.Contains(d, "union") {
						want = p2
					}
					if seen[d] != want {
						t.Fatalf("%d -> %d: %s restored %d times, want %d", p1, p2, d, seen[d], want)
					}
				}
			}
		}
	}
}

// distOp is an Operator that records what it restores and splits nothing
// but "split".
type distOp struct{ got []Entry }

func (o *distOp) SnapshotState(int64) (func() ([]Entry, error), error) { return nil, nil }
func (o *distOp) RestoreState(es []Entry) error                        { o.got = es; return nil }
func (o *distOp) Distribution(name string) Distribution {
	if name == "marker" {
		return Dropped
	}
	return Split
}

// TestRestoreShared restores one new subtask from the state files of
// three old ones.
func TestRestoreShared(t *testing.T) {
	ctx := context.Background()
	var hs []Handle
	for s := range 3 {
		es := []Entry{keyed(4, "s/v", int32(s)), elem(4, "split", fmt.Sprint(s)), elem(4, "marker", "")}
		h, err := InlineStore{}.Put(ctx, 1, "x", Encode(nil, es))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	r := NewRunner(ctx, InlineStore{}, nil, nil)
	ts := r.KeyedTask(0, 1, 2, 4) // key groups 2, 3
	op := &distOp{}
	ts.Add(4, op)
	if err := ts.RestoreShared(ctx, InlineStore{}, hs); err != nil {
		t.Fatal(err)
	}
	if d, want := describe(op.got), []string{"4:s/v@2", "4:split=2"}; !slices.Equal(d, want) {
		t.Errorf("restored %q, want %q", d, want)
	}
	hs[1].SHA256 = Sum([]byte("other"))
	if err := r.KeyedTask(0, 0, 2, 4).RestoreShared(ctx, InlineStore{}, hs); err == nil {
		t.Error("a state file that does not match its handle was restored")
	}
}

// keyedOp is a KeyedOnly operator that records what it restores.
type keyedOp struct{ distOp }

func (o *keyedOp) KeyedOnly() {}

// countingStore counts the state files read.
type countingStore struct {
	InlineStore
	gets int
}

func (s *countingStore) Get(ctx context.Context, h Handle) ([]byte, error) {
	s.gets++
	return s.InlineStore.Get(ctx, h)
}

// TestRestoreSharedKeyedOnly: a subtask whose operators hold keyed state
// only reads the old files of its key groups; one with operator state
// reads them all.
func TestRestoreSharedKeyedOnly(t *testing.T) {
	ctx := context.Background()
	const maxPar, p1 = 16, 8
	var hs []Handle
	for s := range p1 {
		start, end := Share{Subtask: s, Parallelism: p1, MaxParallelism: maxPar}.KeyGroups()
		var es []Entry
		for kg := start; kg < end; kg++ {
			es = append(es, keyed(4, "s/v", int32(kg)))
		}
		h, err := InlineStore{}.Put(ctx, 1, "x", Encode(nil, es))
		if err != nil {
			t.Fatal(err)
		}
		h.KeyGroups = [2]int32{int32(start), int32(end - 1)}
		hs = append(hs, h)
	}
	for _, tc := range []struct {
		name      string
		op        Operator
		wantFiles int
	}{
		{"keyed only", &keyedOp{}, 3}, // key groups 6..10 of 16 at 3: files 3, 4, 5
		{"with operator state", &distOp{}, p1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &countingStore{}
			ts := NewRunner(ctx, store, nil, nil).KeyedTask(0, 1, 3, maxPar)
			ts.Add(4, tc.op)
			if err := ts.RestoreShared(ctx, store, hs); err != nil {
				t.Fatal(err)
			}
			if store.gets != tc.wantFiles {
				t.Errorf("read %d state files, want %d", store.gets, tc.wantFiles)
			}
			var got []Entry
			switch op := tc.op.(type) {
			case *keyedOp:
				got = op.got
			case *distOp:
				got = op.got
			}
			if d, want := describe(got), []string{"4:s/v@6", "4:s/v@7", "4:s/v@8", "4:s/v@9", "4:s/v@10"}; !slices.Equal(d, want) {
				t.Errorf("restored %q, want %q", d, want)
			}
		})
	}
}
