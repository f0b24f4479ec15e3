package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/fleet"
)

// stats makes every kind answer requests times, all at latency.
func stats(requests int, latency time.Duration) map[fleet.Kind]*fleet.KindStats {
	out := map[fleet.Kind]*fleet.KindStats{}
	for _, k := range fleet.Kinds {
		out[k] = &fleet.KindStats{Requests: requests, Statuses: map[int]int{200: requests},
			Latencies: slices.Repeat([]time.Duration{latency}, requests)}
	}
	return out
}

func TestLoadProblems(t *testing.T) {
	kinds := len(fleet.Kinds)
	tests := []struct {
		name   string
		stats  map[fleet.Kind]*fleet.KindStats
		rate   float64
		want   []string // substrings, one problem each
		modify func(map[fleet.Kind]*fleet.KindStats)
	}{
		{name: "enough and fast", stats: stats(1000, 20*time.Millisecond), rate: 100},
		{name: "exactly a quarter of the rate", stats: stats(3000/kinds, 20*time.Millisecond), rate: 200},
		{name: "below a quarter of the rate", stats: stats(100, 20*time.Millisecond), rate: 100,
			want: []string{"requests in 1m0s, want at least 1500 (25% of 100/s)"}},
		{name: "a kind never sent", stats: stats(1000, 20*time.Millisecond), rate: 100,
			modify: func(s map[fleet.Kind]*fleet.KindStats) { delete(s, fleet.KindAPIWrite) },
			want:   []string{"api_write: no request sent"}},
		{name: "slow p99 of one kind", stats: stats(1000, 20*time.Millisecond), rate: 100,
			modify: func(s map[fleet.Kind]*fleet.KindStats) {
				l := s[fleet.KindCheckKey].Latencies
				for i := range 20 { // 2 % of the answers: the p99 is one of them
					l[i] = 3 * time.Second
				}
			},
			want: []string{"check_key: p99 3s, want at most 1s"}},
		{name: "writes get a wider bound", stats: stats(1000, 20*time.Millisecond), rate: 100,
			modify: func(s map[fleet.Kind]*fleet.KindStats) {
				l := s[fleet.KindAPIWrite].Latencies
				for i := range 20 {
					l[i] = 1500 * time.Millisecond
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.modify != nil {
				tt.modify(tt.stats)
			}
			got := loadProblems(tt.stats, tt.rate, time.Minute)
			if len(got) != len(tt.want) {
				t.Fatalf("got problems %q, want %d: %q", got, len(tt.want), tt.want)
			}
			for i, want := range tt.want {
				if !strings.Contains(got[i], want) {
					t.Errorf("got problem %q, want it to contain %q", got[i], want)
				}
			}
		})
	}
}
