package console

import (
	"math"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// The chart puts each row in its bucket, stacks the outcomes bottom to
// top in a fixed order, scales the tallest bar within the plot, and its
// table holds the same numbers.
func TestBuildChart(t *testing.T) {
	end := time.Date(2026, 6, 1, 15, 20, 0, 0, time.UTC)
	rng := usageRanges[0] // 24 hours of hours
	rows := []storage.UsageRow{
		{Time: end.Truncate(time.Hour), CredentialID: 1, Class: "default", Outcome: usage.OutcomeAllowed, Count: 30},
		{Time: end.Truncate(time.Hour), CredentialID: 2, Class: "token", Outcome: usage.OutcomeAllowed, Count: 10},
		{Time: end.Truncate(time.Hour), CredentialID: 1, Class: "default", Outcome: usage.OutcomeRateLimited, Count: 20},
		{Time: end.Truncate(time.Hour).Add(-23 * time.Hour), CredentialID: 1, Class: "default", Outcome: usage.OutcomeUnauthorized, Count: 5},
		{Time: end.Truncate(time.Hour).Add(-24 * time.Hour), CredentialID: 1, Class: "default", Outcome: usage.OutcomeAllowed, Count: 999}, // before the range
		{Time: end.Truncate(time.Hour), CredentialID: 1, Class: "default", Outcome: "unknown", Count: 7},                                   // not an outcome
	}
	c := buildChart(rows, end, rng)
	if len(c.Bars) != 24 || len(c.Rows) != 24 {
		t.Fatalf("bars %d, rows %d; want 24", len(c.Bars), len(c.Rows))
	}
	if c.Max != 60 || c.Total != 65 {
		t.Errorf("max %d, total %d; want 60 and 65", c.Max, c.Total)
	}
	lastBar := c.Bars[23]
	if lastBar.Total != 60 || len(lastBar.Segments) != 2 {
		t.Fatalf("last bar = %+v, want 60 in two segments", lastBar)
	}
	allowed, limited := lastBar.Segments[0], lastBar.Segments[1]
	if allowed.Outcome != usage.OutcomeAllowed || limited.Outcome != usage.OutcomeRateLimited {
		t.Errorf("stack order %s, %s; want allowed at the bottom, then rate_limited", allowed.Outcome, limited.Outcome)
	}
	bottom := float64(c.Height) - plotBottom
	if math.Abs(allowed.Y+allowed.H-bottom) > 1e-9 || math.Abs(limited.Y+limited.H-allowed.Y) > 1e-9 {
		t.Errorf("segments do not stack: allowed %+v, rate_limited %+v, bottom %v", allowed, limited, bottom)
	}
	if ratio := allowed.H / limited.H; math.Abs(ratio-2) > 1e-9 {
		t.Errorf("heights %v:%v, want 40:20", allowed.H, limited.H)
	}
	top := c.YTicks[len(c.YTicks)-1]
	if top.Label != "80" || limited.Y < top.Y-1e-9 || limited.Y < plotTop {
		t.Errorf("top tick %+v, tallest bar reaches %v: want 80 and the bar within the plot", top, limited.Y)
	}
	if first := c.Bars[0]; first.Total != 5 || first.Segments[0].Outcome != usage.OutcomeUnauthorized {
		t.Errorf("first bar = %+v, want 5 unauthorized", first)
	}
	for i, b := range c.Bars {
		if b.X < plotLeft || b.X+b.W > float64(c.Width-plotRight)+1e-9 || b.W <= 0 {
			t.Errorf("bar %d at x %v width %v: outside the plot", i, b.X, b.W)
		}
		if i > 0 && b.X <= c.Bars[i-1].X+c.Bars[i-1].W {
			t.Errorf("bar %d overlaps the one before", i)
		}
		if c.Rows[i].Total != b.Total || c.Rows[i].Label != b.Label {
			t.Errorf("row %d = %+v, bar %+v: the table must hold the chart's numbers", i, c.Rows[i], b)
		}
	}
	if c.Rows[23].Label != "2026-06-01 15:00 UTC" || c.Rows[23].Counts[0] != 40 || c.Rows[23].Counts[1] != 20 {
		t.Errorf("last row = %+v", c.Rows[23])
	}
}

func TestNiceCeil(t *testing.T) {
	for _, c := range []struct{ v, want int64 }{{0, 4}, {1, 4}, {4, 4}, {5, 8}, {9, 20}, {60, 80}, {81, 200}, {1000, 2000}, {1001, 2000}, {4001, 8000}} {
		if got := niceCeil(c.v); got != c.want {
			t.Errorf("niceCeil(%d) = %d, want %d", c.v, got, c.want)
		}
	}
}
