package main

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/spate-dev/spate"
)

// reference computes the top n per 10s window with plain loops.
func reference(events int64, n int) []string {
	counts := map[int64]map[string]int64{}
	for i := int64(0); i < events; i++ {
		v := Generate(i)
		end := v.Ts - v.Ts%10_000 + 10_000
		if counts[end] == nil {
			counts[end] = map[string]int64{}
		}
		counts[end][v.Page]++
	}
	var out []string
	for end, pages := range counts {
		var pcs []PageCount
		for p, c := range pages {
			pcs = append(pcs, PageCount{Page: p, WindowEnd: end, Views: c})
		}
		sort.Slice(pcs, func(i, j int) bool {
			if pcs[i].Views != pcs[j].Views {
				return pcs[i].Views > pcs[j].Views
			}
			return pcs[i].Page < pcs[j].Page
		})
		out = append(out, Top{WindowEnd: end, Pages: pcs[:min(n, len(pcs))]}.String())
	}
	slices.Sort(out)
	return out
}

func TestTopNMatchesReference(t *testing.T) {
	const events = 25_000
	want := reference(events, 3)
	for _, p := range []int{1, 3} {
		t.Run(fmt.Sprintf("parallelism=%d", p), func(t *testing.T) {
			env := spate.NewEnv(spate.WithParallelism(p), spate.WithEncodedExchanges(true))
			got := spate.Collect(Pipeline(env, events, 3))
			if err := env.Execute("topn"); err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, top := range got.Values() {
				lines = append(lines, top.String())
			}
			slices.Sort(lines)
			if !slices.Equal(lines, want) {
				t.Errorf("got %d windows, want %d\n got  %v\n want %v", len(lines), len(want), lines[:min(3, len(lines))], want[:min(3, len(want))])
			}
		})
	}
}
